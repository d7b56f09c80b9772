"""Commits: the watermarks that partition state chooses, sent to the group.

Periodic commits (every ``interval`` seconds) are asynchronous and only where a watermark
moved; the final commits of a revoke or a shutdown are synchronous and send every
watermark. An asynchronous commit is assumed to land: the broker's answer comes to
``on_commit`` (from the consumer's ``consume``), which undoes the assumption for a refused
offset (say, during a rebalance), so the next turn commits it again.

Without commits (dry run) nothing is written; a bounded dry run (a replay) still records
its progress, as if its commits had landed. Owned by the poll thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from consumer.engine.accounting import Accounting
from consumer.engine.partitions import Partitions
from consumer.kafka_types import TP


class Commits:
    """Sends the offsets ``partitions`` chooses; ``on_commit`` is the consumer's callback."""

    def __init__(
        self,
        partitions: Partitions,
        accounting: Accounting,
        *,
        enabled: bool,
        bounded: bool,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._partitions = partitions
        self._accounting = accounting
        self._enabled = enabled
        self._tracked = enabled or bounded  # a bounded dry run tracks its progress
        self._interval = interval
        self._clock = clock
        self._last = clock()

    def due(self) -> bool:
        """True when the periodic commit is due."""
        return self._clock() - self._last >= self._interval

    def commit(
        self, consumer: Consumer, *, asynchronous: bool, only: Iterable[TP] | None = None
    ) -> None:
        """Commit watermarks: asynchronous ones only where they moved, synchronous ones all."""
        self._last = self._clock()
        if not self._tracked:
            return
        offsets = self._partitions.commits(moved_only=asynchronous, only=only)
        if not offsets:
            return
        if not self._enabled:  # a dry-run replay: progress, but nothing written
            self._partitions.landed(offsets)
            return
        try:
            if asynchronous:
                consumer.commit(offsets=offsets, asynchronous=True)
                return
            results = consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as error:
            self._refused(offsets, str(error))
            return
        self.on_commit(None, results)

    def on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """Commit results: forget refused offsets, record landed ones."""
        refused = [tp for tp in partitions if error is not None or tp.error is not None]
        if refused:
            reason = str(error) if error is not None else str(refused[0].error)
            self._refused(refused, reason)
        landed = [tp for tp in partitions if tp not in refused]
        if landed:
            self._accounting.commit_landed()
            self._partitions.landed(landed)

    def _refused(self, offsets: list[TopicPartition], reason: str) -> None:
        self._partitions.refused(offsets)
        self._accounting.commit_failed(len(offsets), reason)
