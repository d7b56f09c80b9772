"""Fakes around the engine for its unit tests: decoder, processor, dead-letter sink, a runner.

They talk to the engine only through its seams (``consumer_factory``, ``Decoder.decode``,
the ``Processor`` and ``FailureSink`` protocols, ``run``, ``request_stop``, ``tally``), so
tests written on them survive changes to the engine's insides. Records stand for events
by their headers: ``ce_id`` is the event id, the key the learner's LMS user id (so the
ordering key: one learner, one lane).

Waiting is on conditions, never on time: ``wait_until`` polls a condition for at most
``JOIN`` seconds, and ``MemoryConsumer.consumes`` counts the engine's turns.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from confluent_kafka import KafkaError

from consumer.circuit import Breakers
from consumer.config import EngineSettings
from consumer.engine import Engine, HeldFailures, Limiter
from consumer.errors import AvroDecodeError, RegistryUnavailableError
from consumer.events import CertificateEvent, Event, EventMeta, EventType, Learner, parse_course_key
from consumer.observability import Metrics
from consumer.outcomes import Applied, Failed, Outcome
from consumer.wire import Decoder, Record
from tests.support.clock import FakeClock
from tests.support.memory_consumer import TP, MemoryConsumer

TOPIC = "learning-certificate-lifecycle"
P0: TP = (TOPIC, 0)
P1: TP = (TOPIC, 1)
JOIN = 10.0  # generous bound on something that should happen at once; never asserted as time
CONSUMER_CONFIG = {  # the engine's librdkafka settings that the memory broker honours
    "group.id": "unit-tests",
    "auto.offset.reset": "earliest",
    "enable.partition.eof": True,
}


def send(consumer: MemoryConsumer, tp: TP, event_id: str, *, learner: int) -> int:
    """Produce the record of event ``event_id`` of ``learner`` to ``tp``; return its offset."""
    return consumer.produce(
        tp[0],
        tp[1],
        key=str(learner).encode(),
        value=b"\0\0\0\0\1",
        headers=[
            ("ce_id", event_id.encode()),
            ("ce_type", str(EventType.CERTIFICATE_CHANGED).encode()),
        ],
    )


def event_id_of(record: Record) -> str:
    """The event id a test record carries."""
    return record.header("ce_id")[0].decode()


class ScriptedDecoder(Decoder):
    """Turns test records into events; ``poison`` ids fail to decode, ``unreachable`` ids wait.

    ``unreachable``: the ids whose writer schema cannot be fetched now (the registry is
    down for them); the test removes an id to bring the registry back.
    """

    def __init__(self) -> None:  # no registry, no reader schemas: nothing is parsed
        self.poison: set[str] = set()
        self.unreachable: set[str] = set()

    def decode(self, record: Record) -> Event:
        """The event of ``record``, or the scripted error."""
        event_id = event_id_of(record)
        if event_id in self.unreachable:
            raise RegistryUnavailableError("registry unreachable", service="schema_registry")
        if event_id in self.poison:
            raise AvroDecodeError(f"{event_id} is not Avro")
        user_id = int((record.key or b"0").decode())
        return CertificateEvent(
            meta=EventMeta(id=event_id, type=EventType.CERTIFICATE_CHANGED),
            learner=Learner(user_id=user_id, username=f"learner{user_id}"),
            course_key=parse_course_key("course-v1:Unit+C1+2026"),
            mode="verified",
            status="downloadable",
        )


@dataclass(eq=False)
class Call:
    """One run of the processor: the event, its cancellation, and the test's hold on it."""

    event_id: str
    key: str
    cancelled: threading.Event
    release: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)


class ScriptedProcessor:
    """A processor that records every call, holds the events the test names, returns outcomes.

    ``hold(id)`` keeps every call of that event running until ``release(id)``;
    ``outcomes[id]`` is returned (or raised, for an exception) instead of ``Applied``.
    ``overlaps`` lists the ordering keys that ever had two calls running at once.
    """

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.outcomes: dict[str, Outcome | BaseException] = {}
        self.overlaps: list[str] = []
        self._held: set[str] = set()
        self._running: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, event: Event, cancelled: threading.Event, /) -> Outcome:
        key = f"user:{event.learner.user_id}" if isinstance(event, CertificateEvent) else ""
        call = Call(event.meta.id, key, cancelled)
        with self._lock:
            self.calls.append(call)
            self._running[key] += 1
            if self._running[key] > 1:
                self.overlaps.append(key)
            held = event.meta.id in self._held
        try:
            if held:
                call.release.wait(JOIN)
            outcome = self.outcomes.get(event.meta.id, Applied(commands=1))
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome
        finally:
            with self._lock:
                self._running[key] -= 1
            call.finished.set()

    def hold(self, *event_ids: str) -> None:
        """Keep every call of these events running until released."""
        with self._lock:
            self._held.update(event_ids)

    def release(self, event_id: str, *, keep_holding: bool = False) -> None:
        """Let the calls of ``event_id`` return; later calls hold only if ``keep_holding``."""
        with self._lock:
            if not keep_holding:
                self._held.discard(event_id)
            calls = [call for call in self.calls if call.event_id == event_id]
        for call in calls:
            call.release.set()

    def release_all(self) -> None:
        """Let everything return (teardown)."""
        with self._lock:
            self._held.clear()
            calls = list(self.calls)
        for call in calls:
            call.release.set()

    def started(self) -> list[str]:
        """Event ids in the order their calls started."""
        with self._lock:
            return [call.event_id for call in self.calls]

    def cancelled(self, event_id: str, call: int = 0) -> bool:
        """True once the engine has cancelled that call of ``event_id`` (the first by default)."""
        calls = self.calls_of(event_id)
        return len(calls) > call and calls[call].cancelled.is_set()

    def finished(self, event_id: str, call: int = 0) -> bool:
        """True once that call of ``event_id`` has returned."""
        calls = self.calls_of(event_id)
        return len(calls) > call and calls[call].finished.is_set()

    def calls_of(self, event_id: str) -> list[Call]:
        """The calls of one event, in order."""
        with self._lock:
            return [call for call in self.calls if call.event_id == event_id]


