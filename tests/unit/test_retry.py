"""Retrying one call: exact backoff sequences, budgets, Retry-After, cancellation, circuits."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from consumer.circuit import Breakers, CircuitBreaker
from consumer.config import RetrySettings
from consumer.errors import (
    CircuitOpenError,
    DecodeError,
    PermanentError,
    ServiceUnavailableError,
    TransientError,
)
from consumer.retry import Cancelled, Retrier, RetriesExhausted
from tests.support.clock import FakeClock

SERVICE = "credentials"
JOIN = 10.0  # generous bound on a thread that should already be done; never asserted as time


@dataclass
class Harness:
    """A Retrier with fake time: sleeps are recorded and move both clocks."""

    settings: RetrySettings = field(default_factory=RetrySettings)
    breakers: Breakers = field(default_factory=Breakers)
    jitter: Callable[[float], float] = lambda value: value
    clock: FakeClock = field(default_factory=lambda: FakeClock(100.0))
    wall: FakeClock = field(default_factory=lambda: FakeClock(1_700_000_000.0))
    sleeps: list[float] = field(default_factory=list)
    retried: list[tuple[TransientError, float]] = field(default_factory=list)
    cancel_on_sleep: bool = False

    def sleep(self, cancelled: threading.Event, seconds: float) -> bool:
        self.sleeps.append(seconds)
        self.clock.advance(seconds)
        self.wall.advance(seconds)
        if self.cancel_on_sleep:
            cancelled.set()
        return cancelled.is_set()

    def on_retry(self, error: TransientError, delay: float) -> None:
        self.retried.append((error, delay))

    def retrier(self) -> Retrier:
        return Retrier(
            settings=self.settings,
            breakers=self.breakers,
            clock=self.clock,
            wall_clock=self.wall,
            sleep=self.sleep,
            jitter=self.jitter,
            on_retry=self.on_retry,
        )


class Script:
    """A callable that raises the scripted errors in turn, then returns ``"ok"``."""

    def __init__(self, *errors: BaseException, each_call: Callable[[], None] | None = None) -> None:
        self._errors = list(errors)
        self._each_call = each_call
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self._each_call is not None:
            self._each_call()
        if self._errors:
            raise self._errors.pop(0)
        return "ok"


def transient(retry_after: float | None = None, status: int = 503) -> TransientError:
    return TransientError("busy", service=SERVICE, status=status, retry_after=retry_after)


def wait_until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` until true (a thread reached a point); fail after a generous bound."""
    for _ in range(5000):
        if condition():
            return
        time.sleep(0.002)
    pytest.fail("condition never became true")


# ---------------------------------------------------------------------------- backoff


def test_success_at_first_attempt_never_sleeps() -> None:
    """A call that succeeds at once returns its value without waiting or retrying."""
    harness = Harness()
    fn = Script()
    assert harness.retrier().call(fn, threading.Event()) == "ok"
    assert fn.calls == 1
    assert harness.sleeps == []


@pytest.mark.parametrize(
    ("initial", "cap", "failures", "waits"),
    [
        pytest.param(0.5, 30.0, 1, [0.5], id="one failure: the initial wait"),
        pytest.param(
            0.5, 30.0, 8, [0.5, 1, 2, 4, 8, 16, 30, 30], id="defaults: doubling, capped at 30"
        ),
        pytest.param(1.0, 5.0, 6, [1, 2, 4, 5, 5, 5], id="initial 1, cap 5"),
        pytest.param(0.25, 0.25, 3, [0.25, 0.25, 0.25], id="cap equals initial: constant"),
    ],
)
def test_exponential_backoff_sequence(
    initial: float, cap: float, failures: int, waits: list[float]
) -> None:
    """With identity jitter, the waits are initial * 2**n, capped at max_backoff_seconds."""
    harness = Harness(
        settings=RetrySettings(
            max_attempts=100, max_seconds=10_000, initial_seconds=initial, max_backoff_seconds=cap
        )
    )
    fn = Script(*(transient() for _ in range(failures)))
    assert harness.retrier().call(fn, threading.Event()) == "ok"
    assert harness.sleeps == waits
    assert fn.calls == failures + 1
    assert [delay for _, delay in harness.retried] == waits


def test_jitter_is_applied_to_each_backoff_value() -> None:
    """Each wait is jitter(backoff value): the jitter sees the uncapped-by-budget expo values."""
    seen: list[float] = []

    def half(value: float) -> float:
        seen.append(value)
        return value / 2

    harness = Harness(jitter=half)
    fn = Script(transient(), transient(), transient())
    harness.retrier().call(fn, threading.Event())
    assert seen == [0.5, 1.0, 2.0]
    assert harness.sleeps == [0.25, 0.5, 1.0]


