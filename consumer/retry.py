"""Retrying one call: exponential backoff with full jitter, bounded by attempts and time.

The waits come from the ``backoff`` library's generator and jitter; the loop is ours
because it must do three things ``backoff.on_exception`` cannot:

- honour ``Retry-After`` (the wait is at least what the service asked for);
- not spend the budget while the service's circuit is open: a failure seen while the
  breaker is open (or that opened it) is not counted, and the caller waits on the breaker;
- stop retrying at once when the item is cancelled (shutdown, partition revoked), so a
  drain is never held up by a 30-second backoff. A first attempt always goes: the engine
  cancels work it wants finished quickly, not work it wants dropped.

Only ``TransientError`` is retried; anything else passes through untouched. ``sleep`` and
``jitter`` are injected so tests assert the exact sequence of waits.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import backoff

from consumer.circuit import Breakers
from consumer.config import RetrySettings
from consumer.errors import TransientError

T = TypeVar("T")


class Cancelled(Exception):
    """The item was cancelled while waiting to retry; it is not done."""


class RetriesExhausted(Exception):
    """The last transient error, after the budget ran out."""

    def __init__(
        self, error: TransientError, attempts: int, first_failure: float, last_failure: float
    ) -> None:
        super().__init__(str(error))
        self.error = error
        self.attempts = attempts
        self.first_failure = first_failure
        self.last_failure = last_failure


def _interruptible_sleep(cancelled: threading.Event, seconds: float) -> bool:
    return cancelled.wait(seconds)


@dataclass(frozen=True, slots=True)
class Retrier:
    """A retry policy bound to the breakers; one per worker process, shared by threads."""

    settings: RetrySettings
    breakers: Breakers
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], float] = time.time
    sleep: Callable[[threading.Event, float], bool] = _interruptible_sleep
    jitter: Callable[[float], float] = backoff.full_jitter
    on_retry: Callable[[TransientError, float], None] | None = None

    def call(self, fn: Callable[[], T], cancelled: threading.Event) -> T:
        """Call ``fn`` until it returns, raises a non-transient error, or the budget ends.

        Raises ``RetriesExhausted`` (budget spent) or ``Cancelled`` (``cancelled`` was set).
        """
        waits = backoff.expo(
            base=2,
            factor=self.settings.initial_seconds,
            max_value=self.settings.max_backoff_seconds,
        )
        next(waits)  # backoff's generators are primed before the first value
        attempts = 0
        started = self.clock()
        held = 0.0  # time spent waiting on an open circuit: not part of the budget
        first_failure: float | None = None
        while True:
            try:
                return fn()
            except TransientError as error:
                now_wall = self.wall_clock()
                first_failure = first_failure if first_failure is not None else now_wall
                breaker = self.breakers.get(error.service)
                if breaker is not None and not breaker.closed:
                    if cancelled.is_set():
                        raise Cancelled from error
                    waited_from = self.clock()
                    breaker.wait(cancelled)
                    held += self.clock() - waited_from
                    if cancelled.is_set():
                        raise Cancelled from error
                    continue
                if cancelled.is_set():
                    raise Cancelled from error
                attempts += 1
                spent = self.clock() - started - held
                if attempts >= self.settings.max_attempts or spent >= self.settings.max_seconds:
                    raise RetriesExhausted(error, attempts, first_failure, now_wall) from error
                remaining = self.settings.max_seconds - spent
                if error.retry_after is not None and error.retry_after > remaining:
                    # Asked to wait past the budget: retrying sooner would only be refused.
                    raise RetriesExhausted(error, attempts, first_failure, now_wall) from error
                delay = self.jitter(next(waits))
                if error.retry_after is not None:
                    delay = max(delay, error.retry_after)
                delay = min(delay, remaining)
                if self.on_retry is not None:
                    self.on_retry(error, delay)
                if self.sleep(cancelled, delay):
                    raise Cancelled from error
