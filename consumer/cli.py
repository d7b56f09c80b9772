"""The command line: ``run``, ``replay``, ``offsets``, ``check``, ``dlq``, ``schemas``, ``explain``.

Wiring happens here and nowhere else: settings are loaded once (``config.load``), then the
decoder, handler, services, processor, dead-letter producer and engine are built
explicitly and handed to each other. Each command loads only the settings it uses:
``dlq inspect``, ``offsets``, ``replay --plan`` and any dry-run need Kafka's alone.

Exit codes: 0 success; 2 configuration or usage error (every bad variable named at once);
1 anything else. An expected failure — a broker or registry that cannot be reached, a
missing topic or group, a refused reset — is one JSON log line on stderr
(``command_failed``), never a traceback; librdkafka's own lines go through structlog too.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from types import FrameType
from typing import Any, TextIO
from wsgiref.simple_server import WSGIServer

import structlog
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from consumer import __version__, config, explain, groups, replay
from consumer.checks import Finding, exit_ok, kafka_findings, registry_finding
from consumer.config import Settings, consumer_config
from consumer.deadletter.inspect import inspect_topic
from consumer.deadletter.producer import DeadLetterProducer
from consumer.deadletter.topics import ensure_dead_letter_topics
from consumer.effects import Effects
from consumer.engine import (
    Bounds,
    Engine,
    FailureSink,
    HeldFailures,
    Limiter,
    LoggedFailures,
    Processor,
)
from consumer.errors import ConfigError, ConsumerError
from consumer.events import Event, EventType
from consumer.guard import ServiceGuard, configured_services
from consumer.handlers import Handled, Handler, make_handler
from consumer.kafka_admin import KafkaAdmin, TopicInfo
from consumer.kafkalog import with_logger
from consumer.lag import LagMonitor
from consumer.observability import Health, Metrics, configure_logging, serve
from consumer.positions import (
    AtTime,
    Earliest,
    Latest,
    Position,
    UsageError,
    parse_datetime,
    parse_offsets,
)
from consumer.processing import ApplyProcessor, DryRunProcessor
from consumer.progress import Reporter
from consumer.ratelimit import TokenBucket
from consumer.retry import Cancellations, Retrier
from consumer.services.bundle import Services, build_services
from consumer.services.check import run_checks
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


def _client_config(settings: Settings) -> dict[str, Any]:
    """Every Kafka client's settings, its log lines routed through structlog."""
    return with_logger(settings.kafka.client_config())


@contextmanager
def _admin(settings: Settings) -> Iterator[KafkaAdmin]:
    admin = KafkaAdmin(_client_config(settings), timeout=settings.kafka.timeout_seconds)
    try:
        yield admin
    finally:
        admin.close()


def _probe_registry(settings: Settings) -> None:
    """Fail fast (exit 1) when a batch command's registry cannot be reached at start."""
    if settings.kafka.schema_registry_url is None:
        return
    finding = registry_finding(settings.kafka)
    if finding.status == "fail":
        raise ConsumerError(
            f"the schema registry cannot be reached ({finding.summary}); "
            "check EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL",
            reason="registry_unreachable",
        )


def _limiter(rate: float) -> Limiter | None:
    return TokenBucket(rate) if rate > 0 else None


