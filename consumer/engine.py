"""The poll loop: moves records, outcomes and offsets; knows nothing of Open edX.

One thread (the caller's) owns the Kafka consumer and every piece of state here; a pool of
``max_in_flight`` worker threads runs the processor. Per turn of the loop:

1. worker outcomes come back through a queue: applied or skipped → the offset is done;
   failed → a dead-letter record is produced and the offset is done once it is
   acknowledged; abandoned → the offset stays pending (it will be consumed again);
2. partitions are paused or resumed: all of them while too much is buffered, while a
   service's circuit holds work back, or while shutting down; one of them while the schema
   registry cannot be reached for its next record (it was seeked back to that record);
3. watermarks are committed every ``commit_interval_seconds`` (and synchronously on
   revoke and shutdown);
4. a batch is consumed: each record is decoded here (poison goes to the dead-letter topic
   at once), then queued in the lane of its ordering key; a lane's head runs on a worker.

Guarantees, each with an integration test: same-key events are applied in offset order;
an offset is committed only when it and every offset below it are done; a revoked
partition stops taking work, drains within ``revoke_timeout_seconds`` and commits; a lost
partition is dropped without commit; SIGTERM drains within ``drain_timeout_seconds``.
Nothing of a released partition starts after its release: its queued items leave the pool
unstarted, and its running items are cancelled (they finish the request they are in and
start no other; the HTTP guard refuses the rest).
An exception a worker did not turn into an outcome is a bug: the loop commits what is done
and re-raises, so the process exits non-zero and is restarted, instead of stalling.

Two optional parts, handed in by the CLI: a ``Limiter`` (``CONSUMER_MAX_RATE``) that an
event must get a token from before it starts, and ``Bounds`` (``replay``): the partitions
are then assigned at given offsets (no group rebalancing), nothing at or past a
partition's end is consumed, commits carry the bounds' metadata, and the engine stops by
itself once every partition is done up to its end (``completed``).
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from consumer.circuit import Breakers
from consumer.config import EngineSettings, KafkaSettings
from consumer.errors import DecodeError, RegistryUnavailableError
from consumer.events import CertificateEvent, Event, EventType, ordering_key
from consumer.lag import LagMonitor
from consumer.lanes import Lanes
from consumer.observability import Health, Metrics
from consumer.offsets import PartitionOffsets
from consumer.outcomes import Abandoned, Applied, Failed, Outcome, Skipped
from consumer.wire import Decoder, Record

log = structlog.get_logger("consumer.engine")

TP = tuple[str, int]
BATCH_SIZE = 500
POLL_SECONDS = 0.05
REGISTRY_BACKOFF_MAX = 30.0


class WorkerCrashedError(Exception):
    """A processor raised instead of returning an outcome: a bug, so the process stops."""


class Processor(Protocol):
    """Applies one event; runs on a worker thread; never raises for a classified failure."""

    def __call__(self, event: Event, cancelled: threading.Event, /) -> Outcome:
        """Return what became of ``event``; stop retrying once ``cancelled`` is set."""


class FailureSink(Protocol):
    """Where failed records go (the dead-letter producer, or a stand-in)."""

    def topic_for(self, source_topic: str) -> str:
        """Where failures of ``source_topic`` go (for logs)."""

    def send(
        self, record: Record, failure: Failed, delivered: Callable[[KafkaError | None], None]
    ) -> None:
        """Write the record; ``delivered`` reports the acknowledgement (from ``poll``)."""

    def poll(self, timeout: float = 0.0) -> None:
        """Serve delivery reports."""

    def flush(self, timeout: float) -> int:
        """Wait for outstanding records; return how many remain."""


class Limiter(Protocol):
    """Caps how often events start (a token bucket)."""

    def try_acquire(self) -> bool:
        """True if an event may start now; never blocks."""


class Bounds(Protocol):
    """A fixed range of each partition to consume (a replay), and where its progress goes."""

    def assignment(self) -> list[TopicPartition]:
        """The partitions to consume, each at the offset to start from."""

    def end(self, tp: TP) -> int:
        """The first offset of ``tp`` not to consume (0 for a partition outside the range)."""

    def commit_metadata(self, tp: TP) -> str | None:
        """Metadata committed with ``tp``'s offsets (where a replay keeps its range)."""

    def committed(self, tp: TP, offset: int) -> None:
        """Everything of ``tp`` below ``offset`` is done (and committed, unless dry-run)."""