@pytest.mark.parametrize(
    ("retry_after", "waits"),
    [
        pytest.param(None, [0.5, 1.0], id="no Retry-After: backoff"),
        pytest.param(7.0, [7.0, 7.0], id="Retry-After above backoff raises the wait"),
        pytest.param(0.1, [0.5, 1.0], id="Retry-After below backoff does not shorten it"),
        pytest.param(0.0, [0.5, 1.0], id="Retry-After zero: backoff"),
    ],
)
def test_retry_after_raises_the_wait(retry_after: float | None, waits: list[float]) -> None:
    """The wait is max(jittered backoff, Retry-After)."""
    harness = Harness()
    fn = Script(transient(retry_after, status=429), transient(retry_after, status=429))
    harness.retrier().call(fn, threading.Event())
    assert harness.sleeps == waits


def test_retry_after_wins_over_a_small_jitter() -> None:
    """Retry-After is a floor applied after jitter: full jitter cannot shorten it."""
    harness = Harness(jitter=lambda _value: 0.0)
    fn = Script(transient(3.0, status=429))
    harness.retrier().call(fn, threading.Event())
    assert harness.sleeps == [3.0]


def test_retry_after_beyond_the_budget_is_never_cut_short() -> None:
    """When Retry-After exceeds the remaining budget, no retry goes before Retry-After."""
    harness = Harness(settings=RetrySettings(max_attempts=10, max_seconds=10.0))
    fn = Script(*(transient(30.0, status=429) for _ in range(10)))
    with pytest.raises(RetriesExhausted):
        harness.retrier().call(fn, threading.Event())
    assert all(wait >= 30.0 for wait in harness.sleeps), harness.sleeps


# ---------------------------------------------------------------------------- budgets


def test_max_attempts_ends_in_retries_exhausted() -> None:
    """After max_attempts failed calls, RetriesExhausted carries attempts and failure times."""
    harness = Harness(settings=RetrySettings(max_attempts=4, max_seconds=10_000))
    errors = [transient() for _ in range(10)]
    fn = Script(*errors)
    with pytest.raises(RetriesExhausted) as caught:
        harness.retrier().call(fn, threading.Event())
    exhausted = caught.value
    assert fn.calls == 4
    assert harness.sleeps == [0.5, 1.0, 2.0]
    assert exhausted.attempts == 4
    assert exhausted.error is errors[3]
    assert exhausted.__cause__ is errors[3]
    assert str(exhausted) == "busy"
    assert exhausted.first_failure == 1_700_000_000.0
    assert exhausted.last_failure == 1_700_000_000.0 + 3.5


def test_max_attempts_of_one_never_retries() -> None:
    """max_attempts=1 means the first failure is final: no wait at all."""
    harness = Harness(settings=RetrySettings(max_attempts=1))
    fn = Script(transient())
    with pytest.raises(RetriesExhausted) as caught:
        harness.retrier().call(fn, threading.Event())
    assert caught.value.attempts == 1
    assert caught.value.first_failure == caught.value.last_failure
    assert harness.sleeps == []


def test_max_seconds_ends_in_retries_exhausted() -> None:
    """The time budget caps the last wait and ends retrying once spent."""
    harness = Harness(
        settings=RetrySettings(
            max_attempts=100, max_seconds=10.0, initial_seconds=1.0, max_backoff_seconds=60.0
        )
    )
    fn = Script(*(transient() for _ in range(100)))
    with pytest.raises(RetriesExhausted) as caught:
        harness.retrier().call(fn, threading.Event())
    assert harness.sleeps == [1.0, 2.0, 4.0, 3.0]  # 1+2+4 = 7 spent; the last wait is cut to 3
    assert caught.value.attempts == 5
    assert fn.calls == 5


def test_time_spent_inside_calls_counts_against_max_seconds() -> None:
    """Slow failing calls use up the time budget as well as the waits between them."""
    harness = Harness(
        settings=RetrySettings(
            max_attempts=100, max_seconds=10.0, initial_seconds=1.0, max_backoff_seconds=60.0
        )
    )
    fn = Script(*(transient() for _ in range(100)), each_call=lambda: harness.clock.advance(4.0))
    with pytest.raises(RetriesExhausted) as caught:
        harness.retrier().call(fn, threading.Event())
    assert harness.sleeps == [1.0, 1.0]  # spent 4, wait 1; spent 9, wait cut to 1; spent 14
    assert caught.value.attempts == 3


def test_success_after_failures_within_budget_returns_the_value() -> None:
    """A call that succeeds on its last allowed attempt returns normally."""
    harness = Harness(settings=RetrySettings(max_attempts=3))
    fn = Script(transient(), transient())
    assert harness.retrier().call(fn, threading.Event()) == "ok"
    assert fn.calls == 3


