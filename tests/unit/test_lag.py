"""Lag per partition: refreshed from the broker on a timer, without blocking the poll loop."""

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

    def answer(
        self,
        ends: dict[int, int],
        committed: dict[int, int] | None = None,
        starts: dict[int, int] | None = None,
    ) -> None:
        """Complete the latest request: end, committed (unless None) and start offsets."""
        for tp, future in self.ends[-1].items():
            future.set_result(ListOffsetsResultInfo(ends[tp.partition], -1, -1))
        for tp, future in self.starts[-1].items() if self.starts else ():
            start = (starts or {}).get(tp.partition, 0)
            future.set_result(ListOffsetsResultInfo(start, -1, -1))
        if committed is not None:
            partitions = [TopicPartition(TOPIC, p, o) for p, o in committed.items()]
            self.committed[-1].set_result(ConsumerGroupTopicPartitions(GROUP, partitions))


def lag(metrics: Metrics, partition: int) -> float | None:
    return metrics.registry.get_sample_value(
        "credentials_consumer_lag_records", {"topic": TOPIC, "partition": str(partition)}
    )


def make(
    group: str | None = GROUP, *, from_earliest: bool = True
) -> tuple[LagMonitor, FakeAdmin, Metrics, FakeClock]:
    admin, metrics, clock = FakeAdmin(), Metrics(), FakeClock()
    monitor = LagMonitor(
        admin, metrics, group_id=group, from_earliest=from_earliest, interval=5.0, clock=clock
    )
    return monitor, admin, metrics, clock


def test_lag_is_the_end_minus_the_groups_committed_offset() -> None:
    """The gauge is set from the broker's answers: end offset - committed offset."""
    monitor, admin, metrics, _ = make()
    owned = {(TOPIC, 0): 7, (TOPIC, 1): 3}
    monitor.tick(lambda: owned)
    assert lag(metrics, 0) is None  # asked, not answered: nothing blocks, nothing guessed
    admin.answer(ends={0: 10, 1: 3}, committed={0: 4, 1: 3})
    monitor.tick(lambda: owned)
    assert (lag(metrics, 0), lag(metrics, 1)) == (6, 0)


def test_lag_moves_on_the_timer_without_any_commit() -> None:
    """With nothing committed in between, a later refresh still shows the end moving on."""
    monitor, admin, metrics, clock = make()
    owned = {(TOPIC, 0): 4}
    monitor.tick(lambda: owned)
    admin.answer(ends={0: 10}, committed={0: 4})
    monitor.tick(lambda: owned)
    clock.advance(4.9)
    monitor.tick(lambda: owned)
    assert len(admin.ends) == 1  # not due yet
    clock.advance(0.1)
    monitor.tick(lambda: owned)
    admin.answer(ends={0: 25}, committed={0: 4})
    monitor.tick(lambda: owned)
    assert lag(metrics, 0) == 21


def test_where_nothing_is_committed_the_watermark_then_the_start_stands_in() -> None:
    """Never committed: lag from the worker's watermark; nothing consumed: from the log start."""
    monitor, admin, metrics, _ = make()
    owned: dict[tuple[str, int], int | None] = {(TOPIC, 0): 8, (TOPIC, 1): None}
    monitor.tick(lambda: owned)
    admin.answer(ends={0: 10, 1: 5}, committed={0: -1001, 1: -1001}, starts={0: 0, 1: 1})
    monitor.tick(lambda: owned)
    assert (lag(metrics, 0), lag(metrics, 1)) == (2, 4)


def test_a_group_starting_at_the_end_has_no_lag_on_partitions_it_has_not_read() -> None:
    """With auto.offset.reset=latest, an unread partition starts at its end: lag 0."""
    monitor, admin, metrics, _ = make(from_earliest=False)
    owned: dict[tuple[str, int], int | None] = {(TOPIC, 0): None}
    monitor.tick(lambda: owned)
    assert admin.starts == []
    admin.answer(ends={0: 10}, committed={0: -1001})
    monitor.tick(lambda: owned)
    assert lag(metrics, 0) == 0


def test_dry_run_asks_for_no_committed_offsets() -> None:
    """Without a group to commit to, only end offsets are asked for; lag is end - watermark."""
    monitor, admin, metrics, _ = make(group=None)
    owned = {(TOPIC, 0): 3}
    monitor.tick(lambda: owned)
    assert admin.committed == []
    admin.answer(ends={0: 10})
    monitor.tick(lambda: owned)
    assert lag(metrics, 0) == 7


def test_a_partition_released_meanwhile_gets_no_sample() -> None:
    """An answer for a partition no longer owned does not bring its series back."""
    monitor, admin, metrics, _ = make()
    monitor.tick(lambda: {(TOPIC, 0): 0, (TOPIC, 1): 0})
    admin.answer(ends={0: 10, 1: 10}, committed={0: 0, 1: 0})
    monitor.tick(lambda: {(TOPIC, 1): 0})
    assert (lag(metrics, 0), lag(metrics, 1)) == (None, 10)


def test_a_failed_or_late_refresh_keeps_the_last_value_and_tries_again() -> None:
    """A refresh that fails, or never answers, is dropped; the next one goes out when due."""
    monitor, admin, metrics, clock = make()
    owned = {(TOPIC, 0): 0}
    monitor.tick(lambda: owned)
    admin.answer(ends={0: 10}, committed={0: 2})
    monitor.tick(lambda: owned)
    clock.advance(5)
    monitor.tick(lambda: owned)
    next(iter(admin.ends[-1].values())).set_exception(RuntimeError("broker gone"))
    next(iter(admin.starts[-1].values())).set_result(ListOffsetsResultInfo(0, -1, -1))
    admin.committed[-1].set_result(ConsumerGroupTopicPartitions(GROUP, []))
    monitor.tick(lambda: owned)
    assert lag(metrics, 0) == 8
    clock.advance(5)
    monitor.tick(lambda: owned)  # a new request, never answered
    clock.advance(60)
    monitor.tick(lambda: owned)  # dropped at its deadline, and a fresh one sent
    assert len(admin.ends) == 4
    admin.answer(ends={0: 12}, committed={0: 12})
    monitor.tick(lambda: owned)
    assert lag(metrics, 0) == 0