def consumer_config(kafka: KafkaSettings, *, group_id: str) -> dict[str, Any]:
    """The consumer's librdkafka settings: manual commits, cooperative rebalancing."""
    return {
        **kafka.client_config(),
        "group.id": group_id,
        "client.id": f"{group_id}-consumer",
        "auto.offset.reset": kafka.auto_offset_reset,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "partition.assignment.strategy": "cooperative-sticky",
        "session.timeout.ms": 45_000,
        "max.poll.interval.ms": 300_000,
        # Bound what librdkafka prefetches, so memory stays flat on any backlog.
        "queued.max.messages.kbytes": 16_384,
        "fetch.max.bytes": 8_388_608,
    }


@dataclass(slots=True)
class Tally:
    """Events finished by this engine, by outcome (for ``dlq redrive``'s summary and tests)."""

    applied: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    held: int = 0  # failed with no sink: left uncommitted (redrive)


@dataclass(eq=False, slots=True)
class WorkItem:
    """A decoded event on its way through a lane."""

    record: Record
    event: Event
    key: str
    generation: int
    cancelled: threading.Event = field(default_factory=threading.Event)
    started: float = 0.0  # when a worker thread picked it up
    elapsed: float = 0.0  # how long the processor ran (measured on the worker thread)
    future: Future[None] | None = None  # its run on the pool (cancellable until it starts)

    @property
    def tp(self) -> TP:
        """The source partition."""
        return (self.record.topic, self.record.partition)


@dataclass(slots=True)
class PartitionState:
    """What the loop knows of one assigned partition."""

    generation: int
    offsets: PartitionOffsets = field(default_factory=PartitionOffsets)
    eof: bool = False
    blocked_at: int | None = None  # seeked back here: the registry was unreachable
    blocked_until: float = 0.0
    block_backoff: float = 0.0
    dead_letters: int = 0  # dead-letter records awaiting acknowledgement
    reached_end: bool = False  # bounded: consumed up to its end, nothing more is taken


def _log_fields(record: Record, event: Event | None = None) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
    }
    if event is not None:
        fields["event_id"] = event.meta.id
        fields["event_type"] = str(event.meta.type)
        fields["course_key"] = str(event.course_key)
        if isinstance(event, CertificateEvent):
            fields["lms_user_id"] = event.learner.user_id
    return fields


_EVENT_TYPES = frozenset(str(event_type) for event_type in EventType)


def _event_type_of(record: Record) -> str:
    """The record's ``ce_type`` if it is one this worker consumes, else ``unknown``.

    A metric label: a poison record's arbitrary header must not create a new series.
    """
    values = record.header("ce_type")
    value = values[0].decode("utf-8", errors="replace") if len(values) == 1 else ""
    return value if value in _EVENT_TYPES else "unknown"


