"""The engine's loop on an in-memory consumer: released work starts nothing, bounds, labels.

The delivery guarantees proper are tested on the real broker (``tests/integration``); these
tests pin what needs exact control of threads and time: an item queued behind a busy pool
when its partition goes, dead letters piling up while their topic cannot be written, label
values of poison, and the schema registry's backoff.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from confluent_kafka import KafkaError
from structlog.testing import capture_logs

from consumer.config import EngineSettings
from consumer.engine import Engine, HeldFailures
from consumer.engine.workers import Workers, WorkItem
from consumer.errors import RegistryUnavailableError
from consumer.events import CertificateEvent, Event, EventMeta, EventType, Learner, parse_course_key
from consumer.observability import Metrics
from consumer.outcomes import Abandoned, Applied, Failed, Outcome
from consumer.wire import Decoder, LocalWriterSchemas, Record, load_reader_schemas
from tests.support.clock import FakeClock
from tests.support.memory_consumer import MemoryConsumer

TOPIC = "learning-certificate-lifecycle"
CHANGED = EventType.CERTIFICATE_CHANGED
JOIN = 10.0  # generous bound on a thread that should already be done; never asserted as time


def event_for(record: Record) -> CertificateEvent:
    """The event a record stands for: learner = its key, id = its ce_id header."""
    user_id = int((record.key or b"0").decode())
    return CertificateEvent(
        meta=EventMeta(id=record.header("ce_id")[0].decode(), type=CHANGED),
        learner=Learner(user_id=user_id, username=f"learner{user_id}"),
        course_key=parse_course_key("course-v1:Eng+C1+2026"),
        mode="verified",
        status="downloadable",
    )


class ScriptedDecoder(Decoder):
    """Decodes with ``event_for``, or raises what ``script`` returns for a record."""

    def __init__(self, script: Callable[[Record], Exception | None] = lambda _record: None) -> None:
        self._script = script

    def decode(self, record: Record) -> Event:
        error = self._script(record)
        if error is not None:
            raise error
        return event_for(record)


def produce(consumer: MemoryConsumer, partition: int, user_id: int, event_id: str) -> None:
    consumer.produce(
        TOPIC,
        partition,
        key=str(user_id).encode(),
        value=b"\0",
        headers=[("ce_id", event_id.encode()), ("ce_type", str(CHANGED).encode())],
    )


@dataclass
class Processor:
    """Records the events it is called with; ``hold`` ids block until ``release``."""

    hold: set[str] = field(default_factory=set)
    release: threading.Event = field(default_factory=threading.Event)
    started: list[str] = field(default_factory=list)

    def __call__(self, event: Event, _cancelled: threading.Event) -> Outcome:
        self.started.append(event.meta.id)
        if event.meta.id in self.hold:
            self.release.wait(JOIN)
        return Applied(commands=1)


class Sink:
    """A dead-letter sink whose deliveries all succeed, or all fail."""

    def __init__(self, *, failing: bool = False) -> None:
        self.failing = failing
        self.sent: list[Record] = []
        self._pending: list[Callable[[KafkaError | None], None]] = []

    def topic_for(self, source_topic: str) -> str:
        return f"{source_topic}.dlq"

    def send(
        self, record: Record, failure: Failed, delivered: Callable[[KafkaError | None], None]
    ) -> bool:
        assert failure.stage
        self.sent.append(record)
        self._pending.append(delivered)
        return True

    def poll(self, timeout: float = 0.0) -> None:  # noqa: ARG002 - the protocol's
        pending, self._pending = self._pending, []
        for delivered in pending:
            delivered(KafkaError(KafkaError._MSG_TIMED_OUT) if self.failing else None)

    def flush(self, timeout: float) -> int:
        self.poll(timeout)
        return 0


@dataclass
class Running:
    """An engine running its loop on a thread, over a memory consumer."""

    engine: Engine
    consumer: MemoryConsumer
    metrics: Metrics
    thread: threading.Thread

    def stop(self) -> None:
        self.engine.request_stop("test over")
        self.thread.join(JOIN)
        assert not self.thread.is_alive()


@pytest.fixture
def run_engine() -> Iterator[Callable[..., Running]]:
    """Start engines on threads; each is stopped at the end of the test."""
    started: list[Running] = []

    def start(
        consumer: MemoryConsumer,
        processor: Callable[[Event, threading.Event], Outcome],
        *,
        decoder: Decoder | None = None,
        sink: Sink | None = None,
        clock: Callable[[], float] = time.monotonic,
        **settings: float,
    ) -> Running:
        metrics = Metrics()
        engine = Engine(
            consumer_config={},
            topics=[TOPIC],
            decoder=decoder or ScriptedDecoder(),
            processor=processor,
            sink=sink or HeldFailures(),
            settings=EngineSettings(**{"commit_interval_seconds": 0.05, **settings}),  # type: ignore[arg-type]
            metrics=metrics,
            clock=clock,
            consumer_factory=consumer.factory,
        )
        thread = threading.Thread(target=engine.run, name="engine", daemon=True)
        running = Running(engine, consumer, metrics, thread)
        started.append(running)
        thread.start()
        return running

    yield start
    for running in started:
        if running.thread.is_alive():
            running.stop()


def wait_until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` until true (a thread reached a point); fail after a generous bound."""
    deadline = time.monotonic() + JOIN
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("condition never became true")
        time.sleep(0.002)


