"""The command line: ``run``, ``check``, ``dlq inspect``, ``dlq redrive``, ``schemas``, ``explain``.

Wiring happens here and nowhere else: settings are loaded once (``config.load``), then the
decoder, handler, services, processor, dead-letter producer and engine are built
explicitly and handed to each other. Exit codes: 0 success, 2 configuration error (the
message names the variable), 1 anything else.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from types import FrameType
from typing import TextIO

import structlog
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from consumer import __version__, config, explain
from consumer.config import Settings
from consumer.deadletter import DeadLetterProducer
from consumer.dlq import inspect_topic
from consumer.effects import Effects
from consumer.engine import Engine, FailureSink, Processor, consumer_config
from consumer.errors import ConfigError, ConsumerError
from consumer.events import EventType
from consumer.guard import ServiceGuard, configured_services
from consumer.handlers import make_handler
from consumer.lag import LagMonitor
from consumer.observability import Health, Metrics, configure_logging, serve
from consumer.processing import ApplyProcessor, DryRunProcessor
from consumer.retry import Retrier
from consumer.services.bundle import Services, build_services
from consumer.services.check import CheckResult, run_checks
from consumer.services.program_cache import CacheState
from consumer.services.redaction import redact_text
from consumer.wire import (
    Decoder,
    LocalWriterSchemas,
    RegistryWriterSchemas,
    WriterSchemas,
    load_reader_schemas,
    registry_client,
)

log = structlog.get_logger("consumer.cli")

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2


# ---------------------------------------------------------------------------- building blocks


@contextmanager
def _writer_schemas(settings: Settings) -> Iterator[WriterSchemas]:
    kafka = settings.kafka
    if not kafka.schema_registry_url:
        yield LocalWriterSchemas()
        return
    client = registry_client(
        kafka.schema_registry_url,
        api_key=kafka.schema_registry_api_key,
        api_secret=kafka.schema_registry_api_secret,
    )
    try:
        yield RegistryWriterSchemas(client)
    finally:
        client.close()


@contextmanager
def _services(settings: Settings, guard: ServiceGuard, metrics: Metrics) -> Iterator[Services]:
    assert settings.services is not None

    def program_cache_refreshed(state: CacheState) -> None:
        metrics.program_cache_stale.set(1 if state.stale or state.incomplete else 0)

    services = build_services(
        settings.services, guard=guard, on_program_cache_refresh=program_cache_refreshed
    )
    services.start()
    try:
        yield services
    finally:
        services.close()


@contextmanager
def _output(path: str | None) -> Iterator[TextIO]:
    if not path or path == "-":
        yield sys.stdout
        return
    with open(path, "a", encoding="utf-8") as stream:
        yield stream


def _ensure_dead_letter_topics(settings: Settings) -> None:
    """Create missing dead-letter topics, as many partitions as their source topic.

    Operators who disable topic creation pre-create them; a failure here is logged, and
    the producer reports (and retries) every record it cannot write.
    """
    kafka = settings.kafka
    admin = AdminClient(kafka.client_config())
    metadata = admin.list_topics(timeout=15)
    missing = []
    for source in kafka.full_topics:
        target = kafka.dead_letter_topic(source)
        if target in metadata.topics:
            continue
        partitions = len(metadata.topics[source].partitions) if source in metadata.topics else 1
        missing.append(NewTopic(target, num_partitions=max(1, partitions)))
    if not missing:
        return
    for name, future in admin.create_topics(missing, request_timeout=15).items():
        try:
            future.result(timeout=30)
            log.info("dead_letter_topic_created", topic=name)
        except Exception as error:  # noqa: BLE001 - reported, and the producer retries
            log.error(  # noqa: TRY400 - the reason is enough, a traceback adds nothing
                "dead_letter_topic_not_created", topic=name, error=str(error)
            )


def _install_signal_handlers(stop: Callable[[str], None]) -> None:
    """SIGTERM/SIGINT drain and stop; a second SIGINT aborts at once.

    The handler only records the request: it must not log or take a lock (see
    ``Engine.request_stop``); the engine logs the signal from its loop.
    """

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop(signal.Signals(signum).name)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def _build_engine(
    settings: Settings,
    stack: ExitStack,
    *,
    topics: Sequence[str],
    group_id: str,
    dry_run: bool,
    sink: FailureSink | None,
    metrics: Metrics,
    health: Health,
    stop_when_idle: float | None,
) -> Engine:
    """Wire decoder, handler, processor and consumer into an engine."""
    decoder = Decoder(stack.enter_context(_writer_schemas(settings)), load_reader_schemas())
    handler = make_handler(settings.policy)
    processor: Processor
    guard = ServiceGuard.for_services(
        settings.circuit, metrics, configured_services(settings.services)
    )
    if dry_run:
        processor = DryRunProcessor(handler, stack.enter_context(_output(settings.dry_run_output)))
    else:
        services = stack.enter_context(_services(settings, guard, metrics))
        effects = Effects(
            services,
            programs_without_certificates=settings.policy.programs_without_certificates,
            honor_certificates_enabled=settings.policy.honor_certificates_enabled,
        )
        retrier = Retrier(
            settings.retry,
            guard.breakers,
            on_retry=lambda error, _delay: metrics.retries.labels(
                error.service, error.reason
            ).inc(),
        )
        processor = ApplyProcessor(handler, effects.apply, retrier, metrics)
    return Engine(
        consumer_config=consumer_config(settings.kafka, group_id=group_id),
        topics=topics,
        decoder=decoder,
        processor=processor,
        sink=sink,
        settings=settings.engine,
        metrics=metrics,
        health=health,
        breakers=guard.breakers,
        commit=not dry_run,
        stop_when_idle=stop_when_idle,
        lag_monitor=LagMonitor(
            AdminClient(settings.kafka.client_config()),
            metrics,
            group_id=None if dry_run else group_id,
            from_earliest=settings.kafka.auto_offset_reset == "earliest",
        ),
    )


# ---------------------------------------------------------------------------- commands


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """The worker: consume, apply, dead-letter; until SIGTERM (or idle, with the flag)."""
    metrics, health = Metrics(), Health()
    server = serve(metrics, health, settings.metrics_port) if settings.metrics_port else None
    log.info(
        "worker_starting",
        version=__version__,
        dry_run=settings.dry_run,
        settings=dict(settings.describe()),
    )
    if not settings.policy.programs_enabled:
        log.warning("programs_disabled", why="COURSE_CATALOG_API_URL is not set: no program awards")
    with ExitStack() as stack:
        sink: FailureSink | None = None
        if not settings.dry_run:
            _ensure_dead_letter_topics(settings)
            sink = DeadLetterProducer(
                settings.kafka.client_config(),
                topic_for=settings.kafka.dead_letter_topic,
                group=settings.kafka.group_id,
            )
        else:
            sink = _LoggedFailures()
        metrics.expect_topics(
            settings.kafka.full_topics,
            ()
            if settings.dry_run
            else map(settings.kafka.dead_letter_topic, settings.kafka.full_topics),
        )
        engine = _build_engine(
            settings,
            stack,
            topics=settings.kafka.full_topics,
            group_id=settings.kafka.group_id,
            dry_run=settings.dry_run,
            sink=sink,
            metrics=metrics,
            health=health,
            stop_when_idle=args.stop_when_idle,
        )
        _install_signal_handlers(engine.request_stop)
        engine.run()
    if server is not None:
        server.shutdown()
    return EXIT_OK


class _LoggedFailures:
    """Dry-run stand-in for the dead-letter producer: log the failure, write nothing."""

    def topic_for(self, source_topic: str) -> str:
        """Where the record would have gone."""
        return f"{source_topic} (dry-run: not written)"

    def send(self, record: object, failure: object, delivered: Callable[[None], None]) -> None:  # noqa: ARG002
        """Acknowledge at once: the log line (from the engine) is the dry-run's record."""
        delivered(None)

    def poll(self, timeout: float = 0.0) -> None:
        """Nothing to serve."""

    def flush(self, timeout: float) -> int:  # noqa: ARG002
        """Nothing outstanding."""
        return 0


