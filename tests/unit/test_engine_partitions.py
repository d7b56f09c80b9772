"""Partition state on its own: plain values in, ``TopicPartition`` lists and verdicts out.

No consumer and no threads: generations, intake verdicts, registry blocks, pauses and the
choice of what to commit, each checked with values only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from confluent_kafka import TopicPartition

from consumer.engine.partitions import REGISTRY_BACKOFF_MAX, Intake, Partitions
from consumer.kafka_types import TP

P0: TP = ("t", 0)
P1: TP = ("t", 1)
NOW = 100.0


def owning(*tps: TP, max_buffered: int = 10, bounds: Bounds | None = None) -> Partitions:
    """Partition state owning ``tps`` (each at offset 0)."""
    partitions = Partitions(max_buffered=max_buffered, bounds=bounds)
    partitions.assign([TopicPartition(topic, partition, 0) for topic, partition in tps])
    return partitions


def take(partitions: Partitions, tp: TP, *offsets: int) -> None:
    for offset in offsets:
        assert partitions.fetched(tp, offset, NOW, buffered=0) is Intake.TAKE


def positions(offsets: list[TopicPartition]) -> list[tuple[str, int, int]]:
    return [(tp.topic, tp.partition, tp.offset) for tp in offsets]


@dataclass
class Bounds:
    """A replay's range: each partition ends at ``ends``; committed offsets are recorded."""

    ends: dict[TP, int]
    progress: list[tuple[TP, int]] = field(default_factory=list)

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(topic, partition, 0) for topic, partition in self.ends]

    def end(self, tp: TP) -> int:
        return self.ends.get(tp, 0)

    def commit_metadata(self, tp: TP) -> str | None:
        return f"range {tp[1]}"

    def committed(self, tp: TP, offset: int) -> None:
        self.progress.append((tp, offset))


# ---------------------------------------------------------------------------- generations


def test_each_assignment_is_a_new_generation_and_old_outcomes_do_not_count() -> None:
    """Released and assigned again: a done of the old generation leaves the new one alone."""
    partitions = owning(P0)
    old = partitions.generation(P0)
    assert old is not None
    take(partitions, P0, 0)

    partitions.release({P0})
    assert partitions.generation(P0) is None
    partitions.assign([TopicPartition(*P0, 0)])
    take(partitions, P0, 0)

    assert not partitions.is_current(P0, old)
    assert partitions.done(P0, old, 0) is False
    assert positions(partitions.commits(moved_only=False)) == [("t", 0, 0)]
    new = partitions.generation(P0)
    assert new is not None
    assert partitions.done(P0, new, 0) is True
    assert positions(partitions.commits(moved_only=False)) == [("t", 0, 1)]


def test_a_record_of_a_partition_not_owned_is_dropped() -> None:
    """Revoked between fetch and delivery: the new owner consumes it."""
    assert owning(P0).fetched(P1, 0, NOW, buffered=0) is Intake.DROP


# ---------------------------------------------------------------------------- intake and blocks


def test_the_registry_block_drops_what_follows_and_its_backoff_doubles_to_a_cap() -> None:
    """Seeked back to the record: later fetches are dropped; each blip waits twice as long."""
    partitions = owning(P0)
    take(partitions, P0, 0, 1, 2)

    waits = [partitions.registry_unavailable(P0, 1, NOW) for _ in range(7)]

    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, REGISTRY_BACKOFF_MAX, REGISTRY_BACKOFF_MAX]
    assert partitions.fetched(P0, 1, NOW, buffered=0) is Intake.DROP
    assert partitions.fetched(P0, 2, NOW, buffered=0) is Intake.DROP
    assert partitions.watermarks() == {P0: 0}  # offsets 1 and 2 forgotten: consumed again


def test_a_decoded_record_lifts_the_block_after_its_time_and_resets_the_backoff() -> None:
    """The block ends once its time passed; after a decode the next blip waits 1 s again."""
    partitions = owning(P0)
    take(partitions, P0, 0)
    partitions.registry_unavailable(P0, 0, NOW)
    partitions.registry_unavailable(P0, 0, NOW)

    pause, _ = partitions.reconcile(NOW + 1.0, buffered=0, hold=False)
    assert positions(pause) == [("t", 0, -1001)]  # blocked for 2 s: paused
    _, resume = partitions.reconcile(NOW + 2.0, buffered=0, hold=False)
    assert positions(resume) == [("t", 0, -1001)]
    take(partitions, P0, 0)
    partitions.decoded(P0)

    assert partitions.registry_unavailable(P0, 1, NOW) == 1.0


