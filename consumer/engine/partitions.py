"""Partition state: what the loop knows of each assigned partition, kept as plain bookkeeping.

Per partition: its *generation* (a number given at every assignment, so an outcome or an
acknowledgement of an earlier assignment is told apart from the current one), its watermark
(``offsets.PartitionOffsets``), whether it is at the end of its log, a *registry block* (the
partition was seeked back to a record whose writer schema could not be fetched, and is held
until a backoff passes; the backoff doubles up to ``REGISTRY_BACKOFF_MAX`` and starts afresh
once a record decodes), and, in a bounded run (replay), whether it reached its end. Across
partitions: which are paused, and which offsets to commit. Every partition pauses while the
engine holds ``max_buffered`` events, and resumes once it holds half of that (so pauses do
not flap at the bound).

It never calls Kafka: it answers with ``TopicPartition`` lists (to pause, resume, commit)
or an ``Intake`` verdict, and the loop hands them to the consumer. Time comes in as
arguments. Owned by the poll thread; not thread-safe.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from confluent_kafka import TopicPartition

from consumer.engine.offsets import PartitionOffsets
from consumer.kafka_types import TP

REGISTRY_BACKOFF_MAX = 30.0


class Bounds(Protocol):
    """A fixed range of each partition to consume (a replay), and where its progress goes."""

    def assignment(self) -> list[TopicPartition]:
        """The partitions to consume, each at the offset to start from."""

    def end(self, tp: TP) -> int:
        """The first offset of ``tp`` not to consume (0 for a partition outside the range)."""

    def commit_metadata(self, tp: TP) -> str | None:
        """Metadata committed with ``tp``'s offsets (where a replay keeps its range)."""

    def committed(self, tp: TP, offset: int) -> None:
        """Everything of ``tp`` below ``offset`` is done (and committed, unless dry-run)."""


class Intake(Enum):
    """What the loop does with a record it fetched."""

    TAKE = "take"  # accepted and tracked: decode it
    DROP = "drop"  # not to be taken now: another owner, a seek back, or past the range's end
    GIVE_BACK = "give_back"  # no room while paused: seek back to it (held until resumed)


@dataclass(slots=True)
class PartitionState:
    """What the loop knows of one assigned partition."""

    generation: int
    offsets: PartitionOffsets = field(default_factory=PartitionOffsets)
    eof: bool = False
    blocked_at: int | None = None  # seeked back here; records from here on are dropped
    blocked_until: float = 0.0
    block_backoff: float = 0.0  # the registry's last wait; 0 once a record decodes
    reached_end: bool = False  # bounded: consumed up to its end, nothing more is taken
    caught_up_at: int | None = None  # the end offset of its last EOF: everything below is done