def _counted(handler: Handler, metrics: Metrics) -> Handler:
    """``handler``, counting the commands a dry run prints (result ``dry_run``)."""

    def handle(event: Event) -> Handled:
        handled = handler(event)
        for command in handled.commands:
            metrics.commands.labels(command.name, "dry_run").inc()
        return handled

    return handle


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
    sink: FailureSink,
    metrics: Metrics,
    health: Health,
    stop_when_idle: float | None,
    bounds: Bounds | None = None,
) -> Engine:
    """Wire decoder, handler, processor and consumer into an engine."""
    decoder = Decoder(stack.enter_context(_writer_schemas(settings)), load_reader_schemas())
    handler = make_handler(settings.policy)
    processor: Processor
    cancellations = Cancellations()  # a cancelled event's next request is refused by the guard
    guard = ServiceGuard.for_services(
        settings.circuit,
        metrics,
        configured_services(settings.services),
        cancellations=cancellations,
    )
    if dry_run:
        processor = DryRunProcessor(
            _counted(handler, metrics), stack.enter_context(_output(settings.dry_run_output))
        )
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
            cancellations=cancellations,
        )
        processor = ApplyProcessor(handler, effects.apply, retrier, metrics)
    return Engine(
        consumer_config=with_logger(consumer_config(settings.kafka, group_id=group_id)),
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
            AdminClient(_client_config(settings)),
            metrics,
            group_id=None if dry_run else group_id,
            from_earliest=settings.kafka.auto_offset_reset == "earliest",
        ),
        limiter=_limiter(settings.engine.max_rate),
        bounds=bounds,
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
    with _admin(settings) as admin:  # a broker that cannot be reached: exit 1 now
        admin.existing_topics(settings.kafka.full_topics)
        if not settings.dry_run:
            ensure_dead_letter_topics(admin, settings.kafka)
    with ExitStack() as stack:
        sink: FailureSink
        if not settings.dry_run:
            sink = DeadLetterProducer(
                _client_config(settings),
                topic_for=settings.kafka.dead_letter_topic,
                group=settings.kafka.group_id,
            )
        else:
            sink = LoggedFailures()
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


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    """Validate configuration and reach Kafka, the registry and each configured service."""
    with _admin(settings) as admin:
        findings = kafka_findings(admin, settings.kafka)
    findings.append(registry_finding(settings.kafka))
    if settings.services is not None:
        metrics = Metrics()
        guard = ServiceGuard.for_services(
            settings.circuit, metrics, configured_services(settings.services)
        )
        with _services(settings, guard, metrics) as services:
            findings += [Finding.of(result) for result in run_checks(services)]
    else:
        findings.append(Finding("services", "ok", "dry-run: not called"))
    if args.json:
        _print_json(
            {
                "configuration": dict(settings.describe()),
                "checks": [finding.to_json() for finding in findings],
                "ok": exit_ok(findings),
            }
        )
    else:
        print("configuration: ok")  # noqa: T201 - a command for people
        for name, value in settings.describe():
            print(f"  {name} = {value}")  # noqa: T201
        for finding in findings:
            print(finding.line())  # noqa: T201
    return EXIT_OK if exit_ok(findings) else EXIT_FAILURE


def cmd_dlq_inspect(args: argparse.Namespace, settings: Settings) -> int:
    """Summarise a dead-letter topic for a person (or as JSON)."""
    with _admin(settings) as admin:
        admin.topics([args.topic])
    summary = inspect_topic(_client_config(settings), args.topic, samples=args.samples)
    print(json.dumps(summary.to_json(), indent=2) if args.json else summary.render())  # noqa: T201
    return EXIT_OK


