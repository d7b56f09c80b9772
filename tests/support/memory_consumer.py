"""An in-memory stand-in for confluent-kafka's ``Consumer``: the broker of the engine's unit tests.

Modelled on arroyo's ``LocalBroker``: partitions are lists of real ``confluent_kafka.Message``
values and the group's committed offsets a dict. It offers exactly what the engine calls
(``subscribe`` with rebalance callbacks, ``consume``, ``pause``, ``resume``, ``seek``,
``commit``, ``committed``, ``get_watermark_offsets``, ``close``) and behaves as librdkafka
2.x does where the engine depends on it (checked against the real client):

- a rebalance the test asks for (``assign``, ``revoke``, ``lose``) runs inside the next
  ``consume``, on the poll thread, as librdkafka serves its callbacks; an assigned partition
  starts at the group's committed offset, else per ``auto.offset.reset`` (``earliest``
  unless the configuration says otherwise: the worker always sets it);
- ``consume`` hands out up to ``num_messages`` records of assigned, unpaused partitions, in
  offset order; with ``enable.partition.eof`` a ``_PARTITION_EOF`` event follows once each
  time a partition is caught up (again only after more was delivered, or after a seek);
- ``pause`` takes effect at once, and a paused partition stays paused through a revoke and a
  re-assign (librdkafka keeps the application's pause flag on the partition): only
  ``resume`` clears it;
- ``seek`` of a partition not assigned raises ``KafkaException`` (``_STATE``);
- ``commit`` stores offsets at once. A synchronous one returns them; an asynchronous one
  reports to the ``on_commit`` callback of the configuration from the next ``consume``.
  While ``refuse_commits`` is on, the broker refuses them: a synchronous commit raises, an
  asynchronous one reports the error to ``on_commit``, and nothing is stored.

Test controls are thread-safe: tests call them while the engine consumes on its own thread.
``consumes`` counts the engine's turns, so a test can wait for "two more turns" instead of
sleeping.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from confluent_kafka import (
    OFFSET_INVALID,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

TP = tuple[str, int]
Callback = Callable[[Any, list[TopicPartition]], None]
CommitCallback = Callable[[KafkaError | None, list[TopicPartition]], None]
TIMESTAMP_CREATE_TIME = 1
IDLE_WAIT = 0.005  # longest a consume with nothing to hand out blocks: keeps tests quick


@dataclass(frozen=True, slots=True)
class Commit:
    """One offset the broker stored (or refused)."""

    topic: str
    partition: int
    offset: int
    asynchronous: bool
    assigned: bool  # was the partition assigned to this consumer when it was committed?

    @property
    def tp(self) -> TP:
        """The partition."""
        return (self.topic, self.partition)


class MemoryConsumer:
    """Partitions in memory; deliveries, pauses, seeks and commits recorded for assertions."""

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        self.config: dict[str, Any] = dict(config or {})
        self.on_consume: Callable[[], None] | None = None  # runs at every consume (test hook)
        self.logs: dict[TP, list[Message]] = {}
        self.positions: dict[TP, int] = {}
        self.assigned: list[TP] = []
        self.paused: set[TP] = set()
        self.commits: list[Commit] = []  # stored, in order
        self.refused: list[Commit] = []
        self.seeks: list[tuple[TP, int]] = []
        self.deliveries: Counter[tuple[TP, int]] = Counter()  # times each offset was handed out
        self.delivered = 0
        self.consumes = 0
        self.rebalances = 0  # rebalance callbacks that have returned
        self.closed = False
        self._committed: dict[TP, int] = {}
        self._eof_sent: set[TP] = set()
        self._rebalances: deque[tuple[str, list[TP]]] = deque()
        self._errors: deque[Message] = deque()
        self._commit_reports: deque[tuple[KafkaError | None, list[TopicPartition]]] = deque()
        self._refusing: KafkaError | None = None
        self._callbacks: dict[str, Callback] = {}
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)

    def factory(self, config: dict[str, Any]) -> Consumer:
        """The engine's ``consumer_factory``: this consumer, taking the engine's settings."""
        self.config.update(config)
        return cast("Consumer", self)

    # ------------------------------------------------------------------ test controls

    def produce(
        self,
        topic: str,
        partition: int,
        *,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> int:
        """Append a record to ``topic:partition``; return its offset."""
        with self._wakeup:
            log = self.logs.setdefault((topic, partition), [])
            offset = len(log)
            log.append(
                Message(
                    topic=topic,
                    partition=partition,
                    offset=offset,
                    key=key,
                    value=value,
                    headers=list(headers) or None,
                    timestamp=(TIMESTAMP_CREATE_TIME, 1_700_000_000_000 + offset),
                )
            )
            self._wakeup.notify_all()
            return offset

    def assign(self, *tps: TP) -> None:
        """Assign partitions to this consumer at the next ``consume`` (``on_assign``)."""
        self._rebalance_later("assign", tps)

    def revoke(self, *tps: TP) -> None:
        """Revoke partitions at the next ``consume`` (``on_revoke``)."""
        self._rebalance_later("revoke", tps)

    def lose(self, *tps: TP) -> None:
        """Lose partitions at the next ``consume`` (``on_lost``: the session expired)."""
        self._rebalance_later("lost", tps)

    def inject_error(
        self, error: KafkaError, *, topic: str | None = None, partition: int | None = None
    ) -> None:
        """Hand out an error event (``UNKNOWN_TOPIC_OR_PART``, a fatal error...) next."""
        fields: dict[str, Any] = {"error": error}
        if topic is not None:
            fields["topic"] = topic
        if partition is not None:
            fields["partition"] = partition
        with self._wakeup:
            self._errors.append(Message(**fields))
            self._wakeup.notify_all()

    def refuse_commits(self, error: KafkaError | None) -> None:
        """Refuse every commit with ``error`` from now on (None: accept them again)."""
        with self._lock:
            self._refusing = error

    def committed_offset(self, tp: TP) -> int | None:
        """The group's committed offset of ``tp`` (None: nothing committed)."""
        with self._lock:
            return self._committed.get(tp)

    def commits_of(self, tp: TP) -> list[int]:
        """The offsets stored for ``tp``, in order."""
        with self._lock:
            return [commit.offset for commit in self.commits if commit.tp == tp]

    # ------------------------------------------------------------------ the Consumer API

    def subscribe(
        self,
        topics: list[str],  # noqa: ARG002 - partitions come from assign()
        *,
        on_assign: Callback,
        on_revoke: Callback,
        on_lost: Callback,
    ) -> None:
        """Remember the rebalance callbacks."""
        self._callbacks = {"assign": on_assign, "revoke": on_revoke, "lost": on_lost}

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Message]:
        """Serve rebalances and commit reports, then hand out errors, records and EOFs."""
        if self.closed:
            raise RuntimeError("Consumer closed")
        if num_messages < 1:
            raise ValueError("num_messages must be at least 1")
        self._serve_rebalances()
        self._serve_commit_reports()
        if self.on_consume is not None:
            self.on_consume()
        with self._wakeup:
            self.consumes += 1
            batch = self._take(num_messages)
            if not batch and timeout != 0:
                wait = IDLE_WAIT if timeout < 0 else min(timeout, IDLE_WAIT)
                self._wakeup.wait(wait)
            return batch

    def pause(self, partitions: list[TopicPartition]) -> None:
        """Hand out nothing more from ``partitions`` until resumed."""
        with self._lock:  # replaced, never changed in place: tests read it from their thread
            self.paused = self.paused | {(tp.topic, tp.partition) for tp in partitions}

    def resume(self, partitions: list[TopicPartition]) -> None:
        """Hand out records of ``partitions`` again."""
        with self._wakeup:
            self.paused = self.paused - {(tp.topic, tp.partition) for tp in partitions}
            self._wakeup.notify_all()

    def seek(self, partition: TopicPartition) -> None:
        """Hand out ``partition`` from ``partition.offset`` on; it must be assigned."""
        tp = (partition.topic, partition.partition)
        with self._wakeup:
            if tp not in self.assigned:
                raise KafkaException(KafkaError(KafkaError._STATE, "Failed to seek: not assigned"))
            self.positions[tp] = partition.offset
            self.seeks.append((tp, partition.offset))
            self._eof_sent.discard(tp)
            self._wakeup.notify_all()

    def commit(
        self,
        message: Message | None = None,
        *,
        offsets: list[TopicPartition] | None = None,
        asynchronous: bool = True,
    ) -> list[TopicPartition] | None:
        """Store ``offsets``; a synchronous commit returns them, an asynchronous one reports."""
        if message is not None or offsets is None:
            raise NotImplementedError("the engine commits explicit offsets only")
        if not offsets:
            raise KafkaException(KafkaError(KafkaError._NO_OFFSET))
        with self._lock:
            refusing = self._refusing
            record = self.refused if refusing is not None else self.commits
            for tp in offsets:
                key = (tp.topic, tp.partition)
                record.append(
                    Commit(tp.topic, tp.partition, tp.offset, asynchronous, key in self.assigned)
                )
                if refusing is None:
                    self._committed[key] = tp.offset
            results = [TopicPartition(tp.topic, tp.partition, tp.offset) for tp in offsets]
            if asynchronous:
                self._commit_reports.append((refusing, results))
                return None
        if refusing is not None:
            raise KafkaException(refusing)
        return results

    def committed(
        self,
        partitions: list[TopicPartition],
        timeout: float | None = None,  # noqa: ARG002 - the real signature
    ) -> list[TopicPartition]:
        """The group's committed offsets (``OFFSET_INVALID`` where none)."""
        with self._lock:
            return [
                TopicPartition(
                    tp.topic,
                    tp.partition,
                    self._committed.get((tp.topic, tp.partition), OFFSET_INVALID),
                )
                for tp in partitions
            ]

    def get_watermark_offsets(
        self,
        partition: TopicPartition,
        timeout: float | None = None,  # noqa: ARG002 - the real signature
        cached: bool = False,  # noqa: ARG002 - the real signature
    ) -> tuple[int, int]:
        """(low, high): 0 and the offset the next record will get."""
        with self._lock:
            log = self.logs.get((partition.topic, partition.partition))
        if log is None:
            raise KafkaException(KafkaError(KafkaError._UNKNOWN_PARTITION))
        return 0, len(log)

    def close(self) -> None:
        """Leave the group: the assignment is revoked (``on_revoke``), then the consumer closes."""
        if self.closed:
            return
        if self.assigned and self._callbacks:
            self._run_rebalance("revoke", list(self.assigned))
        self.closed = True

    # ------------------------------------------------------------------ internals

    def _rebalance_later(self, kind: str, tps: Sequence[TP]) -> None:
        with self._wakeup:
            self._rebalances.append((kind, list(tps)))
            self._wakeup.notify_all()

    def _serve_rebalances(self) -> None:
        while True:
            with self._lock:
                if not self._rebalances:
                    return
                kind, tps = self._rebalances.popleft()
            self._run_rebalance(kind, tps)

    def _run_rebalance(self, kind: str, tps: list[TP]) -> None:
        """Run one callback outside the lock (it may take long: the engine drains in it)."""
        partitions = [TopicPartition(topic, partition) for topic, partition in tps]
        if kind == "assign":
            with self._lock:
                for tp in tps:
                    self.logs.setdefault(tp, [])
                    self.assigned = [*self.assigned, tp]
                    self.positions[tp] = self._start_offset(tp)
                    self._eof_sent.discard(tp)
            self._callbacks["assign"](self, partitions)
        else:
            self._callbacks[kind](self, partitions)
            with self._lock:
                self.assigned = [tp for tp in self.assigned if tp not in tps]
                # self.paused is kept: librdkafka's pause flag outlives the assignment.
        with self._lock:
            self.rebalances += 1

    def _start_offset(self, tp: TP) -> int:
        committed = self._committed.get(tp)
        if committed is not None:
            return committed
        reset = str(self.config.get("auto.offset.reset", "earliest"))
        latest = reset in ("latest", "largest", "end")
        return len(self.logs[tp]) if latest else 0

    def _serve_commit_reports(self) -> None:
        on_commit: CommitCallback | None = self.config.get("on_commit")
        while True:
            with self._lock:
                if not self._commit_reports:
                    return
                error, partitions = self._commit_reports.popleft()
            if on_commit is not None:
                on_commit(error, partitions)

    def _take(self, limit: int) -> list[Message]:
        """Up to ``limit`` errors, records and EOF events (called with the lock held)."""
        batch: list[Message] = []
        while self._errors and len(batch) < limit:
            batch.append(self._errors.popleft())
        eof = bool(self.config.get("enable.partition.eof", False))
        for tp in self.assigned:
            if tp in self.paused:
                continue
            log = self.logs[tp]
            while len(batch) < limit and self.positions[tp] < len(log):
                offset = self.positions[tp]
                batch.append(log[offset])
                self.deliveries[(tp, offset)] += 1
                self.positions[tp] = offset + 1
                self.delivered += 1
                self._eof_sent.discard(tp)
            caught_up = self.positions[tp] == len(log) and tp not in self._eof_sent
            if eof and caught_up and len(batch) < limit:
                self._eof_sent.add(tp)
                batch.append(
                    Message(
                        topic=tp[0],
                        partition=tp[1],
                        offset=len(log),
                        error=KafkaError(KafkaError._PARTITION_EOF),
                    )
                )
        return batch