class Partitions:
    """The assigned partitions' state; ``bounds`` (a replay) fixes where each one ends."""

    def __init__(self, *, max_buffered: int, bounds: Bounds | None = None) -> None:
        self._owned: dict[TP, PartitionState] = {}
        self._generation = 0
        self._paused: set[TP] = set()
        self._max_buffered = max_buffered
        self._bounds = bounds
        self.pressure = False  # too much buffered: every partition pauses

    def __len__(self) -> int:
        """Partitions assigned now."""
        return len(self._owned)

    @property
    def paused(self) -> int:
        """Partitions paused now."""
        return len(self._paused)

    # ------------------------------------------------------------------ assignment

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Own ``partitions``, each in a new generation.

        Bounded: a partition whose start offset is at or past its end has nothing to take.
        """
        for assigned in partitions:
            tp = (assigned.topic, assigned.partition)
            self._generation += 1
            state = PartitionState(generation=self._generation)
            if self._bounds is not None and assigned.offset >= self._bounds.end(tp):
                state.reached_end = True
            self._owned[tp] = state

    def owned(self, partitions: Iterable[TopicPartition]) -> set[TP]:
        """Those of ``partitions`` assigned now."""
        return {(tp.topic, tp.partition) for tp in partitions} & self._owned.keys()

    def release(self, tps: Iterable[TP]) -> list[TopicPartition]:
        """Forget ``tps``; return those of them paused, which the loop must resume.

        librdkafka keeps a partition's pause through a revoke and a re-assign: a partition
        released while paused would come back paused for good.
        """
        paused = []
        for tp in sorted(tps):
            self._owned.pop(tp, None)
            if tp in self._paused:
                self._paused.discard(tp)
                paused.append(TopicPartition(*tp))
        return paused

    def generation(self, tp: TP) -> int | None:
        """The current generation of ``tp``; None when it is not assigned."""
        state = self._owned.get(tp)
        return None if state is None else state.generation

    def is_current(self, tp: TP, generation: int) -> bool:
        """True when ``tp`` is still assigned in ``generation`` (not released since)."""
        return self.generation(tp) == generation

    # ------------------------------------------------------------------ intake

    def fetched(self, tp: TP, offset: int, now: float, *, buffered: int) -> Intake:
        """Decide about a fetched record; a taken one is tracked from ``now``.

        With ``buffered`` events held, the engine may be full: a record of a partition
        paused then was fetched before the pause took effect, and is given back.
        """
        state = self._owned.get(tp)
        if state is None:
            return Intake.DROP  # revoked between fetch and delivery; the new owner takes it
        if state.blocked_at is not None and offset >= state.blocked_at:
            return Intake.DROP  # fetched before the seek back; it will be consumed again
        if self._bounds is not None and offset >= self._bounds.end(tp):
            state.reached_end = True  # past the range: never taken (and the partition pauses)
            return Intake.DROP
        if tp in self._paused and buffered >= self._max_buffered:
            self._hold(state, offset, now, seconds=0.0)
            return Intake.GIVE_BACK
        state.eof = False
        state.offsets.accept(offset, at=now)
        return Intake.TAKE

    def decoded(self, tp: TP) -> None:
        """A record of ``tp`` decoded: the registry answers, its next blip starts afresh."""
        self._owned[tp].block_backoff = 0.0

    def registry_unavailable(self, tp: TP, offset: int, now: float) -> float:
        """Forget ``offset`` and after, hold ``tp`` for a doubled backoff; return its seconds.

        The loop seeks ``tp`` back to ``offset``: the record is consumed again later.
        """
        state = self._owned[tp]
        state.offsets.rewind(offset)
        state.block_backoff = min(max(1.0, state.block_backoff * 2), REGISTRY_BACKOFF_MAX)
        self._hold(state, offset, now, seconds=state.block_backoff)
        return state.block_backoff

    @staticmethod
    def _hold(state: PartitionState, offset: int, now: float, *, seconds: float) -> None:
        state.blocked_at = offset
        state.blocked_until = now + seconds

    def at_eof(self, tp: TP, offset: int) -> None:
        """``tp`` is caught up at ``offset``; bounded, at or past its end it reached it."""
        state = self._owned.get(tp)
        if state is None:
            return
        state.eof = True
        state.caught_up_at = offset
        if self._bounds is not None and offset >= self._bounds.end(tp):
            state.reached_end = True

    def done(self, tp: TP, generation: int, offset: int) -> bool:
        """Mark ``offset`` done if ``tp`` is still in ``generation``; True if it counted."""
        state = self._owned.get(tp)
        if state is None or state.generation != generation:
            return False
        state.offsets.done(offset)
        return True

    # ------------------------------------------------------------------ pauses

    def reconcile(
        self, now: float, *, buffered: int, hold: bool
    ) -> tuple[list[TopicPartition], list[TopicPartition]]:
        """The partitions to pause and to resume now; blocks whose time passed are lifted.

        Paused: every partition under pressure (``buffered`` events held) or while ``hold``
        (a circuit holds work back, or the engine is stopping); otherwise those blocked or
        at the end of their range.
        """
        if buffered >= self._max_buffered:
            self.pressure = True
        elif buffered <= self._max_buffered // 2:
            self.pressure = False
        hold_all = hold or self.pressure
        for state in self._owned.values():
            if state.blocked_at is not None and now >= state.blocked_until:
                state.blocked_at = None
        wanted = {
            tp
            for tp, state in self._owned.items()
            if hold_all or state.blocked_at is not None or state.reached_end
        }
        pause = sorted(wanted - self._paused)
        resume = sorted((self._paused - wanted) & self._owned.keys())
        self._paused = wanted
        return [TopicPartition(*tp) for tp in pause], [TopicPartition(*tp) for tp in resume]

    # ------------------------------------------------------------------ progress

    def caught_up(self) -> bool:
        """Some partition is assigned, and every one is at its end of log and not held."""
        return bool(self._owned) and all(
            state.eof and state.blocked_at is None for state in self._owned.values()
        )

    def range_done(self) -> bool:
        """Bounded: every partition consumed to its end, and done up to it."""
        return bool(self._owned) and all(
            state.reached_end and state.offsets.in_progress == 0 for state in self._owned.values()
        )

    def watermarks(self) -> dict[TP, int | None]:
        """Each partition's watermark (None: nothing consumed yet)."""
        return {tp: state.offsets.committable() for tp, state in self._owned.items()}

    def lag_bases(self) -> dict[TP, int | None]:
        """Each partition's watermark, else the end it was caught up at (None: not known).

        A partition taken over with nothing new to read has no watermark, but its end of
        file says everything below it is done: the lag monitor measures from there rather
        than from the log start.
        """
        bases: dict[TP, int | None] = {}
        for tp, state in self._owned.items():
            mark = state.offsets.committable()
            bases[tp] = mark if mark is not None else state.caught_up_at
        return bases

    def pending_ages(self, now: float) -> dict[TP, float]:
        """Each partition's age of its oldest event not done (0 when none)."""
        ages = {}
        for tp, state in self._owned.items():
            since = state.offsets.oldest_pending_since()
            ages[tp] = 0.0 if since is None else max(0.0, now - since)
        return ages

    def oldest_pending(self, now: float) -> dict[TP, tuple[int, float]]:
        """Each partition's oldest event not done, as (offset, age); those with one only."""
        oldest = {}
        for tp, state in self._owned.items():
            since = state.offsets.oldest_pending_since()
            offset = state.offsets.committable()
            if since is not None and offset is not None:
                oldest[tp] = (offset, max(0.0, now - since))
        return oldest

    # ------------------------------------------------------------------ commits

    def commits(
        self, *, moved_only: bool, only: Iterable[TP] | None = None
    ) -> list[TopicPartition]:
        """The offsets to commit, with the bounds' metadata; each is assumed to land.

        ``moved_only`` (periodic commits): only watermarks that moved since the last commit;
        otherwise (revoke, shutdown) every one. ``refused`` undoes the assumption.
        """
        chosen = self._owned.keys() if only is None else set(only) & self._owned.keys()
        offsets = []
        for tp in sorted(chosen):
            watermarks = self._owned[tp].offsets
            offset = watermarks.to_commit() if moved_only else watermarks.committable()
            if offset is None:
                continue
            metadata = self._bounds.commit_metadata(tp) if self._bounds is not None else None
            offsets.append(TopicPartition(tp[0], tp[1], offset, metadata or ""))
            watermarks.committed = offset
        return offsets

    def refused(self, offsets: Iterable[TopicPartition]) -> None:
        """The broker refused these commits: commit them again next time."""
        for refused in offsets:
            state = self._owned.get((refused.topic, refused.partition))
            if state is not None and state.offsets.committed == refused.offset:
                state.offsets.committed = None

    def landed(self, offsets: Iterable[TopicPartition]) -> None:
        """These commits landed: a bounded run records its progress."""
        if self._bounds is not None:
            for tp in offsets:
                self._bounds.committed((tp.topic, tp.partition), tp.offset)
