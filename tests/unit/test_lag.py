"""Lag per partition: refreshed from the broker on a timer, without blocking the poll loop.

The base is the worker's watermark (or, with nothing consumed yet, where its consumer reads
from); the group's committed offsets are never asked of the broker through the admin client,
whose coordinator requests can abort the process on a broker restart (librdkafka 4605).
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import ConsumerGroupTopicPartitions, IsolationLevel, TopicPartition
from confluent_kafka.admin import ListOffsetsResultInfo, OffsetSpec  # type: ignore[attr-defined]

from consumer.lag import LagMonitor
from consumer.observability import Metrics
from tests.support.clock import FakeClock

TOPIC = "learning-certificate-lifecycle"
GROUP = "credentials-consumer"
LATEST = OffsetSpec.latest()  # type: ignore[no-untyped-call]
EARLIEST = OffsetSpec.earliest()  # type: ignore[no-untyped-call]


@dataclass
class FakeAdmin:
    """Answers list requests with futures the test completes by hand."""

    ends: list[dict[TopicPartition, Future[Any]]] = field(default_factory=list)
    starts: list[dict[TopicPartition, Future[Any]]] = field(default_factory=list)
    committed: list[Future[Any]] = field(default_factory=list)

    def list_offsets(
        self,
        topic_partition_offsets: dict[TopicPartition, OffsetSpec],
        *,
        isolation_level: IsolationLevel,
        request_timeout: float,
    ) -> dict[TopicPartition, Future[Any]]:
        assert isolation_level == IsolationLevel.READ_COMMITTED
        assert request_timeout > 0
        futures: dict[TopicPartition, Future[Any]] = {
            tp: Future() for tp in topic_partition_offsets
        }
        specs = set(topic_partition_offsets.values())
        assert specs in ({LATEST}, {EARLIEST})
        (self.ends if specs == {LATEST} else self.starts).append(futures)
        return futures

    def list_consumer_group_offsets(
        self,
        list_consumer_group_offsets_request: list[ConsumerGroupTopicPartitions],
        *,
        request_timeout: float,
    ) -> dict[str, Future[Any]]:
        assert request_timeout > 0
        future: Future[Any] = Future()
        self.committed.append(future)
        return {list_consumer_group_offsets_request[0].group_id: future}

    def answer(self, ends: dict[int, int], starts: dict[int, int] | None = None) -> None:
        """Complete the latest request: end and start offsets."""
        for tp, future in self.ends[-1].items():
            future.set_result(ListOffsetsResultInfo(ends[tp.partition], -1, -1))
        for tp, future in self.starts[-1].items() if self.starts else ():
            start = (starts or {}).get(tp.partition, 0)
            future.set_result(ListOffsetsResultInfo(start, -1, -1))


def lag(metrics: Metrics, partition: int) -> float | None:
    return metrics.registry.get_sample_value(
        "credentials_consumer_lag_records", {"topic": TOPIC, "partition": str(partition)}
    )


def make(*, from_earliest: bool = True) -> tuple[LagMonitor, FakeAdmin, Metrics, FakeClock]:
    admin, metrics, clock = FakeAdmin(), Metrics(), FakeClock()
    monitor = LagMonitor(admin, metrics, from_earliest=from_earliest, interval=5.0, clock=clock)
    return monitor, admin, metrics, clock


def test_lag_is_the_end_minus_the_workers_watermark() -> None:
    """The gauge is set from the broker's end offsets minus the offsets the worker finished."""
    monitor, admin, metrics, _ = make()
    owned = {(TOPIC, 0): 4, (TOPIC, 1): 3}
    monitor.tick(lambda: owned)
    assert lag(metrics, 0) is None  # asked, not answered: nothing blocks, nothing guessed
    admin.answer(ends={0: 10, 1: 3})
    monitor.tick(lambda: owned)
    assert (lag(metrics, 0), lag(metrics, 1)) == (6, 0)


