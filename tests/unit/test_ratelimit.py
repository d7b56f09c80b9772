"""The token bucket behind CONSUMER_MAX_RATE and ``replay --max-rate``, on a fake clock."""

from __future__ import annotations

import pytest

from consumer.ratelimit import TokenBucket
from tests.support.clock import FakeClock


def starts_over(bucket: TokenBucket, clock: FakeClock, seconds: float, step: float) -> int:
    """How many starts the bucket allows when asked as often as possible for ``seconds``."""
    started = 0
    for _ in range(round(seconds / step)):
        clock.advance(step)
        while bucket.try_acquire():
            started += 1
    return started


@pytest.mark.parametrize("rate", [0.5, 3.0, 20.0, 250.0])
@pytest.mark.parametrize("step", [0.001, 0.05])
def test_the_long_run_rate_is_the_cap(rate: float, step: float) -> None:
    """Asked continuously for 100 s, at most rate x 100 events start, and no fewer."""
    clock = FakeClock()
    bucket = TokenBucket(rate, clock=clock)
    started = starts_over(bucket, clock, 100.0, step)
    assert rate * 100 - 1 <= started <= rate * 100 + 1


def test_it_starts_with_one_token() -> None:
    """A fresh bucket allows one start, then waits for the next token."""
    clock = FakeClock()
    bucket = TokenBucket(10.0, clock=clock)
    assert bucket.try_acquire()
    assert not bucket.try_acquire()
    clock.advance(0.1)
    assert bucket.try_acquire()


def test_a_pause_is_not_saved_up_as_a_burst() -> None:
    """After an idle hour, only one plus a quarter second's worth of starts happen at once."""
    clock = FakeClock()
    bucket = TokenBucket(40.0, clock=clock)
    clock.advance(3600)
    burst = 0
    while bucket.try_acquire():
        burst += 1
    assert burst == 11


def test_a_zero_rate_is_not_a_bucket() -> None:
    """0 means no cap: the CLI builds no bucket; the class refuses it."""
    with pytest.raises(ValueError, match="positive"):
        TokenBucket(0.0)
