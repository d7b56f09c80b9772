"""An in-memory stand-in for confluent-kafka's ``Consumer``, to drive the engine in unit tests.

Only what the engine calls: ``subscribe`` with rebalance callbacks, ``consume``, ``pause``
and ``resume``, ``seek``, ``commit``, ``get_watermark_offsets`` and ``close``. Partitions
are lists of real ``confluent_kafka.Message`` values. A rebalance the test asks for
(``assign`` / ``revoke``) runs inside the next ``consume``, on the poll thread, as
librdkafka runs its callbacks. ``on_consume`` runs at every ``consume`` (tests move a fake
clock there). Thread-safe where tests need it: producing and asking for rebalances.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from confluent_kafka import Consumer, Message, TopicPartition

TP = tuple[str, int]
Callback = Callable[[Any, list[TopicPartition]], None]


class MemoryConsumer:
    """Partitions in memory; positions, pauses and commits recorded for assertions."""

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        self.config = dict(config or {})
        self.on_consume: Callable[[], None] | None = None
        self.logs: dict[TP, list[Message]] = {}
        self.positions: dict[TP, int] = {}
        self.assigned: list[TP] = []
        self.paused: set[TP] = set()
        self.commits: list[TopicPartition] = []
        self.delivered = 0
        self.closed = False
        self._lock = threading.Lock()
        self._rebalances: deque[tuple[str, list[TP]]] = deque()
        self._callbacks: dict[str, Callback] = {}

    def factory(self, config: dict[str, Any]) -> Consumer:
        """The engine's ``consumer_factory``: this consumer, with the engine's settings."""
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
        with self._lock:
            log = self.logs.setdefault((topic, partition), [])
            offset = len(log)
            log.append(
                Message(
                    topic=topic,
                    partition=partition,
                    offset=offset,
                    key=key,
                    value=value,
                    headers=list(headers),
                    timestamp=(1, 1_700_000_000_000 + offset),
                )
            )
            return offset

    def assign(self, *tps: TP) -> None:
        """Assign partitions at the next ``consume``."""
        with self._lock:
            self._rebalances.append(("assign", list(tps)))

    def revoke(self, *tps: TP) -> None:
        """Revoke partitions at the next ``consume``."""
        with self._lock:
            self._rebalances.append(("revoke", list(tps)))

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
        """Run due rebalances, then hand out up to ``num_messages`` unpaused records."""
        self._rebalance()
        if self.on_consume is not None:
            self.on_consume()
        batch: list[Message] = []
        with self._lock:
            for tp in self.assigned:
                if tp in self.paused:
                    continue
                log = self.logs.get(tp, [])
                while len(batch) < num_messages and self.positions[tp] < len(log):
                    batch.append(log[self.positions[tp]])
                    self.positions[tp] += 1
            self.delivered += len(batch)
        if not batch:
            time.sleep(min(max(timeout, 0.0), 0.005))
        return batch

    def pause(self, partitions: list[TopicPartition]) -> None:
        """Deliver nothing more from ``partitions`` until resumed."""
        self.paused |= {(tp.topic, tp.partition) for tp in partitions}

    def resume(self, partitions: list[TopicPartition]) -> None:
        """Deliver from ``partitions`` again."""
        self.paused -= {(tp.topic, tp.partition) for tp in partitions}

    def seek(self, partition: TopicPartition) -> None:
        """Deliver ``partition`` from ``partition.offset`` on."""
        with self._lock:
            self.positions[(partition.topic, partition.partition)] = partition.offset

    def commit(
        self, *, offsets: list[TopicPartition], asynchronous: bool = True
    ) -> list[TopicPartition] | None:
        """Record the offsets; a synchronous commit returns them as landed."""
        self.commits.extend(offsets)
        return None if asynchronous else offsets

    def get_watermark_offsets(
        self,
        partition: TopicPartition,
        timeout: float | None = None,  # noqa: ARG002 - the real signature
        cached: bool = False,  # noqa: ARG002 - the real signature
    ) -> tuple[int, int]:
        """(0, end of the partition)."""
        return 0, len(self.logs.get((partition.topic, partition.partition), []))

    def close(self) -> None:
        """Revoke what is assigned (as a real consumer leaving its group does), then close."""
        if self.assigned:
            self._callbacks["revoke"](self, [TopicPartition(t, p) for t, p in self.assigned])
            self.assigned.clear()
        self.closed = True

    # ------------------------------------------------------------------ internals

    def _rebalance(self) -> None:
        while True:
            with self._lock:
                if not self._rebalances:
                    return
                kind, tps = self._rebalances.popleft()
            partitions = [TopicPartition(t, p) for t, p in tps]
            if kind == "assign":
                for tp in tps:
                    self.assigned.append(tp)
                    self.positions.setdefault(tp, 0)
                self._callbacks["assign"](self, partitions)
            else:
                self._callbacks["revoke"](self, partitions)
                self.assigned = [tp for tp in self.assigned if tp not in tps]
                self.paused -= set(tps)