def cmd_check(_args: argparse.Namespace, settings: Settings) -> int:
    """Validate configuration and reach Kafka, the registry and each configured service."""
    print("configuration: ok")  # noqa: T201 - a command for people
    for name, value in settings.describe():
        print(f"  {name} = {value}")  # noqa: T201
    results = [*_kafka_checks(settings), _registry_check(settings)]
    if settings.services is not None:
        metrics = Metrics()
        guard = ServiceGuard.for_services(
            settings.circuit, metrics, configured_services(settings.services)
        )
        with _services(settings, guard, metrics) as services:
            results += run_checks(services)
    else:
        results.append(CheckResult("services", ok=True, summary="dry-run: not called"))
    for result in results:
        print(result.line())  # noqa: T201
    return EXIT_OK if all(result.ok for result in results) else EXIT_FAILURE


def _kafka_checks(settings: Settings) -> list[CheckResult]:
    kafka = settings.kafka
    try:
        metadata = AdminClient(kafka.client_config()).list_topics(timeout=15)
    except KafkaException as error:
        return [CheckResult("kafka", ok=False, summary=f"unreachable: {error}")]
    results = []
    for topic in kafka.full_topics:
        present = topic in metadata.topics
        results.append(
            CheckResult(
                "kafka",
                ok=present,
                summary=f"topic {topic} {'present' if present else 'missing'}",
                hint=None if present else "check CONSUMER_TOPICS and EVENT_BUS_TOPIC_PREFIX",
            )
        )
        dead = kafka.dead_letter_topic(topic)
        note = "present" if dead in metadata.topics else "missing (created at start)"
        results.append(CheckResult("kafka", ok=True, summary=f"topic {dead} {note}"))
    return results