# ---------------------------------------------------------------------------- released work


def test_work_queued_behind_a_busy_pool_never_starts_once_its_partition_is_revoked(
    run_engine: Callable[..., Running],
) -> None:
    """An event waiting for a thread when its partition goes is abandoned unstarted.

    Before the fix, it ran (and wrote) once a thread was free — after the partition had been
    released to another member.
    """
    consumer = MemoryConsumer()
    produce(consumer, 0, user_id=1, event_id="running")
    produce(consumer, 1, user_id=2, event_id="queued")
    consumer.assign((TOPIC, 0), (TOPIC, 1))
    processor = Processor(hold={"running"})
    running = run_engine(consumer, processor, max_in_flight=1, revoke_timeout_seconds=0.2)
    wait_until(lambda: processor.started == ["running"] and consumer.delivered == 2)

    with capture_logs() as logs:
        consumer.revoke((TOPIC, 1))
        wait_until(lambda: any(line["event"] == "partitions_released" for line in logs))
    processor.release.set()
    wait_until(lambda: running.engine.tally.applied == 1)
    running.stop()

    assert processor.started == ["running"]
    abandoned = [line for line in logs if line["event"] == "event_abandoned"]
    assert [line["offset"] for line in abandoned] == [0]
    assert abandoned[0]["partition"] == 1


def test_work_queued_at_shutdown_never_starts(run_engine: Callable[..., Running]) -> None:
    """SIGTERM: the running event finishes; one still waiting for a thread never starts."""
    consumer = MemoryConsumer()
    produce(consumer, 0, user_id=1, event_id="running")
    produce(consumer, 0, user_id=2, event_id="queued")
    consumer.assign((TOPIC, 0))
    processor = Processor(hold={"running"})
    running = run_engine(consumer, processor, max_in_flight=1, drain_timeout_seconds=5.0)
    wait_until(lambda: processor.started == ["running"] and consumer.delivered == 2)

    running.engine.request_stop("SIGTERM")
    threading.Timer(0.2, processor.release.set).start()  # the running request answers
    running.thread.join(JOIN)

    assert processor.started == ["running"]
    assert running.engine.tally.applied == 1
    assert consumer.commits[-1].offset == 1  # the queued one is consumed again after a restart


def test_the_worker_thread_abandons_an_item_cancelled_before_it_ran() -> None:
    """The check on the worker thread: a cancelled item never reaches the processor.

    It covers the gap the pool's own cancellation leaves: a thread that took the item off
    the queue just before the partition was released.
    """
    consumer = MemoryConsumer()
    processor = Processor()
    workers = Workers(processor, max_in_flight=1, metrics=Metrics())
    produce(consumer, 0, user_id=1, event_id="late")
    record = Record.from_message(consumer.logs[(TOPIC, 0)][0])
    item = WorkItem(record=record, event=event_for(record), key="1", generation=1)
    item.cancelled.set()

    workers.work(item)  # the worker thread's entry point, run here directly

    ((finished, outcome),) = list(workers.completions())
    workers.shutdown()
    assert finished is item
    assert isinstance(outcome, Abandoned)
    assert processor.started == []