def test_the_groups_offsets_are_never_asked_through_the_admin_client() -> None:
    """No ListConsumerGroupOffsets: such a request can abort the process on a broker restart.

    A coordinator admin request that times out across a broker restart trips an assertion in
    librdkafka (issue 4605): ``make chaos`` lost its worker to it on its first full run.
    """
    monitor, admin, metrics, clock = make()
    owned = {(TOPIC, 0): 4}
    for _ in range(3):
        monitor.tick(lambda: owned)
        assert admin.committed == []
        admin.answer(ends={0: 10})
        monitor.tick(lambda: owned)
        clock.advance(5)
    assert len(admin.ends) == 3
    assert lag(metrics, 0) == 6


def test_lag_moves_on_the_timer_without_any_commit() -> None:
    """With nothing committed in between, a later refresh still shows the end moving on."""
    monitor, admin, metrics, clock = make()
    owned = {(TOPIC, 0): 4}
    monitor.tick(lambda: owned)
    admin.answer(ends={0: 10})
    monitor.tick(lambda: owned)
    clock.advance(4.9)
    monitor.tick(lambda: owned)
    assert len(admin.ends) == 1  # not due yet
    clock.advance(0.1)
    monitor.tick(lambda: owned)
    admin.answer(ends={0: 25})
    monitor.tick(lambda: owned)
    assert lag(metrics, 0) == 21


def test_where_nothing_is_known_yet_the_log_start_stands_in() -> None:
    """No watermark and no position yet: lag from where the group will start, the log start."""
    monitor, admin, metrics, _ = make()
    owned: dict[tuple[str, int], int | None] = {(TOPIC, 0): 8, (TOPIC, 1): None}
    monitor.tick(lambda: owned)
    admin.answer(ends={0: 10, 1: 5}, starts={0: 0, 1: 1})
    monitor.tick(lambda: owned)
    assert (lag(metrics, 0), lag(metrics, 1)) == (2, 4)


def test_a_group_starting_at_the_end_has_no_lag_on_partitions_it_has_not_read() -> None:
    """With auto.offset.reset=latest, an unread partition starts at its end: lag 0."""
    monitor, admin, metrics, _ = make(from_earliest=False)
    owned: dict[tuple[str, int], int | None] = {(TOPIC, 0): None}
    monitor.tick(lambda: owned)
    assert admin.starts == []
    admin.answer(ends={0: 10})
    monitor.tick(lambda: owned)
    assert lag(metrics, 0) == 0


def test_a_partition_released_meanwhile_gets_no_sample() -> None:
    """An answer for a partition no longer owned does not bring its series back."""
    monitor, admin, metrics, _ = make()
    monitor.tick(lambda: {(TOPIC, 0): 0, (TOPIC, 1): 0})
    admin.answer(ends={0: 10, 1: 10})
    monitor.tick(lambda: {(TOPIC, 1): 0})
    assert (lag(metrics, 0), lag(metrics, 1)) == (None, 10)


def test_a_failed_or_late_refresh_keeps_the_last_value_and_tries_again() -> None:
    """A refresh that fails, or never answers, is dropped; the next one goes out when due."""
    monitor, admin, metrics, clock = make()
    owned = {(TOPIC, 0): 2}
    monitor.tick(lambda: owned)
    admin.answer(ends={0: 10})
    monitor.tick(lambda: owned)
    clock.advance(5)
    monitor.tick(lambda: owned)
    next(iter(admin.ends[-1].values())).set_exception(RuntimeError("broker gone"))
    next(iter(admin.starts[-1].values())).set_result(ListOffsetsResultInfo(0, -1, -1))
    monitor.tick(lambda: owned)
    assert lag(metrics, 0) == 8
    clock.advance(5)
    monitor.tick(lambda: owned)  # a new request, never answered
    clock.advance(60)
    monitor.tick(lambda: owned)  # dropped at its deadline, and a fresh one sent
    assert len(admin.ends) == 4
    admin.answer(ends={0: 2})
    monitor.tick(lambda: owned)
    assert lag(metrics, 0) == 0