class FakeSink:
    """A dead-letter sink: records what is sent, reports deliveries from ``poll`` as scripted.

    ``results`` holds the outcomes of the next deliveries (an error, or None for written);
    when empty, deliveries succeed. While ``holding``, no delivery is reported. ``polls``
    counts the engine's calls of ``poll``: it polls on every turn and every step of a drain.
    """

    def __init__(self) -> None:
        self.sent: list[tuple[Record, Failed]] = []
        self.polls = 0
        self.results: deque[KafkaError | None] = deque()
        self.holding = False
        self._pending: list[Callable[[KafkaError | None], None]] = []
        self._lock = threading.Lock()

    def topic_for(self, source_topic: str) -> str:
        return f"{source_topic}.dlq"

    def send(
        self, record: Record, failure: Failed, delivered: Callable[[KafkaError | None], None]
    ) -> bool:
        with self._lock:
            self.sent.append((record, failure))
            self._pending.append(delivered)
        return True

    def poll(self, timeout: float = 0.0) -> None:  # noqa: ARG002 - the protocol's
        with self._lock:
            self.polls += 1
            if self.holding:
                return
            pending, self._pending = self._pending, []
            results = [self.results.popleft() if self.results else None for _ in pending]
        for delivered, result in zip(pending, results, strict=True):
            delivered(result)

    def flush(self, timeout: float) -> int:
        self.poll(timeout)
        with self._lock:
            return len(self._pending)

    def offsets_sent(self) -> list[int]:
        """The source offsets of every record sent, resends included."""
        with self._lock:
            return [record.offset for record, _ in self.sent]


class Tokens:
    """A limiter that hands out exactly the tokens the test grants."""

    def __init__(self) -> None:
        self._left = 0
        self._lock = threading.Lock()

    def grant(self, count: int = 1) -> None:
        """Let ``count`` more events start."""
        with self._lock:
            self._left += count

    def try_acquire(self) -> bool:
        """True (and one token fewer) if a token is left."""
        with self._lock:
            if self._left == 0:
                return False
            self._left -= 1
            return True


@dataclass
class Running:
    """An engine running its loop on a thread, over a memory consumer and a fake clock."""

    engine: Engine
    consumer: MemoryConsumer
    processor: ScriptedProcessor
    decoder: ScriptedDecoder
    sink: FakeSink | None
    clock: FakeClock
    metrics: Metrics
    thread: threading.Thread = field(init=False)
    error: BaseException | None = None

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._run, name="engine-loop", daemon=True)

    def _run(self) -> None:
        try:
            self.engine.run()
        except BaseException as error:  # noqa: BLE001 - the test inspects it
            self.error = error

    def stopped(self) -> bool:
        """True once ``run`` has returned (or raised)."""
        return not self.thread.is_alive()

    def stop(self) -> None:
        """Ask for a stop and wait for ``run`` to return."""
        self.engine.request_stop("test over")
        self.thread.join(JOIN)
        assert self.stopped(), "the engine did not stop"


def wait_until(condition: Callable[[], bool], *, tick: Callable[[], None] | None = None) -> None:
    """Poll ``condition`` (calling ``tick`` between polls) until true; fail after ``JOIN``."""
    deadline = time.monotonic() + JOIN
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("condition never became true")
        if tick is not None:
            tick()
        time.sleep(0.002)


def turns(consumer: MemoryConsumer, count: int = 3) -> None:
    """Wait until the engine has consumed ``count`` more times (so turned its loop as often)."""
    target = consumer.consumes + count
    wait_until(lambda: consumer.consumes >= target)


class Engines:
    """Starts engines on threads; ``close`` releases every hold and stops each one."""

    def __init__(self) -> None:
        self._started: list[Running] = []

    def start(
        self,
        consumer: MemoryConsumer,
        processor: ScriptedProcessor | None = None,
        *,
        decoder: ScriptedDecoder | None = None,
        sink: FakeSink | None = None,
        clock: FakeClock | None = None,
        breakers: Breakers | None = None,
        stop_when_idle: float | None = None,
        limiter: Limiter | None = None,
        inline: bool = False,
        **settings: Any,
    ) -> Running:
        """Build an engine on these fakes (commits every turn, 8 workers) and run it.

        ``inline``: the processor runs on the engine's thread (never hold a call there: the
        loop would wait with it).
        """
        clock = clock or FakeClock()
        processor = processor or ScriptedProcessor()
        decoder = decoder or ScriptedDecoder()
        metrics = Metrics()
        engine = Engine(
            consumer_config=CONSUMER_CONFIG,
            topics=[TOPIC],
            decoder=decoder,
            processor=processor,
            sink=sink or HeldFailures(),
            settings=EngineSettings(
                **{"max_in_flight": 8, "commit_interval_seconds": 0.0, **settings}
            ),
            metrics=metrics,
            breakers=breakers,
            stop_when_idle=stop_when_idle,
            limiter=limiter,
            clock=clock,
            consumer_factory=consumer.factory,
            inline=inline,
        )
        running = Running(engine, consumer, processor, decoder, sink, clock, metrics)
        self._started.append(running)
        running.thread.start()
        return running

    def close(self) -> None:
        """Release every held call and delivery, then stop every engine still running."""
        for running in self._started:
            running.processor.release_all()
            if running.sink is not None:
                running.sink.holding = False
            if not running.stopped():
                running.stop()
