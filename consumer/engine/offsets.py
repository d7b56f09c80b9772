"""Per-partition commit watermarks: the highest offset below which every event is done.

Events of one partition finish out of order (different keys run concurrently); Kafka only
stores one offset per partition. ``PartitionOffsets`` keeps the accepted offsets in arrival
(= offset) order and a set of the done ones; the committable offset is the first offset not
yet done, or one past the last accepted offset when everything is done. Amortised O(1) per
event; memory bounded by the engine's buffer limit. Each pending offset keeps the time it
was accepted, so the age of the oldest pending event (a stuck one) is known at once.
"""

from __future__ import annotations

from collections import deque


class PartitionOffsets:
    """The watermark of one assigned partition (owned by the poll thread; not thread-safe)."""

    def __init__(self) -> None:
        self._pending: deque[int] = deque()
        self._since: deque[float] = deque()  # when each pending offset was accepted
        self._done: set[int] = set()
        self._next: int | None = None  # one past the last offset accepted
        self.committed: int | None = None  # the last offset handed to a commit

    def accept(self, offset: int, at: float = 0.0) -> None:
        """Track a newly consumed offset, accepted at time ``at``; offsets arrive in order."""
        if self._next is not None and offset < self._next:
            raise ValueError(f"offset {offset} arrived after {self._next - 1}")
        self._pending.append(offset)
        self._since.append(at)
        self._next = offset + 1

    def done(self, offset: int) -> None:
        """Mark ``offset`` as done (applied, skipped or dead-lettered); advance the watermark.

        An offset that is not pending (forgotten by ``rewind``, or never accepted) is ignored.
        """
        if not self._pending or not self._pending[0] <= offset <= self._pending[-1]:
            return
        self._done.add(offset)
        while self._pending and self._pending[0] in self._done:
            self._done.discard(self._pending.popleft())
            self._since.popleft()

    def rewind(self, offset: int) -> None:
        """Forget ``offset`` and everything after it: the partition was seeked back to it."""
        while self._pending and self._pending[-1] >= offset:
            self._done.discard(self._pending.pop())
            self._since.pop()
        if self._next is not None and self._next > offset:
            self._next = offset

    @property
    def in_progress(self) -> int:
        """How many accepted offsets are not yet below the watermark."""
        return len(self._pending)

    def oldest_pending_since(self) -> float | None:
        """When the oldest offset not yet done was accepted; None when nothing is pending."""
        return self._since[0] if self._since else None

    def committable(self) -> int | None:
        """The offset to commit (the next one to consume after a restart), or None."""
        if self._pending:
            return self._pending[0]
        return self._next

    def to_commit(self) -> int | None:
        """The committable offset if it moved since the last commit, else None."""
        offset = self.committable()
        if offset is None or offset == self.committed:
            return None
        return offset
