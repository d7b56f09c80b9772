"""Per-partition watermarks: what may be committed after events finish out of order."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumer.engine.offsets import PartitionOffsets


def accepted(*offsets: int) -> PartitionOffsets:
    """A watermark that has accepted ``offsets`` in order, none done yet."""
    state = PartitionOffsets()
    for offset in offsets:
        state.accept(offset)
    return state


# ---------------------------------------------------------------------------- examples


def test_nothing_accepted_has_nothing_to_commit() -> None:
    """A fresh partition has no committable offset and nothing to commit."""
    state = PartitionOffsets()
    assert state.committable() is None
    assert state.to_commit() is None
    assert state.in_progress == 0


@pytest.mark.parametrize(
    ("offsets", "done", "committable", "in_progress"),
    [
        pytest.param((10, 11, 12), (), 10, 3, id="nothing done: the first accepted offset"),
        pytest.param((10, 11, 12), (10,), 11, 2, id="head done: advances by one"),
        pytest.param((10, 11, 12), (11, 12), 10, 3, id="head not done: holds the watermark"),
        pytest.param((10, 11, 12), (12, 10), 11, 2, id="out of order: stops at the gap"),
        pytest.param((10, 11, 12), (12, 11, 10), 13, 0, id="all done: one past the last"),
        pytest.param((10, 14, 20), (10,), 14, 2, id="offset gaps: next accepted offset"),
        pytest.param((10, 14, 20), (10, 14, 20), 21, 0, id="offset gaps, all done: last + 1"),
        pytest.param((0,), (0,), 1, 0, id="offset zero done: one"),
    ],
)
def test_committable_is_first_offset_not_done(
    offsets: tuple[int, ...], done: tuple[int, ...], committable: int, in_progress: int
) -> None:
    """The committable offset is the first accepted offset not done, or last + 1 when all are."""
    state = accepted(*offsets)
    for offset in done:
        state.done(offset)
    assert state.committable() == committable
    assert state.in_progress == in_progress


@pytest.mark.parametrize("offset", [5, 4, 0], ids=["equal", "lower", "much lower"])
def test_accept_rejects_offsets_not_increasing(offset: int) -> None:
    """accept() raises ValueError for an offset not above the last pending one."""
    state = accepted(3, 5)
    with pytest.raises(ValueError, match=f"offset {offset} arrived after 5"):
        state.accept(offset)
    assert state.committable() == 3


def test_accept_rejects_offset_below_watermark_when_nothing_pending() -> None:
    """accept() rejects an offset below the watermark even when every accepted offset is done."""
    state = accepted(10)
    state.done(10)
    with pytest.raises(ValueError, match="arrived after"):
        state.accept(5)


def test_done_twice_is_harmless() -> None:
    """Marking the same pending offset done twice does not skip a later unfinished offset."""
    state = accepted(1, 2, 3)
    state.done(2)
    state.done(2)
    state.done(1)
    assert state.committable() == 3


@pytest.mark.parametrize(
    ("offsets", "done", "rewind_to", "committable", "in_progress"),
    [
        pytest.param((10, 11, 12), (), 11, 10, 1, id="rewind mid-way: head unchanged"),
        pytest.param((10, 11, 12), (10,), 11, 11, 0, id="rewind to the head: it is next"),
        pytest.param((10, 11, 12), (11, 12), 11, 10, 1, id="rewind forgets done offsets"),
        pytest.param((10, 11, 12), (10, 11, 12), 13, 13, 0, id="rewind to the end: no change"),
        pytest.param((10, 11, 12), (10, 11, 12), 11, 11, 0, id="rewind below the watermark"),
        pytest.param((10, 11, 12), (), 50, 10, 3, id="rewind past the end: no change"),
    ],
)
def test_rewind_forgets_offset_and_after(
    offsets: tuple[int, ...],
    done: tuple[int, ...],
    rewind_to: int,
    committable: int,
    in_progress: int,
) -> None:
    """rewind(n) forgets n and every later offset; the partition will consume n next."""
    state = accepted(*offsets)
    for offset in done:
        state.done(offset)
    state.rewind(rewind_to)
    assert state.committable() == committable
    assert state.in_progress == in_progress


def test_rewound_offsets_are_accepted_again_and_must_be_done_again() -> None:
    """After a rewind the same offsets arrive again and hold the watermark until done again."""
    state = accepted(10, 11, 12)
    state.done(11)
    state.done(12)
    state.rewind(11)
    state.accept(11)
    state.accept(12)
    state.done(10)
    assert state.committable() == 11
    state.done(12)
    assert state.committable() == 11
    state.done(11)
    assert state.committable() == 13


def test_done_of_a_forgotten_offset_does_not_mark_its_new_copy_done() -> None:
    """A late done() for an offset rewind() forgot does not count for its re-consumed copy."""
    state = accepted(10, 11)
    state.rewind(10)  # 10 and 11 forgotten; 11 was still running in a worker
    state.done(11)  # ...and finishes now
    state.accept(10)
    state.accept(11)
    state.done(10)
    assert state.committable() == 11


def test_to_commit_reports_only_movement_since_last_commit() -> None:
    """to_commit() returns the watermark only when it differs from the last committed one."""
    state = accepted(1, 2)
    assert state.to_commit() == 1
    state.committed = 1
    assert state.to_commit() is None
    state.done(2)
    assert state.to_commit() is None
    state.done(1)
    assert state.to_commit() == 3
    state.committed = 3
    assert state.to_commit() is None
    state.accept(7)
    assert state.to_commit() == 7


def test_to_commit_does_not_record_the_commit_itself() -> None:
    """to_commit() is a query: calling it twice returns the same offset until committed is set."""
    state = accepted(4)
    assert state.to_commit() == 4
    assert state.to_commit() == 4
    assert state.committed is None


# ---------------------------------------------------------------------------- properties


@st.composite
def offsets_and_completion_order(draw: st.DrawFn) -> tuple[list[int], list[int]]:
    """Increasing offsets (with gaps) and a permutation in which they complete."""
    gaps = draw(st.lists(st.integers(min_value=1, max_value=3), min_size=1, max_size=40))
    start = draw(st.integers(min_value=0, max_value=1000))
    offsets = [start + sum(gaps[:i]) for i in range(len(gaps))]
    return offsets, draw(st.permutations(offsets))


@given(offsets_and_completion_order())
def test_property_committable_is_smallest_not_done_and_never_moves_back(
    case: tuple[list[int], list[int]],
) -> None:
    """For any completion order, committable() is the smallest not-done offset and only rises."""
    offsets, order = case
    state = accepted(*offsets)
    finished: set[int] = set()
    previous = state.committable()
    assert previous == offsets[0]
    for offset in order:
        state.done(offset)
        finished.add(offset)
        not_done = [o for o in offsets if o not in finished]
        expected = not_done[0] if not_done else offsets[-1] + 1
        current = state.committable()
        assert current == expected
        assert previous is not None
        assert current is not None
        assert current >= previous
        assert state.in_progress == len([o for o in offsets if o >= expected])
        previous = current
    assert state.in_progress == 0


_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("accept"), st.integers(min_value=1, max_value=3)),
        st.tuples(st.just("done"), st.integers(min_value=0, max_value=1000)),
        st.tuples(st.just("rewind"), st.integers(min_value=0, max_value=1000)),
    ),
    max_size=80,
)


@given(_OPS)
def test_property_watermark_matches_model_and_only_rewind_moves_it_back(
    ops: list[tuple[str, int]],
) -> None:
    """Under any accept/done/rewind sequence the watermark matches a model; only rewind lowers."""
    state = PartitionOffsets()
    pending: list[int] = []  # model: accepted offsets not yet forgotten, in order
    finished: set[int] = set()
    next_offset: int | None = None  # model: one past the last accepted (or the rewind point)
    position = 0  # the consumer's position: where the next accepted offset may start

    def model() -> int | None:
        for offset in pending:
            if offset not in finished:
                return offset
        return next_offset

    for op, arg in ops:
        before = state.committable()
        if op == "accept":
            offset = position + arg - 1  # gaps of 0..2
            state.accept(offset)
            pending.append(offset)
            next_offset = offset + 1
            position = offset + 1
        elif op == "done":
            open_offsets = [o for o in pending if o not in finished]
            if not open_offsets:
                continue
            offset = open_offsets[arg % len(open_offsets)]
            state.done(offset)
            finished.add(offset)
        else:
            if not pending:
                continue
            to = pending[arg % len(pending)]
            state.rewind(to)
            pending = [o for o in pending if o < to]
            finished &= set(pending)
            if next_offset is not None and next_offset > to:
                next_offset = to
            position = to
        after = state.committable()
        assert after == model()
        if op != "rewind" and before is not None:
            assert after is not None
            assert after >= before


# ---------------------------------------------------------------------------- pending age


def test_the_oldest_pending_time_is_that_of_the_first_offset_not_done() -> None:
    """A stuck head keeps its acceptance time however many later offsets finish."""
    state = PartitionOffsets()
    assert state.oldest_pending_since() is None
    for offset, at in ((10, 100.0), (11, 105.0), (12, 107.0)):
        state.accept(offset, at=at)
    state.done(11)
    state.done(12)
    assert state.oldest_pending_since() == 100.0
    state.done(10)
    assert state.oldest_pending_since() is None


def test_a_rewind_forgets_the_times_of_the_forgotten_offsets() -> None:
    """After a seek back, the oldest pending time is that of what is still accepted."""
    state = PartitionOffsets()
    state.accept(10, at=100.0)
    state.accept(11, at=101.0)
    state.done(10)
    state.rewind(11)
    assert state.oldest_pending_since() is None
    state.accept(11, at=120.0)
    assert state.oldest_pending_since() == 120.0