def cmd_dlq_redrive(args: argparse.Namespace, settings: Settings) -> int:
    """Feed a dead-letter topic back through the pipeline; consume only what now succeeds."""
    metrics, health = Metrics(), Health()
    group = args.group or f"{settings.kafka.group_id}.redrive"
    with _admin(settings) as admin:
        admin.topics([args.topic])
    _probe_registry(settings)
    with ExitStack() as stack:
        engine = _build_engine(
            settings,
            stack,
            topics=[args.topic],
            group_id=group,
            dry_run=settings.dry_run,
            sink=HeldFailures(),
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


def _print_json(value: object, stream: TextIO | None = None) -> None:
    print(json.dumps(value, indent=2), file=stream or sys.stdout)


def _consumed_topics(names: Sequence[str] | None, settings: Settings) -> list[str]:
    """``--topic`` values as full topic names (with or without the prefix); default: all."""
    kafka = settings.kafka
    if not names:
        return list(kafka.full_topics)
    chosen = []
    for name in names:
        full = name if name in kafka.full_topics else kafka.full_topic(name)
        if full not in kafka.full_topics:
            raise UsageError(
                f"--topic {name} is not a consumed topic ({', '.join(kafka.full_topics)}; "
                "see CONSUMER_TOPICS)"
            )
        chosen.append(full)
    return list(dict.fromkeys(chosen))


def _replay_start(args: argparse.Namespace) -> Position | None:
    if args.from_beginning:
        return Earliest()
    start: Position | None = args.from_datetime or args.from_offset
    return start


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    """Replay a fixed range through the pipeline, in a group of its own; resumable."""
    if args.max_rate is not None:
        settings = dataclasses.replace(
            settings, engine=dataclasses.replace(settings.engine, max_rate=args.max_rate)
        )
    if args.output:
        settings = dataclasses.replace(settings, dry_run_output=args.output)
    # A start below the log's start (records expired since the plan) goes to the earliest
    # record still there, never to the end: "latest" would skip the rest of the range.
    settings = dataclasses.replace(
        settings, kafka=dataclasses.replace(settings.kafka, auto_offset_reset="earliest")
    )
    kafka = settings.kafka
    dry_run = settings.dry_run
    group = args.group_id or replay.default_group(kafka.group_id, datetime.now(UTC))
    if group == kafka.group_id:
        raise UsageError(f"--group-id {group} is the live group: a replay needs its own")
    # With the commands on stdout (a dry run without --output), people's text goes to stderr.
    report = sys.stderr if dry_run and settings.dry_run_output in (None, "-") else sys.stdout
    with _admin(settings) as admin:
        plan = replay.stored_plan(admin, group, dry_run=dry_run) if args.group_id else None
        if plan is None:
            plan = _new_replay_plan(args, settings, admin, group)
        else:
            admin.topics(sorted({item.topic for item in plan.ranges}))
            if _replay_start(args) is not None or args.topic or args.to_datetime:
                log.warning(
                    "replay_range_options_ignored",
                    group=group,
                    why="resuming: the range stored in the group when the replay started is used",
                )
        if args.json:
            _print_json(plan.to_json(), report)
        else:
            print(plan.render(), file=report)
        if args.plan:
            return EXIT_OK
        _probe_registry(settings)  # before anything is recorded
        if not dry_run:
            _refuse_active_group(admin, group)
            if not plan.resumed:
                replay.record(admin, plan)
            ensure_dead_letter_topics(admin, kafka)
    return _run_replay(args, settings, plan, report)


def _new_replay_plan(
    args: argparse.Namespace, settings: Settings, admin: KafkaAdmin, group: str
) -> replay.Plan:
    start = _replay_start(args)
    if start is None:
        raise UsageError(
            "say where to start: --from-datetime, --from-offset or --from-beginning "
            "(or --group-id of an interrupted replay, to resume it)"
        )
    to: AtTime | None = args.to_datetime
    if to is not None and isinstance(start, AtTime) and to.timestamp_ms < start.timestamp_ms:
        raise UsageError(f"--to-datetime {to.text} is before --from-datetime {start.text}")
    topics: dict[str, TopicInfo] = admin.topics(_consumed_topics(args.topic, settings))
    return replay.new_plan(
        admin,
        topics,
        group=group,
        start=start,
        to=to,
        now=datetime.now(UTC),
        dry_run=settings.dry_run,
    )


def _refuse_active_group(admin: KafkaAdmin, group: str) -> None:
    info = admin.group(group)
    if info.members:
        raise ConsumerError(
            f"group {group} has {len(info.members)} active member(s): is this replay "
            "running elsewhere? Stop it first",
            reason="group_active",
        )


def _run_replay(
    args: argparse.Namespace, settings: Settings, plan: replay.Plan, report: TextIO
) -> int:
    metrics, health = Metrics(), Health()
    server = _serve_if_free(metrics, health, settings.metrics_port)
    progress = replay.progress_of(plan, metrics)
    completed = plan.remaining == 0
    tally: dict[str, int] = {"applied": 0, "skipped": 0, "dead_lettered": 0, "held": 0}
    if not completed:
        log.info(
            "replay_starting",
            group=plan.group,
            records=plan.remaining,
            max_rate=settings.engine.max_rate or None,
            dry_run=settings.dry_run,
        )
        with ExitStack() as stack:
            sink: FailureSink = (
                LoggedFailures()
                if settings.dry_run
                else DeadLetterProducer(
                    _client_config(settings),
                    topic_for=settings.kafka.dead_letter_topic,
                    group=plan.group,  # a replay's dead letters name the replay's group
                )
            )
            engine = _build_engine(
                settings,
                stack,
                topics=sorted({item.topic for item in plan.ranges}),
                group_id=plan.group,
                dry_run=settings.dry_run,
                sink=sink,
                metrics=metrics,
                health=health,
                stop_when_idle=None,
                bounds=replay.ReplayBounds(plan, progress),
            )
            terminal = sys.stderr if sys.stderr.isatty() else None
            reporter = Reporter(progress, terminal=terminal, interval=args.progress_interval)
            _install_signal_handlers(engine.request_stop)
            reporter.start()
            try:
                engine.run()
            finally:
                if engine.completed:
                    progress.complete()
                reporter.stop()
        completed = engine.completed
        tally = dataclasses.asdict(engine.tally)
    if server is not None:
        server.shutdown()
    overall = progress.overall()
    summary = replay.Summary(
        group=plan.group,
        completed=completed,
        dry_run=settings.dry_run,
        elapsed_seconds=progress.elapsed,
        planned=overall.total,
        done=overall.done,
        events=tally,
        commands=replay.commands_by_kind(metrics),
        dead_letters=tally["dead_lettered"],
    )
    if args.json:
        _print_json(summary.to_json(), report)
    else:
        print(summary.render(), file=report)
    log.info("replay_finished", **summary.to_json())
    return EXIT_OK if completed else EXIT_FAILURE


def _serve_if_free(metrics: Metrics, health: Health, port: int) -> WSGIServer | None:
    """The metrics server, unless the port is taken (a replay run beside a worker, in its pod)."""
    if not port:
        return None
    try:
        return serve(metrics, health, port)
    except OSError as error:
        log.warning("metrics_server_not_started", port=port, error=str(error))
        return None


def cmd_offsets_show(args: argparse.Namespace, settings: Settings) -> int:
    """A group's committed offsets, end offsets and lag, its state and members."""
    group = args.group or settings.kafka.group_id
    with _admin(settings) as admin:
        shown = groups.show(admin, group, settings.kafka.full_topics)
    if args.json:
        _print_json(shown.to_json())
    else:
        print(shown.render())  # noqa: T201
    return EXIT_OK


def _reset_target(args: argparse.Namespace) -> Position:
    if args.to_earliest:
        return Earliest()
    if args.to_latest:
        return Latest()
    target: Position = args.to_datetime or args.to_offset
    return target


def cmd_offsets_reset(args: argparse.Namespace, settings: Settings) -> int:
    """Move a group's offsets: a plan, written only with ``--execute`` and an idle group."""
    group = args.group or settings.kafka.group_id
    with _admin(settings) as admin:
        topics = admin.topics(_consumed_topics(args.topic, settings))
        plan = groups.reset_plan(admin, group, topics, _reset_target(args))
        if not args.json:
            print(plan.render())  # noqa: T201
        if args.execute:
            groups.execute(admin, plan)
    if args.json:
        _print_json({**plan.to_json(), "executed": bool(args.execute)})
    else:
        print(  # noqa: T201
            f"offsets of group {group} reset"
            if args.execute
            else "nothing changed: run again with --execute to apply this plan"
        )
    return EXIT_OK


def cmd_schemas(args: argparse.Namespace, _settings: Settings | None) -> int:
    """List the consumed event types, or print the reader schema of one."""
    schemas = load_reader_schemas()
    if args.event_type:
        try:
            print(json.dumps(schemas[EventType(args.event_type)], indent=2))  # noqa: T201
        except ValueError:
            known = ", ".join(event_type.value for event_type in EventType)
            print(  # noqa: T201
                f"credentials-consumer: unknown event type {args.event_type!r} (known: {known})",
                file=sys.stderr,
            )
            return EXIT_CONFIG
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
        for line in str(error).splitlines():
            print(f"credentials-consumer: configuration error: {line}", file=sys.stderr)  # noqa: T201
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
    run.set_defaults(func=cmd_run, services=True)

    _replay_parser(commands)
    _offsets_parser(commands)

    check = commands.add_parser("check", help="validate configuration and reach every dependency")
    check.add_argument(
        "--json", action="store_true", help="print the configuration and checks as JSON"
    )
    check.set_defaults(func=cmd_check, services=True)

    dlq = commands.add_parser("dlq", help="dead-letter topics").add_subparsers(
        dest="dlq", required=True
    )
    inspect = dlq.add_parser("inspect", help="summarise a dead-letter topic")
    inspect.add_argument("topic")
    inspect.add_argument("--samples", type=int, default=5, help="records shown in full (default 5)")
    inspect.add_argument("--json", action="store_true", help="print the summary as JSON")
    inspect.set_defaults(func=cmd_dlq_inspect, services=False)
    redrive = dlq.add_parser("redrive", help="apply a dead-letter topic again")
    redrive.add_argument("topic")
    redrive.add_argument("--dry-run", action="store_true", help="print the commands, apply nothing")
    redrive.add_argument("--group", help="consumer group (default: CONSUMER_GROUP_ID + '.redrive')")
    redrive.add_argument(
        "--idle-seconds", type=float, default=3.0, help="stop once caught up this long (default 3)"
    )
    redrive.set_defaults(func=cmd_dlq_redrive, services=True)

    schemas = commands.add_parser("schemas", help="list consumed event types or print a schema")
    schemas.add_argument("event_type", nargs="?")
    schemas.set_defaults(func=cmd_schemas, services=False)
    _add_explain(commands)
    return parser


def _replay_parser(commands: Any) -> None:  # noqa: ANN401 - argparse's subparsers action is private
    replay_cmd = commands.add_parser(
        "replay",
        help="replay a range of the consumed topics through the pipeline (backfill)",
        description="Replay a fixed range of the consumed topics, in a consumer group of its "
        "own, through the worker's pipeline. The plan is printed first; the end of each "
        "partition is fixed when the replay starts. Rerun with --group-id to resume.",
    )
    start = replay_cmd.add_mutually_exclusive_group()
    start.add_argument(
        "--from-datetime",
        type=parse_datetime,
        metavar="ISO",
        help="start at the first record at or after this time (no zone: UTC)",
    )
    start.add_argument(
        "--from-offset",
        type=parse_offsets,
        metavar="P:O[,P:O...]",
        help="start at these offsets of these partitions (TOPIC:P:O with several topics)",
    )
    start.add_argument(
        "--from-beginning", action="store_true", help="start at the beginning of the log"
    )
    replay_cmd.add_argument(
        "--to-datetime",
        type=parse_datetime,
        metavar="ISO",
        help="stop before the first record at or after this time (default: the end now)",
    )
    replay_cmd.add_argument(
        "--topic",
        action="append",
        metavar="TOPIC",
        help="a consumed topic to replay (repeatable; default: every consumed topic)",
    )
    replay_cmd.add_argument(
        "--group-id",
        metavar="GROUP",
        help="the replay's group (default: <CONSUMER_GROUP_ID>.replay.<UTC time>); "
        "an interrupted replay's group resumes it",
    )
    replay_cmd.add_argument(
        "--plan", action="store_true", help="print the plan and exit without consuming"
    )
    replay_cmd.add_argument(
        "--dry-run", action="store_true", help="print the commands as JSON lines, apply nothing"
    )
    replay_cmd.add_argument(
        "--output", metavar="FILE", help="with --dry-run: write the commands to FILE"
    )
    replay_cmd.add_argument(
        "--max-rate",
        type=_rate,
        metavar="N",
        help="start at most N events per second (default: CONSUMER_MAX_RATE; 0: no cap)",
    )
    replay_cmd.add_argument(
        "--progress-interval",
        type=_positive,
        default=10.0,
        metavar="SECONDS",
        help="without a terminal: log progress every SECONDS (default 10)",
    )
    replay_cmd.add_argument("--json", action="store_true", help="plan and summary as JSON")
    replay_cmd.set_defaults(func=cmd_replay, services=True)


def _offsets_parser(commands: Any) -> None:  # noqa: ANN401 - argparse's subparsers action is private
    offsets = commands.add_parser("offsets", help="show or reset a consumer group's offsets")
    actions = offsets.add_subparsers(dest="offsets", required=True)
    show = actions.add_parser("show", help="committed offsets, end offsets, lag and members")
    show.add_argument("--group", help="consumer group (default: CONSUMER_GROUP_ID)")
    show.add_argument("--json", action="store_true", help="print as JSON")
    show.set_defaults(func=cmd_offsets_show, services=False)
    reset = actions.add_parser(
        "reset",
        help="move a group's offsets (a plan unless --execute)",
        description="Compute new offsets for the group and print them; write them only with "
        "--execute, and only while the group has no active member.",
    )
    target = reset.add_mutually_exclusive_group(required=True)
    target.add_argument("--to-datetime", type=parse_datetime, metavar="ISO")
    target.add_argument("--to-offset", type=parse_offsets, metavar="P:O[,P:O...]")
    target.add_argument("--to-earliest", action="store_true")
    target.add_argument("--to-latest", action="store_true")
    reset.add_argument("--group", help="consumer group (default: CONSUMER_GROUP_ID)")
    reset.add_argument(
        "--topic", action="append", metavar="TOPIC", help="a consumed topic (default: all)"
    )
    reset.add_argument("--execute", action="store_true", help="write the new offsets")
    reset.add_argument("--json", action="store_true", help="print the plan as JSON")
    reset.set_defaults(func=cmd_offsets_reset, services=False)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 86_400:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 86400")
    return value


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 100_000:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 100000")
    return value


def load_settings(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    """The settings ``args``'s command uses; ``ConfigErrors`` names every bad variable.

    Services are required only by commands that apply events for real: ``run``, ``check``,
    ``dlq redrive`` and ``replay``, not with ``--dry-run`` (or ``CONSUMER_DRY_RUN``), and
    not ``replay --plan``.
    """
    env = dict(environ)
    if getattr(args, "dry_run", False):
        env["CONSUMER_DRY_RUN"] = "true"  # the flag wins, and services need no settings
    services = bool(args.services) and not getattr(args, "plan", False)
    return config.load(env, with_services=services)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``credentials-consumer`` and ``python -m consumer``."""
    args = _parser().parse_args(argv)
    if args.command == "schemas":
        return cmd_schemas(args, None)
    if args.command == "explain":
        return cmd_explain(args)
    command: Callable[[argparse.Namespace, Settings], int] = args.func
    try:
        settings = load_settings(args, os.environ)
    except ConfigError as error:
        for line in str(error).splitlines():
            print(f"credentials-consumer: configuration error: {line}", file=sys.stderr)  # noqa: T201
        return EXIT_CONFIG
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    return _run_command(command, args, settings)


def _run_command(
    command: Callable[[argparse.Namespace, Settings], int],
    args: argparse.Namespace,
    settings: Settings,
) -> int:
    """Run ``command``; an expected failure is one JSON line and exit 1, not a traceback."""
    try:
        return command(args, settings)
    except KeyboardInterrupt:
        return EXIT_FAILURE
    except UsageError as error:
        print(f"credentials-consumer: {error}", file=sys.stderr)  # noqa: T201
        return EXIT_CONFIG
    except (ConsumerError, KafkaException) as error:
        reason = error.reason if isinstance(error, ConsumerError) else "kafka_error"
        log.error(  # noqa: TRY400 - one clear line is the point; a traceback would bury it
            "command_failed", command=_name(args), reason=reason, error=str(error)
        )
        return EXIT_FAILURE


def _name(args: argparse.Namespace) -> str:
    sub = getattr(args, "dlq", None) or getattr(args, "offsets", None)
    return f"{args.command} {sub}" if sub else str(args.command)
