"""The poll loop: moves records, outcomes and offsets; knows nothing of Open edX.

One thread (the caller's) owns the Kafka consumer and every part of the engine's state; a
pool of ``max_in_flight`` worker threads runs the processor — or, ``inline`` (the dry run,
whose processor waits on nothing), the poll thread runs it itself as each event may start,
with the same lanes, outcomes and rules (``workers``). Per turn of the loop:

1. worker outcomes come back: applied or skipped → the offset is done; failed → a
   dead-letter record is produced and the offset is done once it is acknowledged;
   abandoned → the offset stays pending (it will be consumed again);
2. partitions are paused or resumed: all of them while too much is buffered, while a
   service's circuit holds work back, or while shutting down; one of them while the schema
   registry cannot be reached for its next record (it was seeked back to that record);
3. watermarks are committed every ``commit_interval_seconds`` (and synchronously on
   revoke and shutdown);
4. a batch is consumed: each record is decoded here (poison goes to the dead-letter topic
   at once), then queued in the lane of its ordering key; a lane's head runs on a worker.

Guarantees, each with a test (``tests/unit/test_engine.py`` on an in-memory consumer, and
``tests/integration`` on the real broker): same-key events are applied in offset order;
an offset is committed only when it and every offset below it are done; a revoked
partition stops taking work, drains within ``revoke_timeout_seconds`` and commits; a lost
partition is dropped without commit; SIGTERM drains within ``drain_timeout_seconds``.
Nothing of a released partition starts after its release: its queued items leave the pool
unstarted, and its running items are cancelled (they finish the request they are in and
start no other; the HTTP guard refuses the rest).
An exception a worker did not turn into an outcome is a bug: the loop commits what is done
and re-raises, so the process exits non-zero and is restarted, instead of stalling.

The loop keeps intake, rebalancing, drain and shutdown; the state it drives lives in the
parts that own it (see the package's docstring and ADR 0012).

Two optional parts, handed in by the CLI: a ``Limiter`` (``CONSUMER_MAX_RATE``) that an
event must get a token from before it starts, and ``Bounds`` (``replay``): the partitions
are then assigned at given offsets (no group rebalancing), nothing at or past a
partition's end is consumed, commits carry the bounds' metadata, and the engine stops by
itself once every partition is done up to its end (``completed``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from consumer.circuit import Breakers
from consumer.config import EngineSettings
from consumer.engine.accounting import Accounting, Tally, event_context, event_type_label
from consumer.engine.commits import Commits
from consumer.engine.failures import Failures, FailureSink
from consumer.engine.partitions import Bounds, Intake, Partitions
from consumer.engine.workers import Limiter, Processor, Workers, WorkItem
from consumer.errors import DecodeError, RegistryUnavailableError, WorkerCrashedError
from consumer.events import ordering_key
from consumer.lag import LagMonitor
from consumer.observability import Health, Metrics
from consumer.outcomes import Abandoned, Applied, Failed, Outcome, Skipped
from consumer.wire import Decoder, Record

log = structlog.get_logger("consumer.engine")

BATCH_SIZE = 500
POLL_SECONDS = 0.05


class Engine:
    """Consumes topics and drives events through a processor with the delivery guarantees."""

    def __init__(
        self,
        *,
        consumer_config: Mapping[str, Any],
        topics: Sequence[str],
        decoder: Decoder,
        processor: Processor,
        sink: FailureSink,
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
        inline: bool = False,
    ) -> None:
        self._partitions = Partitions(max_buffered=settings.max_buffered, bounds=bounds)
        self._accounting = Accounting(metrics, clock=clock)
        self._commits = Commits(
            self._partitions,
            self._accounting,
            enabled=commit,
            bounded=bounds is not None,
            interval=settings.commit_interval_seconds,
            clock=clock,
        )
        self._consumer = consumer_factory({**consumer_config, "on_commit": self._commits.on_commit})
        self._topics = list(topics)
        self._decoder = decoder
        self._settings = settings
        self._health = health or Health()
        self._breakers = breakers or Breakers()
        self._commit_enabled = commit  # for the logs; commits are ``Commits``'s
        self._stop_when_idle = stop_when_idle
        self._bounds = bounds
        self._clock = clock
        self._lag_monitor = lag_monitor

        self._workers = Workers(
            processor,
            max_in_flight=settings.max_in_flight,
            metrics=metrics,
            limiter=limiter,
            clock=clock,
            inline=inline,
        )
        self._failures = Failures(sink, self._partitions, self._accounting, clock=clock)
        self._stop_reason: str | None = None  # set from signal handlers: a plain attribute
        self._stopping = False
        self._idle_since: float | None = None
        self._warned_topics: set[str] = set()
        self.completed = False  # bounded: every partition done up to its end

    # ------------------------------------------------------------------ public

    @property
    def tally(self) -> Tally:
        """Events finished so far, by outcome."""
        return self._accounting.tally

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
        self._workers.start_throttled()
        self._failures.poll()
        self._failures.resend_due()
        self._reconcile_pauses()
        if self._commits.due():
            self._commits.commit(self._consumer, asynchronous=True)
        if self._idle_for_long_enough():
            self.request_stop(f"idle for {self._stop_when_idle}s")
            return
        if self._bounds is not None and self._partitions.range_done() and self._failures.idle():
            self.completed = True
            self.request_stop("range done")
            return
        # Never take more than the buffer has room for: the bound is strict, not "per batch".
        room = self._settings.max_buffered - self._buffered()
        messages = self._consumer.consume(max(1, min(BATCH_SIZE, room)), POLL_SECONDS)
        for message in messages:
            self._accept(message)
        self._update_gauges()

    def _accept(self, message: Message) -> None:
        error = message.error()
        if error is not None:
            self._on_consumer_error(message, error)
            return
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        assert topic is not None
        assert partition is not None
        if offset is None:
            return
        tp = (topic, partition)
        intake = self._partitions.fetched(tp, offset, self._clock(), buffered=self._buffered())
        if intake is Intake.GIVE_BACK:
            self._consumer.seek(TopicPartition(topic, partition, offset))
        if intake is not Intake.TAKE:
            return
        record = Record.from_message(message)
        self._accounting.received(record)
        try:
            event = self._decoder.decode(record)
        except RegistryUnavailableError as unavailable:
            retry_in = self._partitions.registry_unavailable(tp, offset, self._clock())
            self._consumer.seek(TopicPartition(topic, partition, offset))
            self._accounting.registry_unavailable(record, unavailable, retry_in)
            return
        except DecodeError as poison:
            failure = self._accounting.undecodable(record, poison)
            self._failures.fail(record, failure, event_type=event_type_label(record))
            return
        self._partitions.decoded(tp)
        generation = self._partitions.generation(tp)
        assert generation is not None
        self._workers.add(WorkItem(record, event, ordering_key(event), generation))

    def _on_consumer_error(self, message: Message, error: KafkaError) -> None:
        if error.code() == KafkaError._PARTITION_EOF:
            tp = (message.topic() or "", message.partition() or 0)
            self._partitions.at_eof(tp, message.offset() or 0)
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

    # ------------------------------------------------------------------ outcomes

    def _collect_outcomes(self, timeout: float = 0.0) -> None:
        """Apply every outcome waiting (block up to ``timeout`` for the first)."""
        for item, outcome in self._workers.completions(timeout):
            if isinstance(outcome, BaseException):
                with event_context(item.event.meta.id):
                    self._accounting.crashed(item.record, item.event, outcome)
                self._stopping = True  # nothing new starts; the shutdown drains the rest
                self._workers.advance(item.key, start_next=False)
                raise WorkerCrashedError("a worker raised an unclassified exception") from outcome
            self._finish(item, outcome)

    def _finish(self, item: WorkItem, outcome: Outcome) -> None:
        """``item`` is over: move its lane on; count its outcome if its partition is current."""
        self._workers.advance(item.key, start_next=not self._stopping)
        record, event = item.record, item.event
        with event_context(event.meta.id):
            if not self._partitions.is_current(item.tp, item.generation):
                self._accounting.ignored(record, event, outcome)
                return
            if isinstance(outcome, Applied | Skipped):
                self._partitions.done(item.tp, item.generation, record.offset)
            self._accounting.finished(record, event, outcome, elapsed=item.elapsed)
            if isinstance(outcome, Failed):  # logged as failed first, then dead-lettered
                event_type = str(event.meta.type)
                self._failures.fail(record, outcome, event_type=event_type, event_id=event.meta.id)

    def _stop_work(self, which: Callable[[WorkItem], bool]) -> None:
        """Nothing ``which`` selects starts from now on; its running items are cancelled."""
        self._workers.drop_waiting(which)
        for item in self._workers.unthrottle(which):
            self._finish(item, Abandoned(why="not started (rate limit)"))
        for item in self._workers.cancel(which):
            self._finish(item, Abandoned(why="cancelled before it started"))

    # ------------------------------------------------------------------ flow control

    def _buffered(self) -> int:
        """Events in memory: running, waiting in a lane, awaiting a dead-letter ack or resend.

        Dead letters waiting to be sent again count too: while the dead-letter topic cannot
        be written they pile up, and consumption must pause rather than grow without bound.
        """
        return self._workers.held + self._failures.buffered

    def _reconcile_pauses(self) -> None:
        buffered = self._buffered()
        hold = self._stopping or self._breakers.holding_back()
        pause, resume = self._partitions.reconcile(self._clock(), buffered=buffered, hold=hold)
        if pause:
            self._consumer.pause(pause)
        if resume:
            self._consumer.resume(resume)
        if pause or resume:
            log.debug(
                "partitions_paused",
                paused=self._partitions.paused,
                pressure=self._partitions.pressure,
                buffered=buffered,
            )

    def _idle_for_long_enough(self) -> bool:
        if self._stop_when_idle is None:
            return False
        idle = self._partitions.caught_up() and self._workers.held == 0 and self._failures.idle()
        now = self._clock()
        if not idle:
            self._idle_since = None
            return False
        if self._idle_since is None:
            self._idle_since = now
        return now - self._idle_since >= self._stop_when_idle

    def _update_gauges(self) -> None:
        now = self._clock()
        self._accounting.flush()
        self._accounting.gauges(
            queued=self._workers.queued,
            buffered=self._buffered(),
            paused=self._partitions.paused,
            pending_ages=self._partitions.pending_ages(now),
        )
        if self._accounting.summary_due(now):
            self._accounting.summarise(now, self._partitions.oldest_pending(now))
        if self._lag_monitor is not None:
            self._lag_monitor.tick(self._partitions.lag_bases)

    # ------------------------------------------------------------------ rebalancing

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._accounting.rebalanced("assign")
        self._partitions.assign(partitions)
        self._health.ready = True
        log.info(
            "partitions_assigned", partitions=[f"{tp.topic}:{tp.partition}" for tp in partitions]
        )

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._accounting.rebalanced("revoke")
        self._release(partitions, commit=True)

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._accounting.rebalanced("lost")
        self._release(partitions, commit=False)

    def _release(self, partitions: list[TopicPartition], *, commit: bool) -> None:
        """Stop work on ``partitions``; drain and commit them (revoke) or just drop them (lost)."""
        tps = self._partitions.owned(partitions)
        if not tps:
            return

        def released(item: WorkItem) -> bool:
            return item.tp in tps

        self._stop_work(released)
        if commit and not self._stopping:  # a shutdown has drained already
            self._drain(
                lambda: self._workers.busy(released) or self._failures.waiting_for(tps),
                self._settings.revoke_timeout_seconds,
            )
        if commit:
            self._commits.commit(self._consumer, asynchronous=False, only=tps)
        paused = self._partitions.release(tps)
        if paused:  # or a partition that comes back to this worker would stay paused
            self._consumer.resume(paused)
        self._accounting.released(tps)
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
            self._failures.poll()
            self._health.beat()
        return True

    # ------------------------------------------------------------------ shutdown

    def _shutdown(self) -> None:
        self._stopping = True
        try:
            self._reconcile_pauses()
            self._stop_work(lambda _item: True)
            drained = self._drain(
                lambda: self._workers.running > 0 or self._failures.unacknowledged > 0,
                self._settings.drain_timeout_seconds,
            )
            self._failures.flush(max(1.0, self._settings.drain_timeout_seconds / 5))
            self._failures.poll()
            self._commits.commit(self._consumer, asynchronous=False)
            self._accounting.flush()
            now = self._clock()
            self._accounting.summarise(now, self._partitions.oldest_pending(now))
            log.info("engine_drained", complete=drained, abandoned=self._workers.running)
        finally:
            self._health.ready = False
            self._consumer.close()
            self._workers.shutdown()
            log.info("engine_stopped")