def _registry_check(settings: Settings) -> CheckResult:
    if not settings.kafka.schema_registry_url:
        return CheckResult(
            "registry", ok=True, summary="not configured: decoding with schemas/ only"
        )
    with _writer_schemas(settings) as schemas:
        assert isinstance(schemas, RegistryWriterSchemas)
        try:
            subjects = schemas.client.get_subjects()
        except Exception as error:  # noqa: BLE001 - reported to the person running check
            return CheckResult("registry", ok=False, summary=f"unreachable: {type(error).__name__}")
    return CheckResult("registry", ok=True, summary=f"reachable, {len(subjects)} subjects")


def cmd_dlq_inspect(args: argparse.Namespace, settings: Settings) -> int:
    """Summarise a dead-letter topic for a person (or as JSON)."""
    summary = inspect_topic(settings.kafka.client_config(), args.topic, samples=args.samples)
    print(json.dumps(summary.to_json(), indent=2) if args.json else summary.render())  # noqa: T201
    return EXIT_OK


def cmd_dlq_redrive(args: argparse.Namespace, settings: Settings) -> int:
    """Feed a dead-letter topic back through the pipeline; consume only what now succeeds."""
    metrics, health = Metrics(), Health()
    group = args.group or f"{settings.kafka.group_id}.redrive"
    with ExitStack() as stack:
        engine = _build_engine(
            settings,
            stack,
            topics=[args.topic],
            group_id=group,
            dry_run=settings.dry_run,
            sink=None,
            metrics=metrics,
            health=health,
            stop_when_idle=args.idle_seconds,
        )
        _install_signal_handlers(engine.request_stop)
        engine.run()
    tally = engine.tally
    print(  # noqa: T201
        f"redrive of {args.topic} (group {group}): applied {tally.applied}, "
        f"skipped {tally.skipped}, still failing {tally.held}"
    )
    return EXIT_OK if tally.held == 0 else EXIT_FAILURE


def cmd_schemas(args: argparse.Namespace, _settings: Settings | None) -> int:
    """List the consumed event types, or print the reader schema of one."""
    schemas = load_reader_schemas()
    if args.event_type:
        try:
            print(json.dumps(schemas[EventType(args.event_type)], indent=2))  # noqa: T201
        except ValueError:
            print(f"unknown event type {args.event_type!r}", file=sys.stderr)  # noqa: T201
            return EXIT_FAILURE
        return EXIT_OK
    for event_type in EventType:
        print(event_type.value)  # noqa: T201
    return EXIT_OK


# ---------------------------------------------------------------------------- explain (issue 15)


