"""Key-ordered lanes: one running item per key, FIFO behind it, keys independent."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumer.engine.lanes import Lanes


def test_empty_lanes_hold_nothing() -> None:
    """New lanes hold no items, run none and have no heads."""
    lanes: Lanes[str] = Lanes()
    assert len(lanes) == 0
    assert lanes.running == 0
    assert list(lanes.heads()) == []


@pytest.mark.parametrize(
    ("pushes", "starts", "running", "held"),
    [
        pytest.param([("a", 1)], [True], 1, 1, id="first item of a key starts"),
        pytest.param([("a", 1), ("a", 2)], [True, False], 1, 2, id="second of a key waits"),
        pytest.param([("a", 1), ("b", 2)], [True, True], 2, 2, id="other keys start at once"),
        pytest.param(
            [("a", 1), ("b", 2), ("a", 3), ("b", 4), ("c", 5)],
            [True, True, False, False, True],
            3,
            5,
            id="interleaved keys: one head each",
        ),
    ],
)
def test_push_starts_only_the_head_of_each_key(
    pushes: list[tuple[str, int]], starts: list[bool], running: int, held: int
) -> None:
    """push() is True only for an item that becomes the head of its key's lane."""
    lanes: Lanes[int] = Lanes()
    assert [lanes.push(key, item) for key, item in pushes] == starts
    assert lanes.running == running
    assert len(lanes) == held


def test_finish_returns_the_next_item_in_push_order() -> None:
    """finish(key) hands back that key's waiting items one by one, in the order pushed."""
    lanes: Lanes[int] = Lanes()
    for item in (1, 2, 3):
        lanes.push("a", item)
    lanes.push("b", 9)
    assert lanes.finish("a") == 2
    assert sorted(lanes.heads()) == [2, 9]
    assert lanes.finish("a") == 3
    assert lanes.finish("a") is None
    assert list(lanes.heads()) == [9]
    assert lanes.running == 1
    assert len(lanes) == 1


def test_finished_key_starts_fresh() -> None:
    """Once a key's lane is empty, the next item pushed for it starts at once."""
    lanes: Lanes[int] = Lanes()
    lanes.push("a", 1)
    assert lanes.finish("a") is None
    assert lanes.push("a", 2) is True
    assert list(lanes.heads()) == [2]


def test_finish_of_an_unknown_key_raises() -> None:
    """finish() of a key with no running item raises KeyError instead of corrupting counts."""
    lanes: Lanes[int] = Lanes()
    with pytest.raises(KeyError):
        lanes.finish("nobody")
    assert len(lanes) == 0


def test_drop_waiting_never_drops_a_running_item() -> None:
    """drop_waiting() removes matching waiting items only; heads stay and keep running."""
    lanes: Lanes[int] = Lanes()
    for key, item in [("a", 1), ("a", 2), ("a", 3), ("a", 4), ("b", 5), ("b", 6)]:
        lanes.push(key, item)
    dropped = lanes.drop_waiting(lambda item: item % 2 == 1 or item == 6)
    assert sorted(dropped) == [3, 6]
    assert sorted(lanes.heads()) == [1, 5]
    assert len(lanes) == 4
    assert lanes.running == 2
    assert lanes.finish("a") == 2
    assert lanes.finish("a") == 4
    assert lanes.finish("b") is None


def test_drop_waiting_everything_leaves_only_heads() -> None:
    """drop_waiting(always) empties every lane down to its running head (shutdown)."""
    lanes: Lanes[int] = Lanes()
    for key, item in [("a", 1), ("a", 2), ("b", 3), ("b", 4), ("b", 5)]:
        lanes.push(key, item)
    assert sorted(lanes.drop_waiting(lambda _item: True)) == [2, 4, 5]
    assert len(lanes) == lanes.running == 2
    assert lanes.finish("a") is None
    assert lanes.finish("b") is None
    assert len(lanes) == 0


def test_drop_waiting_with_no_match_changes_nothing() -> None:
    """drop_waiting() that matches nothing returns [] and keeps every item in order."""
    lanes: Lanes[int] = Lanes()
    for item in (1, 2, 3):
        lanes.push("a", item)
    assert lanes.drop_waiting(lambda _item: False) == []
    assert len(lanes) == 3
    assert [lanes.finish("a"), lanes.finish("a"), lanes.finish("a")] == [2, 3, None]


# ---------------------------------------------------------------------------- property

_KEYS = ("k1", "k2", "k3", "k4")
_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.sampled_from(_KEYS)),
        st.tuples(st.just("finish"), st.sampled_from(_KEYS)),
        st.tuples(st.just("drop"), st.integers(min_value=2, max_value=5)),
    ),
    max_size=120,
)


def multiple_of(modulus: int) -> Callable[[tuple[str, int]], bool]:
    """A drop_waiting predicate: items whose serial number is a multiple of ``modulus``."""
    return lambda item: item[1] % modulus == 0


@given(_STEPS)
def test_property_one_running_item_per_key_in_push_order(steps: list[tuple[str, object]]) -> None:
    """Random push/finish/drop never runs two items of a key and starts each key's in push order."""
    lanes: Lanes[tuple[str, int]] = Lanes()
    running: dict[str, tuple[str, int]] = {}  # key -> the item the simulated engine runs
    started: dict[str, list[int]] = {key: [] for key in _KEYS}
    pushed: dict[str, list[int]] = {key: [] for key in _KEYS}
    dropped: set[tuple[str, int]] = set()
    finished = 0
    serial = 0

    def start(item: tuple[str, int]) -> None:
        key = item[0]
        assert key not in running, f"two running items of {key}"
        running[key] = item
        started[key].append(item[1])

    for op, arg in steps:
        if op == "push":
            assert isinstance(arg, str)
            serial += 1
            item = (arg, serial)
            pushed[arg].append(serial)
            if lanes.push(arg, item):
                start(item)
        elif op == "finish":
            assert isinstance(arg, str)
            if arg not in running:
                continue
            del running[arg]
            finished += 1
            following = lanes.finish(arg)
            if following is not None:
                start(following)
        else:
            assert isinstance(arg, int)
            gone = lanes.drop_waiting(multiple_of(arg))
            assert not set(gone) & set(running.values()), "a running item was dropped"
            dropped |= set(gone)
        assert set(lanes.heads()) == set(running.values())
        assert lanes.running == len(running)
        assert len(lanes) == serial - finished - len(dropped)

    while running:  # drain: every item not dropped runs, each key's in push order
        key = next(iter(running))
        del running[key]
        following = lanes.finish(key)
        if following is not None:
            start(following)
    assert len(lanes) == 0
    for key in _KEYS:
        assert started[key] == [n for n in pushed[key] if (key, n) not in dropped]
