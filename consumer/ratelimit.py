"""A token bucket: at most ``rate`` events started per second (``CONSUMER_MAX_RATE``).

A backfill must not overload Credentials: the engine asks the bucket before it starts an
event, and an event without a token waits (at the head of its lane) for a later turn.
Tokens accrue continuously; the bucket holds one token plus a quarter of a second's
worth (the one keeps the fraction a poll turn leaves over, so slow rates are not rounded
down), so a pause never turns into a burst; it starts with one token, so the first second
is not one either. The clock is injected: tests drive it by hand.
"""

from __future__ import annotations

import time
from collections.abc import Callable

BURST_SECONDS = 0.25


class TokenBucket:
    """``try_acquire`` succeeds at most ``rate`` times per second on average.

    Not thread-safe: the engine's poll thread is its only user.
    """

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self._capacity = 1.0 + rate * BURST_SECONDS
        self._tokens = 1.0
        self._clock = clock
        self._last = clock()

    def try_acquire(self) -> bool:
        """Take a token if one is available; never blocks."""
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True