class Engine:
    """Consumes topics and drives events through a processor with the delivery guarantees."""

    def __init__(
        self,
        *,
        consumer_config: Mapping[str, Any],
        topics: Sequence[str],
        decoder: Decoder,
        processor: Processor,
        sink: FailureSink | None,
        settings: EngineSettings,
        metrics: Metrics,
        health: Health | None = None,
        breakers: Breakers | None = None,
        commit: bool = True,
        stop_when_idle: float | None = None,
        limiter: Limiter | None = None,
        bounds: Bounds | None = None,
        clock: Callable[[], float] = time.monotonic,
        consumer_factory: Callable[[dict[str, Any]], Consumer] = Consumer,
        lag_monitor: LagMonitor | None = None,
    ) -> None:
        self._consumer = consumer_factory({**consumer_config, "on_commit": self._on_commit})
        self._topics = list(topics)
        self._decoder = decoder
        self._processor = processor
        self._sink = sink
        self._settings = settings
        self._metrics = metrics
        self._health = health or Health()
        self._breakers = breakers or Breakers()
        self._commit_enabled = commit
        self._stop_when_idle = stop_when_idle
        self._limiter = limiter
        self._bounds = bounds
        self._clock = clock
        self._lag_monitor = lag_monitor

        self._owned: dict[TP, PartitionState] = {}
        self._generation = 0
        self._lanes: Lanes[WorkItem] = Lanes()
        self._completions: queue.SimpleQueue[tuple[WorkItem, Outcome | BaseException]] = (
            queue.SimpleQueue()
        )
        self._pool = ThreadPoolExecutor(settings.max_in_flight, thread_name_prefix="worker")
        self._picked_up = 0  # items a worker thread has started (written by workers)
        self._picked_up_lock = threading.Lock()
        self._submitted = 0  # items handed to the pool (poll thread)
        self._paused: set[TP] = set()
        self._pressure = False
        self._dead_letters_pending = 0
        self._resend: list[tuple[float, Record, Failed, int]] = []
        self._stop_reason: str | None = None  # set from signal handlers: a plain attribute
        self._stopping = False
        self._last_commit = clock()
        self._idle_since: float | None = None
        self._warned_topics: set[str] = set()
        self._throttled: deque[WorkItem] = deque()  # lane heads waiting for a token
        self.tally = Tally()
        self.completed = False  # bounded: every partition done up to its end

    # ------------------------------------------------------------------ public

    def request_stop(self, reason: str = "requested") -> None:
        """Ask the loop to drain and stop; ``reason`` is logged by the loop.

        Safe from a signal handler: it only assigns an attribute. It takes no lock and
        logs nothing, because the handler may interrupt the main thread while it holds
        one (structlog's write lock, for instance) and would deadlock on it.
        """
        self._stop_reason = self._stop_reason or reason

    def run(self) -> None:
        """Consume until stopped; then drain, commit and close. Raises on fatal errors."""
        if self._bounds is not None:
            assignment = self._bounds.assignment()
            self._consumer.assign(assignment)
            self._on_assign(self._consumer, assignment)
            for tp in assignment:
                if tp.offset >= self._bounds.end((tp.topic, tp.partition)):
                    self._owned[(tp.topic, tp.partition)].reached_end = True
        else:
            self._consumer.subscribe(
                self._topics,
                on_assign=self._on_assign,
                on_revoke=self._on_revoke,
                on_lost=self._on_lost,
            )
        log.info("engine_started", topics=self._topics, max_in_flight=self._settings.max_in_flight)
        try:
            while self._stop_reason is None:
                self._turn()
            log.info("engine_stopping", reason=self._stop_reason)
        finally:
            self._shutdown()

    # ------------------------------------------------------------------ the loop

    def _turn(self) -> None:
        self._health.beat()
        self._collect_outcomes()
        self._start_throttled()
        self._poll_sink()
        self._resend_dead_letters()
        self._reconcile_pauses()
        if self._clock() - self._last_commit >= self._settings.commit_interval_seconds:
            self._commit(asynchronous=True)
        if self._idle_for_long_enough():
            self.request_stop(f"idle for {self._stop_when_idle}s")
            return
        if self._bounds is not None and self._range_done():
            self.completed = True
            self.request_stop("range done")
            return
        # Never take more than the buffer has room for: the bound is strict, not "per batch".
        room = self._settings.max_buffered - self._buffered()
        messages = self._consumer.consume(max(1, min(BATCH_SIZE, room)), POLL_SECONDS)
        for message in messages:
            self._accept(message)
        self._update_gauges()

    def _accept(self, message: Message) -> None:  # noqa: PLR0911 - one early exit per reason
        error = message.error()
        if error is not None:
            self._on_consumer_error(message, error)
            return
        topic, partition = message.topic(), message.partition()
        assert topic is not None
        assert partition is not None
        state = self._owned.get((topic, partition))
        offset = message.offset()
        if state is None or offset is None:
            return  # revoked between fetch and delivery; the new owner consumes it
        if state.blocked_at is not None and offset >= state.blocked_at:
            return  # fetched before the seek back; it will be consumed again
        if self._bounds is not None and offset >= self._bounds.end((topic, partition)):
            state.reached_end = True  # past the range: never taken (and the partition pauses)
            return
        if (topic, partition) in self._paused and self._buffered() >= self._settings.max_buffered:
            # Fetched before the pause took effect and no room: give it back to the broker.
            self._block_partition_at(topic, partition, offset, state, seconds=0.0)
            return
        state.eof = False
        record = Record.from_message(message)
        state.offsets.accept(record.offset, at=self._clock())
        self._metrics.events_received.labels(record.topic).inc()
        try:
            event = self._decoder.decode(record)
        except RegistryUnavailableError as unavailable:
            self._block_partition(record, state, unavailable)
            return
        except DecodeError as poison:
            now = time.time()
            failure = Failed(
                stage="decode",
                error_class=type(poison).__name__,
                reason=poison.reason,
                message=str(poison),
                attempts=1,
                first_failure=now,
                last_failure=now,
            )
            log.warning(
                "record_undecodable", reason=poison.reason, error=str(poison), **_log_fields(record)
            )
            self._dead_letter(record, failure, state, _event_type_of(record))
            return
        state.block_backoff = 0.0  # the registry answers again: the next blip starts afresh
        item = WorkItem(
            record=record, event=event, key=ordering_key(event), generation=state.generation
        )
        if self._lanes.push(item.key, item):
            self._start(item)

    def _on_consumer_error(self, message: Message, error: KafkaError) -> None:
        if error.code() == KafkaError._PARTITION_EOF:
            topic, partition = message.topic(), message.partition()
            state = self._owned.get((topic or "", partition if partition is not None else -1))
            if state is not None:
                state.eof = True
                self._eof_at(state, (topic or "", partition or 0), message.offset() or 0)
            return
        if error.fatal():
            raise KafkaException(error)
        if error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            topic = message.topic() or ""
            if topic not in self._warned_topics:
                self._warned_topics.add(topic)
                log.error("topic_missing", topic=topic, error=error.str())
            return
        log.warning(
            "consumer_error", code=error.name(), error=error.str(), retriable=error.retriable()
        )

    # ------------------------------------------------------------------ work

    def _start(self, item: WorkItem) -> None:
        if self._limiter is not None and (self._throttled or not self._limiter.try_acquire()):
            self._throttled.append(item)  # its turn comes with a token, in arrival order
            return
        self._submit(item)

    def _submit(self, item: WorkItem) -> None:
        self._submitted += 1
        item.future = self._pool.submit(self._work, item)

    def _start_throttled(self) -> None:
        while self._throttled and self._limiter is not None and self._limiter.try_acquire():
            self._submit(self._throttled.popleft())

    def _abandon_throttled(self, predicate: Callable[[WorkItem], bool]) -> None:
        """Finish throttled heads that will not start now (released, or shutting down)."""
        for item in [item for item in self._throttled if predicate(item)]:
            self._throttled.remove(item)
            self._finish(item, Abandoned(why="not started (rate limit)"))

    def _work(self, item: WorkItem) -> None:
        """Worker thread: run the processor, hand the outcome back. Never touches state.

        The event counts as in flight, and its processing time runs, from here: not from
        the moment it was handed to the pool, where it may wait for a free thread. An item
        cancelled while it waited for a thread (its partition was released, or the worker is
        stopping) is abandoned without running: nothing of it may start now.
        """
        item.started = self._clock()
        with self._picked_up_lock:
            self._picked_up += 1
        outcome: Outcome | BaseException
        if item.cancelled.is_set():
            outcome = Abandoned(why="cancelled before it started")
        else:
            self._metrics.in_flight.inc()
            try:
                outcome = self._processor(item.event, item.cancelled)
            except BaseException as error:  # noqa: BLE001 - handed to the loop, which re-raises
                outcome = error
            finally:
                item.elapsed = self._clock() - item.started
                self._metrics.in_flight.dec()
        self._completions.put((item, outcome))

    def _cancel_heads(self, which: Callable[[WorkItem], bool]) -> None:
        """Cancel the running items ``which`` selects; those still queued never start.

        A running item finishes its current request and stops before the next one; an item
        still waiting in the pool's queue is taken out of it and abandoned here.
        """
        for head in [head for head in self._lanes.heads() if which(head)]:
            head.cancelled.set()
            if head.future is not None and head.future.cancel():
                with self._picked_up_lock:
                    self._picked_up += 1  # it left the pool's queue without a thread
                self._finish(head, Abandoned(why="cancelled before it started"))

    def _collect_outcomes(self, timeout: float = 0.0) -> None:
        """Apply every outcome waiting in the queue (block up to ``timeout`` for the first)."""
        block = timeout > 0
        while True:
            try:
                item, outcome = self._completions.get(
                    block=block, timeout=timeout if block else None
                )
            except queue.Empty:
                return
            block = False
            if isinstance(outcome, BaseException):
                log.error(
                    "worker_crashed", error=repr(outcome), **_log_fields(item.record, item.event)
                )
                self._stopping = True  # nothing new starts; the shutdown drains the rest
                self._advance_lane(item.key)
                raise WorkerCrashedError("a worker raised an unclassified exception") from outcome
            self._finish(item, outcome)

    def _advance_lane(self, key: str) -> None:
        """The head of ``key`` finished: start the next item, unless the engine is stopping."""
        following = self._lanes.finish(key)
        while following is not None and self._stopping:
            following = self._lanes.finish(following.key)  # not started: consumed again later
        if following is not None:
            self._start(following)

    def _finish(self, item: WorkItem, outcome: Outcome) -> None:
        self._advance_lane(item.key)
        state = self._owned.get(item.tp)
        current = state is not None and state.generation == item.generation
        fields = _log_fields(item.record, item.event)
        event_type = str(item.event.meta.type)
        if current and state is not None:
            if not isinstance(outcome, Abandoned):  # an abandoned item may never have run
                self._metrics.processing_latency.labels(event_type).observe(item.elapsed)
            if isinstance(outcome, Applied):
                state.offsets.done(item.record.offset)
                self.tally.applied += 1
                self._done_metrics(item, "applied", ",".join(outcome.skipped) or "")
                log.info(
                    "event_applied",
                    commands=outcome.commands,
                    skipped=list(outcome.skipped),
                    **fields,
                )
            elif isinstance(outcome, Skipped):
                state.offsets.done(item.record.offset)
                self.tally.skipped += 1
                self._done_metrics(item, "skipped", outcome.reason)
                self._metrics.skips.labels(outcome.reason).inc()
                log.info("event_skipped", reason=outcome.reason, detail=outcome.detail, **fields)
            elif isinstance(outcome, Failed):
                log.warning(
                    "event_failed",
                    stage=outcome.stage,
                    error_class=outcome.error_class,
                    reason=outcome.reason,
                    error=outcome.message,
                    attempts=outcome.attempts,
                    **fields,
                )
                self._dead_letter(item.record, outcome, state, event_type)
            else:
                log.info("event_abandoned", why=outcome.why, **fields)
        elif not isinstance(outcome, Abandoned):
            log.info("event_outcome_ignored", why="partition no longer assigned", **fields)

    def _done_metrics(self, item: WorkItem, outcome: str, reason: str) -> None:
        event_type = str(item.event.meta.type)
        self._metrics.events_done.labels(item.record.topic, event_type, outcome, reason).inc()
        if item.event.meta.time is not None:
            age = time.time() - item.event.meta.time.timestamp()
            self._metrics.event_age.labels(event_type).observe(max(0.0, age))

    # ------------------------------------------------------------------ dead letters

    def _poll_sink(self) -> None:
        if self._sink is not None:
            self._sink.poll(0)

    def _dead_letter(
        self, record: Record, failure: Failed, state: PartitionState, event_type: str
    ) -> None:
        if self._sink is None:  # hold: the offset stays uncommitted, the record is kept
            self.tally.held += 1
            log.warning(
                "event_held",
                stage=failure.stage,
                error_class=failure.error_class,
                reason=failure.reason,
                error=failure.message,
                **_log_fields(record),
            )
            return
        generation = state.generation
        topic = self._sink.topic_for(record.topic)
        state.dead_letters += 1
        self._dead_letters_pending += 1

        def delivered(error: KafkaError | None) -> None:
            self._dead_letters_pending -= 1
            current = self._owned.get((record.topic, record.partition))
            if current is not None and current.generation == generation:
                current.dead_letters -= 1
            if error is not None:
                self._metrics.dead_letter_errors.labels(topic).inc()
                log.error(
                    "dead_letter_not_written",
                    error=str(error),
                    dead_letter_topic=topic,
                    **_log_fields(record),
                )
                self._resend.append((self._clock() + 2.0, record, failure, generation))
                return
            if current is None or current.generation != generation:
                return
            current.offsets.done(record.offset)
            self.tally.dead_lettered += 1
            self._metrics.dead_letters.labels(
                record.topic, failure.stage, failure.error_class
            ).inc()
            self._metrics.events_done.labels(
                record.topic, event_type, "dead_lettered", failure.reason
            ).inc()
            log.warning(
                "event_dead_lettered",
                dead_letter_topic=topic,
                stage=failure.stage,
                error_class=failure.error_class,
                reason=failure.reason,
                **_log_fields(record),
            )

        self._sink.send(record, failure, delivered)

    def _resend_dead_letters(self) -> None:
        if not self._resend:
            return
        now = self._clock()
        due = [entry for entry in self._resend if entry[0] <= now]
        self._resend = [entry for entry in self._resend if entry[0] > now]
        for _, record, failure, generation in due:
            state = self._owned.get((record.topic, record.partition))
            if state is not None and state.generation == generation:
                self._dead_letter(record, failure, state, _event_type_of(record))

    # ------------------------------------------------------------------ flow control

    def _block_partition(
        self, record: Record, state: PartitionState, error: RegistryUnavailableError
    ) -> None:
        """Seek back to ``record`` and pause its partition until the registry may be back."""
        state.offsets.rewind(record.offset)
        state.block_backoff = min(max(1.0, state.block_backoff * 2), REGISTRY_BACKOFF_MAX)
        self._block_partition_at(
            record.topic, record.partition, record.offset, state, seconds=state.block_backoff
        )
        self._metrics.registry_unavailable.inc()
        log.warning(
            "schema_registry_unavailable",
            error=str(error),
            retry_in=state.block_backoff,
            **_log_fields(record),
        )

    def _block_partition_at(
        self, topic: str, partition: int, offset: int, state: PartitionState, *, seconds: float
    ) -> None:
        """Seek ``partition`` back to ``offset`` and hold it at least ``seconds``."""
        state.blocked_at = offset
        state.blocked_until = self._clock() + seconds
        self._consumer.seek(TopicPartition(topic, partition, offset))

    def _buffered(self) -> int:
        """Events in memory: running, waiting in a lane, awaiting a dead-letter ack or resend.

        Dead letters waiting to be sent again count too: while the dead-letter topic cannot
        be written they pile up, and consumption must pause rather than grow without bound.
        """
        return len(self._lanes) + self._dead_letters_pending + len(self._resend)

    def _reconcile_pauses(self) -> None:
        buffered = self._buffered()
        if buffered >= self._settings.max_buffered:
            self._pressure = True
        elif buffered <= self._settings.max_buffered // 2:
            self._pressure = False
        now = self._clock()
        for state in self._owned.values():
            if state.blocked_at is not None and now >= state.blocked_until:
                state.blocked_at = None
        hold_all = self._stopping or self._pressure or self._breakers.holding_back()
        wanted = {
            tp
            for tp, state in self._owned.items()
            if hold_all or state.blocked_at is not None or state.reached_end
        }
        pause = wanted - self._paused
        resume = (self._paused - wanted) & self._owned.keys()
        if pause:
            self._consumer.pause([TopicPartition(t, p) for t, p in pause])
        if resume:
            self._consumer.resume([TopicPartition(t, p) for t, p in resume])
        if pause or resume:
            log.debug(
                "partitions_paused", paused=len(wanted), pressure=self._pressure, buffered=buffered
            )
        self._paused = wanted

    def _idle_for_long_enough(self) -> bool:
        if self._stop_when_idle is None:
            return False
        idle = (
            bool(self._owned)
            and all(state.eof and state.blocked_at is None for state in self._owned.values())
            and len(self._lanes) == 0
            and self._dead_letters_pending == 0
            and not self._resend
        )
        now = self._clock()
        if not idle:
            self._idle_since = None
            return False
        if self._idle_since is None:
            self._idle_since = now
        return now - self._idle_since >= self._stop_when_idle

    def _eof_at(self, state: PartitionState, tp: TP, offset: int) -> None:
        """Bounded: a partition whose end of log is at or past its range's end reached it."""
        if self._bounds is not None and offset >= self._bounds.end(tp):
            state.reached_end = True

    def _range_done(self) -> bool:
        """Bounded: every partition consumed to its end and done up to it."""
        return (
            bool(self._owned)
            and all(
                state.reached_end and state.offsets.in_progress == 0 and state.dead_letters == 0
                for state in self._owned.values()
            )
            and not self._resend
        )

    def _update_gauges(self) -> None:
        """Per-turn gauges (``in_flight`` is kept by the workers themselves)."""
        with self._picked_up_lock:
            waiting_for_thread = self._submitted - self._picked_up
        waiting_behind_key = len(self._lanes) - self._lanes.running + len(self._throttled)
        self._metrics.queued.set(max(0, waiting_for_thread) + waiting_behind_key)
        self._metrics.buffered.set(self._buffered())
        self._metrics.paused_partitions.set(len(self._paused))
        self._metrics.assigned_partitions.set(len(self._owned))
        now = self._clock()
        for (topic, partition), state in self._owned.items():
            since = state.offsets.oldest_pending_since()
            age = 0.0 if since is None else max(0.0, now - since)
            self._metrics.oldest_pending_age.labels(topic, str(partition)).set(age)
        if self._lag_monitor is not None:
            self._lag_monitor.tick(self._watermarks)

    def _watermarks(self) -> dict[TP, int | None]:
        """Each owned partition's watermark (the lag monitor's stand-in for a commit)."""
        return {tp: state.offsets.committable() for tp, state in self._owned.items()}

    # ------------------------------------------------------------------ commits

    def _commit(self, *, asynchronous: bool, only: Iterable[TP] | None = None) -> None:
        """Commit watermarks: periodic ones only where they moved, final ones always.

        An asynchronous commit is assumed to land; ``_on_commit`` undoes that assumption
        when the broker refuses it (say, during a rebalance), so the next turn tries again.
        A synchronous commit (revoke, shutdown) sends every watermark regardless.
        """
        self._last_commit = self._clock()
        if not self._commit_enabled and self._bounds is None:
            return
        chosen = set(only) if only is not None else set(self._owned)
        offsets: list[TopicPartition] = []
        for tp in chosen:
            state = self._owned.get(tp)
            if state is None:
                continue
            offset = state.offsets.to_commit() if asynchronous else state.offsets.committable()
            if offset is not None:
                metadata = self._bounds.commit_metadata(tp) if self._bounds else None
                offsets.append(TopicPartition(tp[0], tp[1], offset, metadata or ""))
                state.offsets.committed = offset
        if not offsets:
            return
        if not self._commit_enabled:  # a dry-run replay: progress, but nothing written
            self._landed(offsets)
            return
        try:
            if asynchronous:
                self._consumer.commit(offsets=offsets, asynchronous=True)
                return
            results = self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as error:
            self._commit_failed(offsets, str(error))
            return
        self._on_commit(None, results)

    def _on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """Commit results (async ones arrive here from ``consume``): forget refused offsets."""
        refused = [tp for tp in partitions if error is not None or tp.error is not None]
        if refused:
            reason = str(error) if error is not None else str(refused[0].error)
            self._commit_failed(refused, reason)
        landed = [tp for tp in partitions if tp not in refused]
        if landed:
            self._metrics.commits.labels("landed").inc()
            self._metrics.last_commit.set(time.time())
            self._landed(landed)

    def _landed(self, offsets: list[TopicPartition]) -> None:
        if self._bounds is not None:
            for tp in offsets:
                self._bounds.committed((tp.topic, tp.partition), tp.offset)

    def _commit_failed(self, offsets: list[TopicPartition], reason: str) -> None:
        self._metrics.commits.labels("failed").inc()
        for failed in offsets:
            state = self._owned.get((failed.topic, failed.partition))
            if state is not None and state.offsets.committed == failed.offset:
                state.offsets.committed = None  # try again next time
        log.warning("commit_failed", error=reason, partitions=len(offsets))

    # ------------------------------------------------------------------ rebalancing

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._metrics.rebalances.labels("assign").inc()
        for tp in partitions:
            self._generation += 1
            self._owned[(tp.topic, tp.partition)] = PartitionState(generation=self._generation)
        self._health.ready = True
        log.info(
            "partitions_assigned", partitions=[f"{tp.topic}:{tp.partition}" for tp in partitions]
        )

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._metrics.rebalances.labels("revoke").inc()
        self._release(partitions, commit=True)

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._metrics.rebalances.labels("lost").inc()
        self._release(partitions, commit=False)

    def _release(self, partitions: list[TopicPartition], *, commit: bool) -> None:
        """Stop work on ``partitions``; drain and commit them (revoke) or just drop them (lost)."""
        tps = {(tp.topic, tp.partition) for tp in partitions} & self._owned.keys()
        if not tps:
            return
        self._lanes.drop_waiting(lambda item: item.tp in tps)
        self._abandon_throttled(lambda item: item.tp in tps)
        self._cancel_heads(lambda item: item.tp in tps)
        if commit and not self._stopping:  # a shutdown has drained already
            self._drain(
                lambda: (
                    any(head.tp in tps for head in self._lanes.heads())
                    or any(self._owned[tp].dead_letters for tp in tps)
                ),
                self._settings.revoke_timeout_seconds,
            )
        if commit:
            self._commit(asynchronous=False, only=tps)
        paused = sorted(tps & self._paused)
        if paused:
            # librdkafka keeps a partition's pause through a revoke and a re-assign: lift it
            # now, or a partition that comes back to this worker would stay paused for good.
            self._consumer.resume([TopicPartition(t, p) for t, p in paused])
        for tp in tps:
            self._owned.pop(tp, None)
            self._paused.discard(tp)
            for gauge in (self._metrics.lag, self._metrics.oldest_pending_age):
                with contextlib.suppress(KeyError):  # no sample yet
                    gauge.remove(tp[0], str(tp[1]))
        log.info(
            "partitions_released",
            partitions=sorted(f"{t}:{p}" for t, p in tps),
            committed=commit and self._commit_enabled,
        )

    def _drain(self, busy: Callable[[], bool], timeout: float) -> bool:
        """Serve outcomes and delivery reports until ``busy()`` is false or ``timeout`` passes."""
        deadline = self._clock() + timeout
        while busy():
            if self._clock() >= deadline:
                return False
            self._collect_outcomes(timeout=0.05)
            self._poll_sink()
            self._health.beat()
        return True

    # ------------------------------------------------------------------ shutdown

    def _shutdown(self) -> None:
        self._stopping = True
        try:
            self._lanes.drop_waiting(lambda _item: True)
            self._abandon_throttled(lambda _item: True)
            self._reconcile_pauses()
            self._cancel_heads(lambda _item: True)
            drained = self._drain(
                lambda: self._lanes.running > 0 or self._dead_letters_pending > 0,
                self._settings.drain_timeout_seconds,
            )
            if self._sink is not None:
                self._sink.flush(max(1.0, self._settings.drain_timeout_seconds / 5))
            self._poll_sink()
            self._commit(asynchronous=False)
            log.info("engine_drained", complete=drained, abandoned=self._lanes.running)
        finally:
            self._health.ready = False
            self._consumer.close()
            self._pool.shutdown(wait=False, cancel_futures=True)
            log.info("engine_stopped")
