"""Dead-letter bookkeeping on its own: acknowledgements, resends, generations, the null sinks."""

from __future__ import annotations

from confluent_kafka import KafkaError, TopicPartition

from consumer.engine.accounting import Accounting
from consumer.engine.failures import RESEND_SECONDS, Failures, HeldFailures, LoggedFailures
from consumer.engine.partitions import Intake, Partitions
from consumer.observability import Metrics
from consumer.outcomes import Failed
from consumer.wire import Record
from tests.support.clock import FakeClock
from tests.support.engine_fakes import FakeSink

TP0 = ("t", 0)
FAILURE = Failed(stage="apply", error_class="PermanentError", reason="http_400", message="no")


class Harness:
    """Partition ``t:0`` owned with offsets 0-2 taken, and the bookkeeping over ``sink``."""

    def __init__(self, sink: FakeSink | HeldFailures | LoggedFailures) -> None:
        self.clock = FakeClock()
        self.partitions = Partitions(max_buffered=10)
        self.partitions.assign([TopicPartition(*TP0, 0)])
        for offset in range(3):
            assert self.partitions.fetched(TP0, offset, 0.0, buffered=0) is Intake.TAKE
        self.accounting = Accounting(Metrics())
        self.failures = Failures(sink, self.partitions, self.accounting, clock=self.clock)

    def fail(self, offset: int) -> None:
        record = Record(topic="t", partition=0, offset=offset, key=None, value=b"v")
        self.failures.fail(record, FAILURE, event_type="unknown", event_id=f"e{offset}")

    def watermark(self) -> int | None:
        return self.partitions.watermarks()[TP0]


def test_an_offset_is_done_only_once_its_dead_letter_is_acknowledged() -> None:
    """Sent is not done: the watermark moves when the sink reports the acknowledgement."""
    sink = FakeSink()
    harness = Harness(sink)
    harness.fail(0)
    assert (harness.watermark(), harness.failures.buffered) == (0, 1)

    sink.poll()

    assert (harness.watermark(), harness.failures.buffered) == (1, 0)
    assert harness.accounting.tally.dead_lettered == 1


def test_a_refused_dead_letter_is_resent_when_due_and_counts_as_buffered_meanwhile() -> None:
    """A delivery error schedules a resend RESEND_SECONDS later; until then it is held."""
    sink = FakeSink()
    sink.results.append(KafkaError(KafkaError._MSG_TIMED_OUT))
    harness = Harness(sink)
    harness.fail(0)
    sink.poll()
    assert (harness.watermark(), harness.failures.buffered) == (0, 1)

    harness.clock.advance(RESEND_SECONDS - 0.5)
    harness.failures.resend_due()
    assert sink.offsets_sent() == [0]
    harness.clock.advance(0.5)
    harness.failures.resend_due()
    assert sink.offsets_sent() == [0, 0]

    sink.poll()
    assert harness.watermark() == 1
    assert harness.failures.idle()


def test_nothing_is_resent_for_a_partition_released_meanwhile() -> None:
    """The new owner consumes the record again: the old generation's resend is dropped."""
    sink = FakeSink()
    sink.results.append(KafkaError(KafkaError._MSG_TIMED_OUT))
    harness = Harness(sink)
    harness.fail(0)
    sink.poll()
    harness.partitions.release({TP0})
    harness.partitions.assign([TopicPartition(*TP0, 0)])

    harness.clock.advance(RESEND_SECONDS)
    harness.failures.resend_due()

    assert sink.offsets_sent() == [0]
    assert harness.failures.idle()


def test_an_acknowledgement_of_an_old_generation_does_not_finish_the_new_one() -> None:
    """Acknowledged after a release and re-assign: nothing of the new generation is done."""
    sink = FakeSink()
    harness = Harness(sink)
    harness.fail(0)
    harness.partitions.release({TP0})
    harness.partitions.assign([TopicPartition(*TP0, 0)])
    assert harness.partitions.fetched(TP0, 0, 0.0, buffered=0) is Intake.TAKE
    assert not harness.failures.waiting_for([TP0])  # the pending one is the old generation's

    sink.poll()

    assert harness.watermark() == 0
    assert harness.accounting.tally.dead_lettered == 0


def test_held_failures_stay_uncommitted_and_hold_nothing_in_memory() -> None:
    """Redrive: a held failure is counted, never acknowledged, and does not fill the buffer."""
    harness = Harness(HeldFailures())
    harness.fail(0)

    assert harness.watermark() == 0
    assert harness.failures.idle()
    assert harness.accounting.tally.held == 1
    assert harness.accounting.tally.dead_lettered == 0


def test_logged_failures_are_acknowledged_at_once() -> None:
    """Dry run: nothing is written, the offset is done at once (the log line is the record)."""
    harness = Harness(LoggedFailures())
    harness.fail(0)

    assert harness.watermark() == 1
    assert harness.accounting.tally.dead_lettered == 1
    assert LoggedFailures().flush(1.0) == 0