def cmd_explain(args: argparse.Namespace) -> int:
    """Why a learner has, or lacks, a program credential: a read-only decision trace.

    Loads its own settings (the services and the policy; no Kafka), reads with GETs only,
    prints the trace (a tree, or ``--json``). A service that cannot answer is one log line
    and exit 1; a configuration error exit 2.
    """
    try:
        settings = config.load_explain(os.environ)
    except ConfigError as error:
        print(f"credentials-consumer: configuration error: {error}", file=sys.stderr)  # noqa: T201
        return EXIT_CONFIG
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    question = explain.Question(
        lms_user_id=args.lms_user_id,
        username=args.username,
        program=args.program,
        course_run=args.course_run,
    )
    judge = explain.Judge.build(
        settings.policy,
        settings.services.completion_source,
        settings.certificate_dead_letter_topics,
    )
    services = build_services(settings.services)
    try:
        trace = explain.explain(services, judge, question)
    except ConsumerError as error:
        log.error(  # noqa: TRY400 - one clear line; a traceback adds nothing
            "explain_failed",
            lms_user_id=args.lms_user_id,
            reason=error.reason,
            error=redact_text(str(error), (args.username,)),
        )
        return EXIT_FAILURE
    finally:
        services.close()
    if args.json:
        print(json.dumps(trace.to_json(), indent=2, sort_keys=True))  # noqa: T201
    else:
        print(explain.render(trace), end="")  # noqa: T201
    return EXIT_OK


def _add_explain(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "explain", help="why a learner has, or lacks, a program credential (read-only)"
    )
    parser.add_argument("--lms-user-id", type=int, required=True, help="the learner's LMS id")
    parser.add_argument(
        "--username", required=True, help="the learner's username (Credentials keys by it)"
    )
    parser.add_argument("--program", metavar="UUID", help="only this program")
    parser.add_argument(
        "--course-run", metavar="KEY", help="also: course-certificate sync and CAD of this run"
    )
    parser.add_argument("--json", action="store_true", help="print the trace as JSON")


# ---------------------------------------------------------------------------- parsing


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="credentials-consumer",
        description="Keep Open edX Credentials in step with the Open edX event bus. "
        "Configured by environment variables (see the README).",
    )
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the worker")
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="print the commands as JSON lines, call no service (as CONSUMER_DRY_RUN=true)",
    )
    run.add_argument(
        "--stop-when-idle",
        type=float,
        metavar="SECONDS",
        help="exit 0 once every assigned partition is caught up and idle this long",
    )
    run.set_defaults(func=cmd_run)

    check = commands.add_parser("check", help="validate configuration and reach every dependency")
    check.set_defaults(func=cmd_check)

    dlq = commands.add_parser("dlq", help="dead-letter topics").add_subparsers(
        dest="dlq", required=True
    )
    inspect = dlq.add_parser("inspect", help="summarise a dead-letter topic")
    inspect.add_argument("topic")
    inspect.add_argument("--samples", type=int, default=5, help="records shown in full (default 5)")
    inspect.add_argument("--json", action="store_true", help="print the summary as JSON")
    inspect.set_defaults(func=cmd_dlq_inspect)
    redrive = dlq.add_parser("redrive", help="apply a dead-letter topic again")
    redrive.add_argument("topic")
    redrive.add_argument("--dry-run", action="store_true", help="print the commands, apply nothing")
    redrive.add_argument("--group", help="consumer group (default: CONSUMER_GROUP_ID + '.redrive')")
    redrive.add_argument(
        "--idle-seconds", type=float, default=3.0, help="stop once caught up this long (default 3)"
    )
    redrive.set_defaults(func=cmd_dlq_redrive)

    schemas = commands.add_parser("schemas", help="list consumed event types or print a schema")
    schemas.add_argument("event_type", nargs="?")
    schemas.set_defaults(func=cmd_schemas)
    _add_explain(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``credentials-consumer`` and ``python -m consumer``."""
    args = _parser().parse_args(argv)
    if args.command == "schemas":
        return cmd_schemas(args, None)
    if args.command == "explain":
        return cmd_explain(args)
    command: Callable[[argparse.Namespace, Settings], int] = args.func
    env = dict(os.environ)
    if getattr(args, "dry_run", False):
        env["CONSUMER_DRY_RUN"] = "true"  # the flag wins, and services need no settings
    try:
        settings = config.load(env)
    except ConfigError as error:
        print(f"credentials-consumer: configuration error: {error}", file=sys.stderr)  # noqa: T201
        return EXIT_CONFIG
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    try:
        return command(args, settings)
    except KeyboardInterrupt:
        return EXIT_FAILURE
