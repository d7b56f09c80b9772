"""A clock tests move by hand, injected wherever the code takes ``clock=``."""

from __future__ import annotations


class FakeClock:
    """A monotonic clock that moves only when a test says so (or a fake sleep does)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``."""
        self.now += seconds
