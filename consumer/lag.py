"""Consumer lag per partition, refreshed on a timer from the broker, never blocking the loop.

Lag is the number of records between a partition's end and the group's committed offset,
what ``kafka-consumer-groups --describe`` shows. Both numbers live on the broker. Every
``interval`` seconds the monitor asks for them through an admin client, whose requests
return futures answered on librdkafka's own thread; the poll loop only looks at the futures
on its next turns. So the gauge moves on its own during an outage or a stall, when no
commit lands and every partition is paused (the cached high watermark of a paused
partition goes stale: nothing is fetched for it).

Where nothing is committed (dry-run), or the group has no offset yet for a partition, the
worker's own watermark (the offset it would commit) stands in for the committed offset; on a
partition it has not consumed from yet, the offset it will start from does: the log start
with ``auto.offset.reset=earliest``, the end with ``latest``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any, Protocol

import structlog
from confluent_kafka import ConsumerGroupTopicPartitions, IsolationLevel, TopicPartition
from confluent_kafka.admin import OffsetSpec  # type: ignore[attr-defined]  # re-exported, untyped

from consumer.kafka_types import TP
from consumer.observability import Metrics

log = structlog.get_logger("consumer.lag")

Watermarks = Mapping[TP, int | None]
"""The owned partitions, each with the worker's watermark (None: nothing consumed yet)."""


class OffsetsAdmin(Protocol):
    """The two admin-client calls the monitor needs (``confluent_kafka.admin.AdminClient``)."""

    def list_offsets(
        self,
        topic_partition_offsets: dict[TopicPartition, OffsetSpec],
        *,
        isolation_level: IsolationLevel,
        request_timeout: float,
    ) -> dict[TopicPartition, Future[Any]]:
        """End offsets, as futures keyed by partition."""

    def list_consumer_group_offsets(
        self,
        list_consumer_group_offsets_request: list[ConsumerGroupTopicPartitions],
        *,
        request_timeout: float,
    ) -> dict[str, Future[Any]]:
        """Committed offsets of a group, as one future per group."""


class _Request:
    """One refresh in flight: the futures and when to give up on them."""

    def __init__(
        self,
        ends: Mapping[TopicPartition, Future[Any]],
        starts: Mapping[TopicPartition, Future[Any]],
        committed: Future[Any] | None,
        deadline: float,
    ) -> None:
        self.ends = ends
        self.starts = starts
        self.committed = committed
        self.deadline = deadline

    def done(self) -> bool:
        futures = [
            *self.ends.values(),
            *self.starts.values(),
            *([self.committed] if self.committed else []),
        ]
        return all(future.done() for future in futures)


class LagMonitor:
    """Refreshes ``credentials_consumer_lag_records`` for every owned partition.

    Owned by the poll thread: ``tick`` is called on every turn and costs a clock read
    unless a refresh is due or its answers have arrived. A refresh that fails or outlives
    its deadline is dropped (and logged once until one succeeds); the gauge keeps its last
    value meanwhile.
    """

    def __init__(
        self,
        admin: OffsetsAdmin,
        metrics: Metrics,
        *,
        group_id: str | None,
        from_earliest: bool = True,
        interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``group_id`` None: nothing is committed (dry-run); the watermark is the offset.

        ``from_earliest``: where the group starts on a partition with no committed offset
        (``auto.offset.reset``), for the partitions not consumed from yet.
        """
        self._admin = admin
        self._metrics = metrics
        self._group_id = group_id
        self._from_earliest = from_earliest
        self._interval = interval
        self._clock = clock
        self._due = clock()
        self._request: _Request | None = None
        self._failing = False

    def tick(self, owned: Callable[[], Watermarks]) -> None:
        """Collect a finished refresh, or start one when due; never blocks."""
        now = self._clock()
        if self._request is not None:
            if self._request.done():
                request, self._request = self._request, None
                self._apply(request, owned())
            elif now >= self._request.deadline:
                self._request = None
                self._failed("no answer before the deadline")
        if self._request is None and now >= self._due:
            self._due = now + self._interval
            partitions = owned()
            if partitions:
                self._start(partitions, now)

    def _start(self, partitions: Watermarks, now: float) -> None:
        tps = [TopicPartition(topic, partition) for topic, partition in partitions]
        timeout = max(1.0, 2 * self._interval)
        try:
            ends = self._list(tps, OffsetSpec.latest(), timeout)  # type: ignore[no-untyped-call]
            starts = (
                self._list(tps, OffsetSpec.earliest(), timeout)  # type: ignore[no-untyped-call]
                if self._from_earliest
                else {}
            )
            committed = None
            if self._group_id is not None:
                request = ConsumerGroupTopicPartitions(self._group_id, tps)
                committed = self._admin.list_consumer_group_offsets(
                    [request], request_timeout=timeout
                )[self._group_id]
        except Exception as error:  # noqa: BLE001 - any failure means: no sample this time
            self._failed(str(error))
            return
        self._request = _Request(ends, starts, committed, now + timeout + 1.0)

    def _list(
        self, tps: list[TopicPartition], spec: OffsetSpec, timeout: float
    ) -> dict[TopicPartition, Future[Any]]:
        return self._admin.list_offsets(
            dict.fromkeys(tps, spec),
            isolation_level=IsolationLevel.READ_COMMITTED,
            request_timeout=timeout,
        )

    def _apply(self, request: _Request, owned: Watermarks) -> None:
        try:
            committed: dict[TP, int] = {}
            if request.committed is not None:
                for tp in request.committed.result().topic_partitions:
                    committed[(tp.topic, tp.partition)] = tp.offset
            ends = {(tp.topic, tp.partition): f.result().offset for tp, f in request.ends.items()}
            starts = {
                (tp.topic, tp.partition): f.result().offset for tp, f in request.starts.items()
            }
        except Exception as error:  # noqa: BLE001 - a failed refresh leaves the last values
            self._failed(str(error))
            return
        if self._failing:
            log.info("lag_refresh_recovered")
            self._failing = False
        for tp, end in ends.items():
            if tp not in owned or end < 0:
                continue  # released meanwhile, or no end known
            base = committed.get(tp, -1)
            if base < 0:  # nothing committed: what is consumed, else where it will start
                watermark = owned[tp]
                base = watermark if watermark is not None else starts.get(tp, end)
            self._metrics.lag.labels(tp[0], str(tp[1])).set(max(0, end - base))

    def _failed(self, why: str) -> None:
        if not self._failing:
            log.warning("lag_refresh_failed", error=why)
            self._failing = True
