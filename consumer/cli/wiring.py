"""The building blocks commands share: clients, the engine, dead-letter sinks, signals.

Wiring happens here and nowhere else: the decoder, handler, services, processor,
dead-letter sink and engine are built explicitly from ``Settings`` and handed to each
other; librdkafka's own log lines go through structlog (``kafkalog``).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from types import FrameType
from typing import Any, TextIO
from wsgiref.simple_server import WSGIServer

import structlog
from confluent_kafka.admin import AdminClient

from consumer.checks import registry_finding
from consumer.config import Settings, consumer_config
from consumer.deadletter.producer import DeadLetterProducer
from consumer.effects import Effects
from consumer.engine import (
    Bounds,
    Engine,
    FailureSink,
    Limiter,
    LoggedFailures,
    Processor,
)
from consumer.errors import ConsumerError, UsageError
from consumer.events import Event
from consumer.guard import ServiceGuard, configured_services
from consumer.handlers import Handled, Handler, make_handler
from consumer.kafka_admin import KafkaAdmin
from consumer.kafkalog import with_logger
from consumer.lag import LagMonitor
from consumer.observability import Health, Metrics, serve
from consumer.processing import ApplyProcessor, DryRunProcessor
from consumer.ratelimit import TokenBucket
from consumer.retry import Cancellations, Retrier
from consumer.services.bundle import Services, build_services
from consumer.services.program_cache import CacheState
from consumer.wire import (
    Decoder,
    LocalWriterSchemas,
    RegistryWriterSchemas,
    WriterSchemas,
    load_reader_schemas,
    registry_client,
)

log = structlog.get_logger("consumer.cli")


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
def services(settings: Settings, guard: ServiceGuard, metrics: Metrics) -> Iterator[Services]:
    """Every service client, started (the program cache refresher), closed on exit."""
    assert settings.services is not None

    def program_cache_refreshed(state: CacheState) -> None:
        metrics.program_cache_stale.set(1 if state.stale or state.incomplete else 0)

    built = build_services(
        settings.services, guard=guard, on_program_cache_refresh=program_cache_refreshed
    )
    built.start()
    try:
        yield built
    finally:
        built.close()


@contextmanager
def _output(path: str | None) -> Iterator[TextIO]:
    if not path or path == "-":
        yield sys.stdout
        return
    with open(path, "a", encoding="utf-8") as stream:
        yield stream


def client_config(settings: Settings) -> dict[str, Any]:
    """Every Kafka client's settings, its log lines routed through structlog."""
    return with_logger(settings.kafka.client_config())


@contextmanager
def admin(settings: Settings) -> Iterator[KafkaAdmin]:
    """The Kafka admin client, closed on exit."""
    client = KafkaAdmin(client_config(settings), timeout=settings.kafka.timeout_seconds)
    try:
        yield client
    finally:
        client.close()


def probe_registry(settings: Settings) -> None:
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


def consumed_topics(names: Sequence[str] | None, settings: Settings) -> list[str]:
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


def _limiter(rate: float) -> Limiter | None:
    return TokenBucket(rate) if rate > 0 else None


def _counted(handler: Handler, metrics: Metrics) -> Handler:
    """``handler``, counting the commands a dry run prints (result ``dry_run``).

    Each command's counter is looked up once (``labels()`` takes a lock and builds a key).
    """
    counters: dict[str, Any] = {}

    def handle(event: Event) -> Handled:
        handled = handler(event)
        for command in handled.commands:
            counter = counters.get(command.name)
            if counter is None:
                counter = counters[command.name] = metrics.commands.labels(command.name, "dry_run")
            counter.inc()
        return handled

    return handle


def install_signal_handlers(stop: Callable[[str], None]) -> None:
    """SIGTERM/SIGINT drain and stop; a second SIGINT aborts at once.

    The handler only records the request: it must not log or take a lock (see
    ``Engine.request_stop``); the engine logs the signal from its loop.
    """

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop(signal.Signals(signum).name)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def dead_letter_sink(settings: Settings, group: str) -> FailureSink:
    """Where failures go: the dead-letter producer, or in dry-run a log line only.

    ``group`` is named in the dead-letter headers (a replay's records name the replay's).
    """
    if settings.dry_run:
        return LoggedFailures()
    return DeadLetterProducer(
        client_config(settings), topic_for=settings.kafka.dead_letter_topic, group=group
    )


def serve_if_free(metrics: Metrics, health: Health, port: int) -> WSGIServer | None:
    """The metrics server, unless the port is taken (a replay run beside a worker, in its pod)."""
    if not port:
        return None
    try:
        return serve(metrics, health, port)
    except OSError as error:
        log.warning("metrics_server_not_started", port=port, error=str(error))
        return None


def build_engine(
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
        effects = Effects(stack.enter_context(services(settings, guard, metrics)), settings.policy)
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
            AdminClient(client_config(settings)),
            metrics,
            from_earliest=settings.kafka.auto_offset_reset == "earliest",
        ),
        limiter=_limiter(settings.engine.max_rate),
        bounds=bounds,
        inline=dry_run,  # writing JSON lines waits on no service: no thread hand-off
    )
