"""Key-ordered lanes: events with the same ordering key run one at a time, in offset order.

A lane is a FIFO per key whose head is the item running now; the rest wait behind it.
Different keys are independent, so the engine may run as many heads at once as it has
workers. Owned by the poll thread (not thread-safe); workers never touch it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Lanes(Generic[T]):
    """FIFO queues per ordering key; the head of each queue is the running item."""

    def __init__(self) -> None:
        self._lanes: dict[str, deque[T]] = {}
        self._size = 0

    def __len__(self) -> int:
        """Items held, running or waiting."""
        return self._size

    @property
    def running(self) -> int:
        """Items at the head of a lane: started, not yet finished."""
        return len(self._lanes)

    def push(self, key: str, item: T) -> bool:
        """Append ``item`` to its lane; True when it is the head and must start now."""
        self._size += 1
        lane = self._lanes.get(key)
        if lane is None:
            self._lanes[key] = deque((item,))
            return True
        lane.append(item)
        return False

    def finish(self, key: str) -> T | None:
        """The head of ``key`` finished: drop it and return the next item to start, if any."""
        lane = self._lanes[key]
        lane.popleft()
        self._size -= 1
        if lane:
            return lane[0]
        del self._lanes[key]
        return None

    def drop_waiting(self, predicate: Callable[[T], bool]) -> list[T]:
        """Remove waiting (not running) items matching ``predicate``; return them."""
        dropped: list[T] = []
        for lane in self._lanes.values():
            head, rest = lane[0], list(lane)[1:]
            keep = [item for item in rest if not predicate(item)]
            if len(keep) != len(rest):
                dropped += [item for item in rest if predicate(item)]
                lane.clear()
                lane.append(head)
                lane.extend(keep)
        self._size -= len(dropped)
        return dropped

    def heads(self) -> Iterator[T]:
        """The running items."""
        return (lane[0] for lane in self._lanes.values())