# ---------------------------------------------------------------------------- not retried


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(PermanentError("rejected", service=SERVICE, status=400), id="PermanentError"),
        pytest.param(DecodeError("poison"), id="DecodeError"),
        pytest.param(ValueError("bug"), id="ValueError"),
        pytest.param(KeyboardInterrupt(), id="KeyboardInterrupt"),
    ],
)
def test_non_transient_errors_pass_through_untouched(error: BaseException) -> None:
    """Anything but TransientError propagates as the same object after one call, no wait."""
    harness = Harness()
    fn = Script(error)
    with pytest.raises(type(error)) as caught:
        harness.retrier().call(fn, threading.Event())
    assert caught.value is error
    assert fn.calls == 1
    assert harness.sleeps == []


# ---------------------------------------------------------------------------- cancellation


def test_first_attempt_goes_even_if_cancelled() -> None:
    """A cancelled item still gets its first attempt; success returns its value."""
    harness = Harness()
    cancelled = threading.Event()
    cancelled.set()
    fn = Script()
    assert harness.retrier().call(fn, cancelled) == "ok"
    assert fn.calls == 1


def test_cancelled_item_is_not_retried() -> None:
    """A cancelled item whose first attempt fails transiently raises Cancelled, without waiting."""
    harness = Harness()
    cancelled = threading.Event()
    cancelled.set()
    error = transient()
    fn = Script(error, transient())
    with pytest.raises(Cancelled) as caught:
        harness.retrier().call(fn, cancelled)
    assert caught.value.__cause__ is error
    assert fn.calls == 1
    assert harness.sleeps == []


def test_cancellation_during_a_wait_stops_retrying() -> None:
    """If the item is cancelled while it sleeps, Cancelled is raised instead of a retry."""
    harness = Harness(cancel_on_sleep=True)
    fn = Script(transient(), transient())
    with pytest.raises(Cancelled):
        harness.retrier().call(fn, threading.Event())
    assert fn.calls == 1
    assert harness.sleeps == [0.5]


def test_default_sleep_is_interrupted_by_cancellation() -> None:
    """The default sleep returns as soon as the item is cancelled, so a drain is not held up."""
    cancelled = threading.Event()
    delays: list[float] = []

    def cancel_now(_error: TransientError, delay: float) -> None:  # called just before sleeping
        delays.append(delay)
        cancelled.set()

    retrier = Retrier(
        settings=RetrySettings(
            max_seconds=7200.0, initial_seconds=3600.0, max_backoff_seconds=3600.0
        ),
        breakers=Breakers(),
        jitter=lambda value: value,
        on_retry=cancel_now,
    )
    fn = Script(transient(), transient())
    with pytest.raises(Cancelled):
        retrier.call(fn, cancelled)
    assert len(delays) == 1  # one hour-long sleep began, and ended on cancellation
    assert fn.calls == 1


# ---------------------------------------------------------------------------- circuits


class Service:
    """A fake HTTP service behind a real breaker: the call path the service clients follow."""

    def __init__(self, breaker: CircuitBreaker, outcomes: list[bool | None]) -> None:
        """``outcomes``: True an outage, False a non-outage failure, None a success."""
        self.breaker = breaker
        self._outcomes = list(outcomes)
        self.sent = 0
        self.refused = 0

    def __call__(self) -> str:
        try:
            self.breaker.before_request("event-1")
        except CircuitOpenError:
            self.refused += 1
            raise
        self.sent += 1
        outage = self._outcomes.pop(0)
        if outage is None:
            self.breaker.record_success()
            return "ok"
        self.breaker.record_failure("event-1", outage=outage)
        if outage:
            raise ServiceUnavailableError("down", service=SERVICE, status=503)
        raise transient(status=500)


@pytest.fixture
def background() -> Iterator[list[threading.Thread]]:
    """Threads started by a test, joined afterwards."""
    threads: list[threading.Thread] = []
    yield threads
    for thread in threads:
        thread.join(JOIN)
        assert not thread.is_alive()


def start(threads: list[threading.Thread], target: Callable[[], None]) -> None:
    thread = threading.Thread(target=target, daemon=True)
    threads.append(thread)
    thread.start()


def probe_succeeds_later(breaker: CircuitBreaker, clock: FakeClock, hold: float) -> None:
    """Once someone waits on the open breaker, let ``hold`` seconds pass and close it."""
    wait_until(lambda: breaker.holding_back)
    clock.advance(hold)
    breaker.before_request("other-worker")  # another worker's probe...
    breaker.record_success()  # ...gets an answer


