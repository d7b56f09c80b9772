"""Consumer lag per partition, refreshed on a timer from the broker, never blocking the loop.

Lag is the number of records between a partition's end and the worker's watermark: the
offset below which every record is done, which the worker commits next (so the group's
committed offset, what ``kafka-consumer-groups --describe`` shows, trails it by at most
``CONSUMER_COMMIT_INTERVAL_SECONDS``). The end lives on the broker: every ``interval``
seconds the monitor asks for it through an admin client, whose requests return futures
answered on librdkafka's own thread; the poll loop only looks at the futures on its next
turns. So the gauge moves on its own during an outage or a stall, when nothing is done and
every partition is paused (the cached high watermark of a paused partition goes stale:
nothing is fetched for it).

The group's committed offsets are not asked of the broker. A coordinator request of the
admin client (``list_consumer_group_offsets``) that times out across a broker restart makes
librdkafka abort the whole process (``rd_kafka_enq_once_del_source_return: Assertion
eonce->refcnt > 0``, librdkafka issue 4605, still open); ``make chaos`` hit it. On a
partition the worker has consumed nothing from yet, the engine passes the end offset of its
last end-of-partition event (caught up: everything below is done); when even that is
unknown, the offset it will start from stands in: the log start with
``auto.offset.reset=earliest``, the end with ``latest``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any, Protocol

import structlog
from confluent_kafka import IsolationLevel, TopicPartition
from confluent_kafka.admin import OffsetSpec  # type: ignore[attr-defined]  # re-exported, untyped

from consumer.kafka_types import TP
from consumer.observability import Metrics

log = structlog.get_logger("consumer.lag")

Watermarks = Mapping[TP, int | None]
"""The owned partitions, each with the worker's watermark (None: not known yet)."""


class OffsetsAdmin(Protocol):
    """The admin-client call the monitor needs (``confluent_kafka.admin.AdminClient``)."""

    def list_offsets(
        self,
        topic_partition_offsets: dict[TopicPartition, OffsetSpec],
        *,
        isolation_level: IsolationLevel,
        request_timeout: float,
    ) -> dict[TopicPartition, Future[Any]]:
        """End (or start) offsets, as futures keyed by partition."""


class _Request:
    """One refresh in flight: the futures and when to give up on them."""

    def __init__(
        self,
        ends: Mapping[TopicPartition, Future[Any]],
        starts: Mapping[TopicPartition, Future[Any]],
        deadline: float,
    ) -> None:
        self.ends = ends
        self.starts = starts
        self.deadline = deadline

    def done(self) -> bool:
        futures = [*self.ends.values(), *self.starts.values()]
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
        from_earliest: bool = True,
        interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``from_earliest``: ``auto.offset.reset``, for partitions with no position yet."""
        self._admin = admin
        self._metrics = metrics
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
        except Exception as error:  # noqa: BLE001 - any failure means: no sample this time
            self._failed(str(error))
            return
        self._request = _Request(ends, starts, now + timeout + 1.0)

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
            watermark = owned[tp]
            base = watermark if watermark is not None else starts.get(tp, end)
            self._metrics.lag.labels(tp[0], str(tp[1])).set(max(0, end - base))

    def _failed(self, why: str) -> None:
        if not self._failing:
            log.warning("lag_refresh_failed", error=why)
            self._failing = True
