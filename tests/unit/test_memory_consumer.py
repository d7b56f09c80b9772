"""The in-memory consumer behaves as librdkafka does where the engine relies on it."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from confluent_kafka import OFFSET_INVALID, KafkaError, KafkaException, Message, TopicPartition

from consumer.wire import Record
from tests.support.memory_consumer import TP, MemoryConsumer

TOPIC = "topic"
P0: TP = (TOPIC, 0)
P1: TP = (TOPIC, 1)


class Callbacks:
    """Rebalance and commit callbacks recording their arguments and the thread they ran on."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, list[TP]]] = []
        self.threads: set[str] = set()
        self.commits: list[tuple[KafkaError | None, list[tuple[TP, int]]]] = []

    def _record(self, kind: str, partitions: list[TopicPartition]) -> None:
        self.threads.add(threading.current_thread().name)
        self.seen.append((kind, [(tp.topic, tp.partition) for tp in partitions]))

    def on_assign(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        self._record("assign", partitions)

    def on_revoke(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        self._record("revoke", partitions)

    def on_lost(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        self._record("lost", partitions)

    def on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        self.commits.append((error, [((tp.topic, tp.partition), tp.offset) for tp in partitions]))


def subscribed(**config: Any) -> tuple[MemoryConsumer, Callbacks]:
    callbacks = Callbacks()
    consumer = MemoryConsumer({"on_commit": callbacks.on_commit, **config})
    consumer.subscribe(
        [TOPIC],
        on_assign=callbacks.on_assign,
        on_revoke=callbacks.on_revoke,
        on_lost=callbacks.on_lost,
    )
    return consumer, callbacks


def fill(consumer: MemoryConsumer, tp: TP, count: int) -> None:
    for index in range(count):
        consumer.produce(tp[0], tp[1], key=b"k", value=f"v{index}".encode())


def records(messages: list[Message]) -> list[tuple[TP, int]]:
    return [
        ((m.topic() or "", m.partition() or 0), m.offset() or 0) for m in messages if not m.error()
    ]


def eofs(messages: list[Message]) -> list[TP]:
    return [
        (m.topic() or "", m.partition() or 0)
        for m in messages
        if (error := m.error()) is not None and error.code() == KafkaError._PARTITION_EOF
    ]


def test_records_come_in_offset_order_as_confluent_messages() -> None:
    """A delivered record reads like a confluent Message: position, key, value, headers, time."""
    consumer, _ = subscribed()
    consumer.produce(TOPIC, 0, key=b"k", value=b"v", headers=[("ce_id", b"e1")])
    fill(consumer, P0, 2)
    consumer.assign(P0)

    batch = consumer.consume(10, 0)

    assert records(batch) == [(P0, 0), (P0, 1), (P0, 2)]
    record = Record.from_message(batch[0])
    assert (record.key, record.value, record.headers) == (b"k", b"v", (("ce_id", b"e1"),))
    assert record.timestamp_ms is not None
    assert batch[1].headers() is None  # as librdkafka: no headers is None, not []


def test_consume_hands_out_no_more_than_asked() -> None:
    """``num_messages`` bounds a batch; the rest comes with the next consume."""
    consumer, _ = subscribed()
    fill(consumer, P0, 5)
    consumer.assign(P0)

    assert records(consumer.consume(2, 0)) == [(P0, 0), (P0, 1)]
    assert records(consumer.consume(10, 0)) == [(P0, 2), (P0, 3), (P0, 4)]


def test_rebalance_callbacks_run_inside_consume_on_the_consuming_thread() -> None:
    """Assign, revoke and lose run at the next consume, on its thread, as librdkafka serves them."""
    consumer, callbacks = subscribed()
    consumer.assign(P0, P1)
    consumer.revoke(P1)
    consumer.lose(P0)
    assert callbacks.seen == []  # asked for, not yet served

    worker = threading.Thread(target=lambda: consumer.consume(1, 0), name="poller")
    worker.start()
    worker.join(5)

    assert callbacks.seen == [("assign", [P0, P1]), ("revoke", [P1]), ("lost", [P0])]
    assert callbacks.threads == {"poller"}
    assert consumer.assigned == []
    assert consumer.rebalances == 3


def test_a_revoked_partition_delivers_nothing_more() -> None:
    """After a revoke, records of the partition are not handed out."""
    consumer, _ = subscribed()
    consumer.assign(P0)
    consumer.consume(1, 0)
    consumer.revoke(P0)
    fill(consumer, P0, 2)

    assert records(consumer.consume(10, 0)) == []


def test_pause_stops_delivery_and_resume_restarts_it() -> None:
    """A paused partition hands out nothing; resumed, it goes on where it stopped."""
    consumer, _ = subscribed()
    fill(consumer, P0, 3)
    fill(consumer, P1, 1)
    consumer.assign(P0, P1)
    assert records(consumer.consume(1, 0)) == [(P0, 0)]

    consumer.pause([TopicPartition(TOPIC, 0)])
    assert records(consumer.consume(10, 0)) == [(P1, 0)]
    assert records(consumer.consume(10, 0)) == []

    consumer.resume([TopicPartition(TOPIC, 0)])
    assert records(consumer.consume(10, 0)) == [(P0, 1), (P0, 2)]


def test_a_pause_outlives_a_revoke_and_a_reassignment() -> None:
    """Librdkafka keeps the application's pause on the partition: only resume clears it.

    Checked on librdkafka 2.16 with a real group: a partition paused, revoked and assigned
    back to the same member stays paused until resumed.
    """
    consumer, _ = subscribed()
    fill(consumer, P0, 2)
    consumer.assign(P0)
    consumer.consume(1, 0)
    consumer.pause([TopicPartition(TOPIC, 0)])
    consumer.revoke(P0)
    consumer.assign(P0)

    assert records(consumer.consume(10, 0)) == []
    consumer.resume([TopicPartition(TOPIC, 0)])
    assert records(consumer.consume(10, 0)) == [(P0, 0), (P0, 1)]


def test_seek_delivers_again_from_the_offset() -> None:
    """Seeking back hands the records out again, and is recorded."""
    consumer, _ = subscribed()
    fill(consumer, P0, 3)
    consumer.assign(P0)
    consumer.consume(10, 0)

    consumer.seek(TopicPartition(TOPIC, 0, 1))

    assert records(consumer.consume(10, 0)) == [(P0, 1), (P0, 2)]
    assert consumer.seeks == [(P0, 1)]
    assert consumer.deliveries[(P0, 1)] == 2


def test_seek_of_a_partition_not_assigned_raises() -> None:
    """As librdkafka: seeking a partition this consumer does not have is an error (_STATE)."""
    consumer, _ = subscribed()

    with pytest.raises(KafkaException) as raised:
        consumer.seek(TopicPartition(TOPIC, 0, 0))

    assert raised.value.args[0].code() == KafkaError._STATE


def test_a_synchronous_commit_returns_the_offsets_and_stores_them() -> None:
    """commit(asynchronous=False) returns the offsets; committed() reads them back; no callback."""
    consumer, callbacks = subscribed()
    consumer.assign(P0)
    consumer.consume(1, 0)

    result = consumer.commit(offsets=[TopicPartition(TOPIC, 0, 7)], asynchronous=False)
    consumer.consume(1, 0)

    assert result is not None
    assert [(tp.partition, tp.offset) for tp in result] == [(0, 7)]
    assert [tp.offset for tp in consumer.committed([TopicPartition(TOPIC, 0)])] == [7]
    assert [tp.offset for tp in consumer.committed([TopicPartition(TOPIC, 1)])] == [OFFSET_INVALID]
    assert callbacks.commits == []  # librdkafka reports synchronous commits by return value only


def test_an_asynchronous_commit_reports_from_the_next_consume() -> None:
    """on_commit is called from consume, never from commit itself."""
    consumer, callbacks = subscribed()
    consumer.assign(P0)
    consumer.consume(1, 0)

    assert consumer.commit(offsets=[TopicPartition(TOPIC, 0, 3)], asynchronous=True) is None
    assert callbacks.commits == []
    consumer.consume(1, 0)

    assert callbacks.commits == [(None, [(P0, 3)])]
    assert consumer.committed_offset(P0) == 3


def test_a_refused_commit_stores_nothing() -> None:
    """While refusing: a synchronous commit raises, an asynchronous one reports the error."""
    consumer, callbacks = subscribed()
    consumer.assign(P0)
    consumer.consume(1, 0)
    refusal = KafkaError(KafkaError.REBALANCE_IN_PROGRESS)
    consumer.refuse_commits(refusal)

    with pytest.raises(KafkaException):
        consumer.commit(offsets=[TopicPartition(TOPIC, 0, 1)], asynchronous=False)
    consumer.commit(offsets=[TopicPartition(TOPIC, 0, 2)], asynchronous=True)
    consumer.consume(1, 0)

    assert callbacks.commits == [(refusal, [(P0, 2)])]
    assert consumer.committed_offset(P0) is None
    assert [commit.offset for commit in consumer.refused] == [1, 2]

    consumer.refuse_commits(None)
    consumer.commit(offsets=[TopicPartition(TOPIC, 0, 2)], asynchronous=False)
    assert consumer.commits_of(P0) == [2]


def test_commits_record_whether_the_partition_was_assigned() -> None:
    """A commit of a partition this consumer no longer has is stored, and marked as such."""
    consumer, _ = subscribed()
    consumer.assign(P0)
    consumer.consume(1, 0)
    consumer.commit(offsets=[TopicPartition(TOPIC, 0, 1)], asynchronous=False)
    consumer.revoke(P0)
    consumer.consume(1, 0)
    consumer.commit(offsets=[TopicPartition(TOPIC, 0, 2)], asynchronous=False)

    assert [(commit.offset, commit.assigned) for commit in consumer.commits] == [
        (1, True),
        (2, False),
    ]


def test_an_assigned_partition_starts_at_the_committed_offset() -> None:
    """Re-assigned, a partition resumes from the group's committed offset, not where it was."""
    consumer, _ = subscribed()
    fill(consumer, P0, 4)
    consumer.assign(P0)
    consumer.consume(10, 0)
    consumer.commit(offsets=[TopicPartition(TOPIC, 0, 1)], asynchronous=False)
    consumer.revoke(P0)
    consumer.assign(P0)

    assert records(consumer.consume(10, 0)) == [(P0, 1), (P0, 2), (P0, 3)]


def test_with_nothing_committed_auto_offset_reset_decides() -> None:
    """With ``earliest`` it starts at the first record, with ``latest`` at the end."""
    earliest, _ = subscribed(**{"auto.offset.reset": "earliest"})
    latest, _ = subscribed(**{"auto.offset.reset": "latest"})
    for consumer in (earliest, latest):
        fill(consumer, P0, 2)
        consumer.assign(P0)

    assert records(earliest.consume(10, 0)) == [(P0, 0), (P0, 1)]
    assert records(latest.consume(10, 0)) == []


def test_end_of_partition_is_reported_once_per_catch_up() -> None:
    """With enable.partition.eof: one EOF at the end, another only after catching up again."""
    consumer, _ = subscribed(**{"enable.partition.eof": True})
    fill(consumer, P0, 2)
    consumer.assign(P0, P1)

    first = consumer.consume(10, 0)
    assert records(first) == [(P0, 0), (P0, 1)]
    assert sorted(eofs(first)) == [P0, P1]  # an empty partition is at its end at once
    assert eofs(consumer.consume(10, 0)) == []

    fill(consumer, P0, 1)
    again = consumer.consume(10, 0)
    assert records(again) == [(P0, 2)]
    assert eofs(again) == [P0]

    consumer.seek(TopicPartition(TOPIC, 0, 0))
    assert eofs(consumer.consume(10, 0)) == [P0]  # caught up again after the seek


def test_no_end_of_partition_events_unless_enabled() -> None:
    """As librdkafka by default (enable.partition.eof false): no EOF events."""
    consumer, _ = subscribed()
    consumer.assign(P0)

    assert consumer.consume(10, 0) == []


def test_injected_errors_come_out_of_consume() -> None:
    """A missing topic or a fatal error is an error event, before any record."""
    consumer, _ = subscribed()
    fill(consumer, P0, 1)
    consumer.assign(P0)
    consumer.inject_error(KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART), topic="absent")
    consumer.inject_error(KafkaError(KafkaError._FATAL, "fenced", fatal=True))

    batch = consumer.consume(10, 0)

    errors = [message.error() for message in batch]
    assert errors[0] is not None
    assert errors[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    assert batch[0].topic() == "absent"
    assert errors[1] is not None
    assert errors[1].fatal()
    assert records(batch) == [(P0, 0)]


def test_watermarks_are_the_partition_bounds() -> None:
    """get_watermark_offsets answers (0, end); an unknown partition raises."""
    consumer, _ = subscribed()
    fill(consumer, P0, 3)

    assert consumer.get_watermark_offsets(TopicPartition(TOPIC, 0), cached=True) == (0, 3)
    with pytest.raises(KafkaException):
        consumer.get_watermark_offsets(TopicPartition(TOPIC, 9))


def test_close_revokes_what_is_assigned() -> None:
    """Closing leaves the group: on_revoke runs for the assignment; consume then fails."""
    consumer, callbacks = subscribed()
    consumer.assign(P0)
    consumer.consume(1, 0)

    consumer.close()

    assert callbacks.seen[-1] == ("revoke", [P0])
    assert consumer.closed
    with pytest.raises(RuntimeError):
        consumer.consume(1, 0)


def test_the_factory_takes_the_engine_settings() -> None:
    """consumer_factory: the engine's configuration (with its on_commit) reaches the consumer."""
    consumer = MemoryConsumer({"auto.offset.reset": "earliest"})

    same: object = consumer.factory({"group.id": "g", "enable.partition.eof": True})

    assert same is consumer
    assert consumer.config == {
        "auto.offset.reset": "earliest",
        "group.id": "g",
        "enable.partition.eof": True,
    }