def test_failures_that_open_the_circuit_do_not_count(
    background: list[threading.Thread],
) -> None:
    """The failure that opens the breaker is not counted; the caller waits, then succeeds."""
    harness = Harness(settings=RetrySettings(max_attempts=2, max_seconds=10_000))
    breaker = CircuitBreaker(SERVICE, failure_threshold=2, open_seconds=5.0, clock=harness.clock)
    harness.breakers.add(breaker)
    service = Service(breaker, [True, True, None])  # counted, opens (not counted), success
    start(background, lambda: probe_succeeds_later(breaker, harness.clock, 5.0))
    assert harness.retrier().call(service, threading.Event()) == "ok"
    assert service.sent == 3
    assert harness.sleeps == [0.5]  # no backoff after the failure that opened the circuit


def test_circuit_open_refusals_do_not_count(background: list[threading.Thread]) -> None:
    """CircuitOpenError from an already-open breaker costs no attempt, even with max_attempts=1."""
    harness = Harness(settings=RetrySettings(max_attempts=1))
    breaker = CircuitBreaker(SERVICE, failure_threshold=1, open_seconds=5.0, clock=harness.clock)
    harness.breakers.add(breaker)
    breaker.record_failure("another-event", outage=True)  # other traffic opened it
    service = Service(breaker, [None])
    start(background, lambda: probe_succeeds_later(breaker, harness.clock, 5.0))
    assert harness.retrier().call(service, threading.Event()) == "ok"
    assert service.refused == 1
    assert service.sent == 1
    assert harness.sleeps == []


def test_time_waiting_on_an_open_circuit_is_not_in_the_time_budget(
    background: list[threading.Thread],
) -> None:
    """Time spent waiting for the circuit to close is not charged to max_seconds."""
    harness = Harness(
        settings=RetrySettings(max_attempts=100, max_seconds=10.0, initial_seconds=1.0)
    )
    breaker = CircuitBreaker(SERVICE, failure_threshold=2, open_seconds=5.0, clock=harness.clock)
    harness.breakers.add(breaker)
    # counted; opens (not counted); 1000 s on the open circuit; counted; success
    service = Service(breaker, [True, True, False, None])
    start(background, lambda: probe_succeeds_later(breaker, harness.clock, 1000.0))
    assert harness.retrier().call(service, threading.Event()) == "ok"
    assert harness.sleeps == [1.0, 2.0]
    assert service.sent == 4


def test_exhausted_after_the_circuit_closes_counts_only_closed_failures(
    background: list[threading.Thread],
) -> None:
    """RetriesExhausted.attempts counts failures seen with the circuit closed only."""
    harness = Harness(settings=RetrySettings(max_attempts=2, max_seconds=10_000))
    breaker = CircuitBreaker(SERVICE, failure_threshold=2, open_seconds=5.0, clock=harness.clock)
    harness.breakers.add(breaker)
    service = Service(breaker, [True, True, False])  # counted; opens (not counted); counted
    start(background, lambda: probe_succeeds_later(breaker, harness.clock, 5.0))
    with pytest.raises(RetriesExhausted) as caught:
        harness.retrier().call(service, threading.Event())
    assert caught.value.attempts == 2
    assert service.sent == 3
    assert caught.value.first_failure == 1_700_000_000.0  # the very first failure


def test_cancellation_while_waiting_on_the_circuit(background: list[threading.Thread]) -> None:
    """An item cancelled while it waits on an open circuit raises Cancelled and sends nothing."""
    harness = Harness()
    breaker = CircuitBreaker(SERVICE, failure_threshold=1, open_seconds=5.0, clock=harness.clock)
    harness.breakers.add(breaker)
    service = Service(breaker, [True, None])
    cancelled = threading.Event()

    def cancel_when_waiting() -> None:
        wait_until(lambda: breaker.holding_back)
        cancelled.set()

    start(background, cancel_when_waiting)
    with pytest.raises(Cancelled):
        harness.retrier().call(service, cancelled)
    assert service.sent == 1
    assert harness.sleeps == []


def test_cancelled_item_does_not_wait_on_an_open_circuit() -> None:
    """A cancelled item whose first attempt meets an open circuit raises Cancelled at once."""
    harness = Harness()
    breaker = CircuitBreaker(SERVICE, failure_threshold=1, clock=harness.clock)
    harness.breakers.add(breaker)
    breaker.record_failure("another-event", outage=True)
    cancelled = threading.Event()
    cancelled.set()
    service = Service(breaker, [])
    with pytest.raises(Cancelled):
        harness.retrier().call(service, cancelled)
    assert service.refused == 1
    assert breaker.holding_back is False


def test_errors_of_a_service_without_breaker_are_counted() -> None:
    """A transient error of a service with no breaker is retried under the normal budget."""
    harness = Harness(settings=RetrySettings(max_attempts=2))
    harness.breakers.add(CircuitBreaker("lms", clock=harness.clock))
    fn = Script(CircuitOpenError("open", service="discovery"), transient())
    with pytest.raises(RetriesExhausted) as caught:
        harness.retrier().call(fn, threading.Event())
    assert caught.value.attempts == 2