def test_a_record_fetched_while_paused_and_full_is_given_back() -> None:
    """A fetch that beat the pause, with no room: given back, and held until resumed."""
    partitions = owning(P0, max_buffered=2)
    partitions.reconcile(NOW, buffered=2, hold=False)

    assert partitions.fetched(P0, 0, NOW, buffered=2) is Intake.GIVE_BACK
    assert partitions.fetched(P0, 1, NOW, buffered=1) is Intake.DROP  # behind the seek
    assert partitions.watermarks() == {P0: None}


# ---------------------------------------------------------------------------- pauses


def test_every_partition_pauses_at_the_bound_and_resumes_at_half_of_it() -> None:
    """Pressure has hysteresis: paused at max_buffered, resumed only at half of it."""
    partitions = owning(P0, P1, max_buffered=4)

    pause, resume = partitions.reconcile(NOW, buffered=4, hold=False)
    assert (len(pause), resume) == (2, [])
    assert partitions.reconcile(NOW, buffered=3, hold=False) == ([], [])
    pause, resume = partitions.reconcile(NOW, buffered=2, hold=False)
    assert (pause, len(resume)) == ([], 2)
    assert partitions.paused == 0


def test_hold_pauses_every_partition_and_a_released_paused_one_is_resumed() -> None:
    """A circuit holding work back (or a stop) pauses all; release hands back the paused."""
    partitions = owning(P0, P1)
    pause, _ = partitions.reconcile(NOW, buffered=0, hold=True)
    assert positions(pause) == [("t", 0, -1001), ("t", 1, -1001)]

    assert positions(partitions.release({P0})) == [("t", 0, -1001)]
    assert partitions.paused == 1
    assert partitions.reconcile(NOW, buffered=0, hold=True) == ([], [])


# ---------------------------------------------------------------------------- commits


def test_a_periodic_commit_sends_only_watermarks_that_moved_and_a_final_one_all() -> None:
    """moved_only skips what was committed; a refused commit is offered again."""
    partitions = owning(P0, P1)
    take(partitions, P0, 0, 1)
    take(partitions, P1, 0)
    generation = partitions.generation(P0)
    assert generation is not None
    partitions.done(P0, generation, 0)

    first = partitions.commits(moved_only=True)
    assert positions(first) == [("t", 0, 1), ("t", 1, 0)]
    assert partitions.commits(moved_only=True) == []
    assert positions(partitions.commits(moved_only=False, only=[P1])) == [("t", 1, 0)]

    partitions.refused(first[:1])
    assert positions(partitions.commits(moved_only=True)) == [("t", 0, 1)]


def test_the_commit_stops_below_a_pending_offset() -> None:
    """Later offsets done first: the commit holds at the first offset not done."""
    partitions = owning(P0)
    take(partitions, P0, 0, 1, 2)
    generation = partitions.generation(P0)
    assert generation is not None
    partitions.done(P0, generation, 1)
    partitions.done(P0, generation, 2)

    assert positions(partitions.commits(moved_only=False)) == [("t", 0, 0)]


def test_a_bounded_run_ends_each_partition_and_records_its_commits() -> None:
    """Replay: nothing past the end is taken, commits carry metadata, landed ones progress."""
    bounds = Bounds({P0: 2, P1: 0})
    partitions = owning(P0, P1, bounds=bounds)
    take(partitions, P0, 0, 1)
    assert partitions.fetched(P0, 2, NOW, buffered=0) is Intake.DROP
    generation = partitions.generation(P0)
    assert generation is not None
    assert not partitions.range_done()

    partitions.done(P0, generation, 0)
    partitions.done(P0, generation, 1)
    offsets = partitions.commits(moved_only=False)
    partitions.landed(offsets)

    assert partitions.range_done()
    assert [tp.metadata for tp in offsets] == ["range 0"]
    assert bounds.progress == [(P0, 2)]


def test_caught_up_needs_every_partition_at_its_end_and_none_held() -> None:
    """stop_when_idle's partition side: all at end of log, no registry block."""
    partitions = owning(P0, P1)
    assert not partitions.caught_up()
    partitions.at_eof(P0, 0)
    partitions.at_eof(P1, 0)
    assert partitions.caught_up()
    take(partitions, P0, 0)
    assert not partitions.caught_up()  # a record arrived after the end


# ---------------------------------------------------------------------------- lag


def test_the_lag_base_is_the_watermark_else_where_the_partition_was_caught_up() -> None:
    """Nothing known: None; caught up at 40 with nothing consumed: 40; a record taken: its mark."""
    partitions = owning(P0, P1)
    assert partitions.lag_bases() == {P0: None, P1: None}
    partitions.at_eof(P0, 40)
    assert partitions.lag_bases() == {P0: 40, P1: None}
    take(partitions, P0, 40)
    take(partitions, P1, 7)
    assert partitions.lag_bases() == {P0: 40, P1: 7}  # pending: the watermark stays below
    assert partitions.done(P0, 1, 40)
    assert partitions.lag_bases()[P0] == 41