# ---------------------------------------------------------------------------- memory and labels


def poison(consumer: MemoryConsumer, count: int, ce_type: bytes) -> None:
    for index in range(count):
        consumer.produce(
            TOPIC,
            0,
            value=b"garbage",
            headers=[("ce_id", f"p{index}".encode()), ("ce_type", ce_type)],
        )


def real_decoder() -> Decoder:
    return Decoder(LocalWriterSchemas(), load_reader_schemas())


def test_dead_letters_waiting_to_be_resent_count_against_the_buffer(
    run_engine: Callable[..., Running],
) -> None:
    """While the dead-letter topic cannot be written, consumption stops at the buffer bound.

    Before the fix, records waiting to be resent were not counted, so the engine kept
    consuming (and holding) poison for as long as the topic stayed unwritable.
    """
    consumer = MemoryConsumer()
    poison(consumer, 60, b"org.example.bogus.v1")
    consumer.assign((TOPIC, 0))
    clock = FakeClock()
    consumer.on_consume = lambda: clock.advance(0.5)  # resends fall due, and fail again
    running = run_engine(
        consumer,
        Processor(),
        decoder=real_decoder(),
        sink=Sink(failing=True),
        clock=clock,
        max_buffered=10,
    )
    wait_until(lambda: consumer.delivered >= 10 and (TOPIC, 0) in consumer.paused)
    time.sleep(0.2)  # many more turns of the loop, resends included
    running.stop()

    received = running.metrics.registry.get_sample_value(
        "credentials_consumer_events_received_total", {"topic": TOPIC}
    )
    assert received == 10


def test_the_event_type_label_of_poison_is_a_known_type_or_unknown(
    run_engine: Callable[..., Running],
) -> None:
    """A poison record's raw ce_type never becomes a label value (one series per value)."""
    consumer = MemoryConsumer()
    poison(consumer, 1, b"org.example.attacker-chosen-1234")
    poison(consumer, 1, str(CHANGED).encode())  # a consumed type whose body is garbage
    consumer.assign((TOPIC, 0))
    running = run_engine(consumer, Processor(), decoder=real_decoder(), sink=Sink())
    wait_until(lambda: running.engine.tally.dead_lettered == 2)
    running.stop()

    labels = {
        sample.labels["event_type"]
        for metric in running.metrics.registry.collect()
        if metric.name == "credentials_consumer_events_done"
        for sample in metric.samples
        if sample.name.endswith("_total")
    }
    assert labels == {"unknown", str(CHANGED)}


# ---------------------------------------------------------------------------- registry


def test_the_registry_backoff_starts_afresh_after_a_record_decodes(
    run_engine: Callable[..., Running],
) -> None:
    """After the registry answers again, the next blip waits 1 s again, not where it left off."""
    consumer = MemoryConsumer()
    produce(consumer, 0, user_id=1, event_id="first")
    produce(consumer, 0, user_id=2, event_id="second")
    consumer.assign((TOPIC, 0))
    blips = {"first": 2, "second": 1}  # failed lookups before the record decodes

    def registry(record: Record) -> Exception | None:
        event_id = record.header("ce_id")[0].decode()
        if blips[event_id]:
            blips[event_id] -= 1
            return RegistryUnavailableError("registry down", service="registry")
        return None

    clock = FakeClock()
    consumer.on_consume = lambda: clock.advance(0.25)
    with capture_logs() as logs:
        running = run_engine(consumer, Processor(), decoder=ScriptedDecoder(registry), clock=clock)
        wait_until(lambda: running.engine.tally.applied == 2)
        running.stop()

    waits = [line["retry_in"] for line in logs if line["event"] == "schema_registry_unavailable"]
    assert waits == [1.0, 2.0, 1.0]
