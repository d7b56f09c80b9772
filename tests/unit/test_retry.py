"""Retrying one call: backoff sequences, budgets, Retry-After, cancellation, ADR 0004's rule."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import pytest

from consumer.circuit import Breakers, Cause, CircuitBreaker, State
from consumer.config import RetrySettings
from consumer.errors import (
    Cancelled,
    CircuitOpenError,
    DecodeError,
    PermanentError,
    RetriesExhausted,
    ServiceUnavailableError,
    TransientError,
)
from consumer.retry import Cancellations, Retrier
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
    sleeps_move_time: bool = True  # False: another thread moves the clock

    def sleep(self, cancelled: threading.Event, seconds: float) -> bool:
        self.sleeps.append(seconds)
        if self.sleeps_move_time:
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


def test_a_cancelled_call_makes_no_attempt_not_even_the_first() -> None:
    """Cancelled work starts no request: the call raises Cancelled before its first attempt.

    Before the fix, a first attempt always went, so an event of a revoked partition still
    queued for a thread wrote to Credentials after the release.
    """
    harness = Harness()
    cancelled = threading.Event()
    cancelled.set()
    fn = Script()
    with pytest.raises(Cancelled):
        harness.retrier().call(fn, cancelled)
    assert fn.calls == 0
    assert harness.sleeps == []


def test_a_call_cancelled_during_its_attempt_is_not_retried() -> None:
    """A call cancelled while its attempt ran raises Cancelled after it, without waiting."""
    harness = Harness()
    cancelled = threading.Event()
    error = transient()
    fn = Script(error, transient(), each_call=cancelled.set)
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


def test_a_call_registers_its_cancellation_under_its_request_id() -> None:
    """While a call runs, its request id reads as cancelled exactly when its flag is set."""
    cancellations = Cancellations()
    harness = Harness()
    retrier = Retrier(
        settings=harness.settings,
        breakers=harness.breakers,
        clock=harness.clock,
        sleep=harness.sleep,
        cancellations=cancellations,
    )
    cancelled = threading.Event()
    seen: list[bool] = []

    def attempt() -> str:
        seen.append(cancellations.cancelled("event-1"))
        cancelled.set()  # the partition is revoked while the attempt runs
        seen.append(cancellations.cancelled("event-1"))
        return "ok"

    assert retrier.call(attempt, cancelled, request_id="event-1") == "ok"
    assert seen == [False, True]
    assert cancellations.cancelled("event-1") is False  # forgotten once the call is over


def test_a_repeated_request_id_is_cancelled_only_when_all_its_calls_are() -> None:
    """Two calls under one id (a producer repeating ce_id): one cancelled does not stop both."""
    cancellations = Cancellations()
    first, second = threading.Event(), threading.Event()
    with cancellations.registered("dup", first), cancellations.registered("dup", second):
        first.set()
        partly = cancellations.cancelled("dup")
        second.set()
        fully = cancellations.cancelled("dup")
    assert (partly, fully) == (False, True)
    assert cancellations.cancelled("dup") is False


# ---------------------------------------------------------------------------- ADR 0004's rule

EVENT = "event-1"
POST = "credentials_post"


def own(status: int = 500, retry_after: float | None = None) -> TransientError:
    """A failure that belongs to the event (a 500 for a learner Credentials cannot serve)."""
    return TransientError(
        f"answered {status}", service=SERVICE, status=status, retry_after=retry_after
    )


def outage(status: int = 503, retry_after: float | None = None) -> ServiceUnavailableError:
    """An outage-class failure (502/503/504, refused, 401/403 of the worker's client)."""
    return ServiceUnavailableError(
        f"answered {status}", service=SERVICE, status=status, retry_after=retry_after
    )


Outcome = TransientError | None  # what one request gets: a failure, or None for an answer


class Service:
    """A fake HTTP service behind a real breaker, on the path the guard gives every request.

    Each request of ``request_id`` to ``endpoint`` takes the next of ``outcomes``;
    ``meanwhile`` runs as the request is served (other events' traffic, time passing).
    """

    def __init__(
        self,
        breaker: CircuitBreaker,
        outcomes: Iterable[Outcome],
        *,
        request_id: str = EVENT,
        endpoint: str = POST,
        meanwhile: Callable[[], None] | None = None,
    ) -> None:
        self.breaker = breaker
        self._outcomes = iter(outcomes)
        self.request_id = request_id
        self.endpoint = endpoint
        self._meanwhile = meanwhile
        self.sent = 0
        self.refused = 0

    def __call__(self) -> str:
        try:
            self.breaker.before_request(self.request_id)
        except CircuitOpenError:
            self.refused += 1
            raise
        self.sent += 1
        if self._meanwhile is not None:
            self._meanwhile()
        outcome = next(self._outcomes)
        if outcome is None:
            self.breaker.record_success(Cause(self.endpoint, 200))
            return "ok"
        cause = Cause(self.endpoint, outcome.status, outcome.reason, outcome.retry_after)
        self.breaker.record_failure(self.request_id, cause)
        raise outcome


def succeed_elsewhere(breaker: CircuitBreaker, endpoint: str = POST) -> Callable[[], None]:
    """Another event's request to ``endpoint`` succeeds: the service is up for others."""
    return lambda: breaker.record_success(Cause(endpoint, 201))


def breaker_for(harness: Harness, *, threshold: int = 5) -> CircuitBreaker:
    breaker = CircuitBreaker(
        SERVICE,
        failure_threshold=threshold,
        open_seconds=5.0,
        max_open_seconds=30.0,
        clock=harness.clock,
        poll_seconds=0.005,
    )
    return harness.breakers.add(breaker)


def open_by_others(breaker: CircuitBreaker) -> None:
    """Other events' failures open the circuit."""
    for index in range(10):
        breaker.record_failure(f"other-{index % 2}", Cause(POST, 500, "http_500"))
    assert breaker.state is State.OPEN


def call_bounded(harness: Harness, fn: Callable[[], str], request_id: str = EVENT) -> str:
    """``Retrier.call`` on a thread; fail the test (cancelling the call) if it never ends."""
    cancelled = threading.Event()
    result: list[str] = []
    raised: list[BaseException] = []

    def run() -> None:
        try:
            result.append(harness.retrier().call(fn, cancelled, request_id=request_id))
        except BaseException as error:  # noqa: BLE001 - re-raised on the test's thread
            raised.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(JOIN)
    if thread.is_alive():
        cancelled.set()
        thread.join(JOIN)
        pytest.fail("the call never ended")
    if raised:
        raise raised[0]
    return result[0]


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
    breaker.record_success(Cause(POST, 201))  # ...gets an answer


# clause 1: own failures always count ------------------------------------------------------


def test_an_own_failure_of_the_half_open_probe_counts() -> None:
    """The probe's own 500 runs down the probing event's budget; it does not wait for ever.

    Before the fix, a failure seen while the circuit was not closed never counted, so an
    event whose own requests fail re-opened the circuit as the probe, indefinitely.
    """
    harness = Harness(settings=RetrySettings(max_attempts=1))
    breaker = breaker_for(harness)
    open_by_others(breaker)
    harness.clock.advance(30.0)
    service = Service(breaker, itertools.repeat(own()))
    with pytest.raises(RetriesExhausted) as caught:
        call_bounded(harness, service)
    assert caught.value.attempts == 1
    assert service.sent == 1  # it was the probe


def test_two_events_whose_own_requests_always_fail_exhaust_their_budgets(
    background: list[threading.Thread],
) -> None:
    """Two always-500 events open the circuit, take turns as the probe, and both give up.

    Each makes exactly its attempt budget of requests, probes included; the time spent
    waiting on the open circuit is charged to neither.
    """
    harness = Harness(
        settings=RetrySettings(max_attempts=4, max_seconds=60.0), sleeps_move_time=False
    )
    changes: list[State] = []
    breaker = harness.breakers.add(
        CircuitBreaker(
            SERVICE,
            failure_threshold=2,
            open_seconds=5.0,
            max_open_seconds=30.0,
            clock=harness.clock,
            on_change=lambda _service, state, _cause: changes.append(state),
            poll_seconds=0.005,
        )
    )
    services = [Service(breaker, itertools.repeat(own()), request_id=f"e{i}") for i in (1, 2)]
    done = threading.Event()

    def tick() -> None:  # time passes while the two wait on the circuit
        while not done.is_set():
            harness.clock.advance(1.0)
            time.sleep(0.001)

    start(background, tick)
    outcomes: dict[str, BaseException] = {}

    def run(service: Service) -> None:
        cancelled = threading.Event()
        try:
            harness.retrier().call(service, cancelled, request_id=service.request_id)
        except BaseException as error:  # noqa: BLE001 - inspected below
            outcomes[service.request_id] = error

    runners = [threading.Thread(target=run, args=(service,), daemon=True) for service in services]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join(JOIN)
    done.set()
    assert not any(runner.is_alive() for runner in runners), "an event never gave up"
    assert {rid: type(error) for rid, error in outcomes.items()} == {
        "e1": RetriesExhausted,
        "e2": RetriesExhausted,
    }
    assert [service.sent for service in services] == [4, 4]
    assert State.OPEN in changes


def test_an_own_failure_then_a_refusal_in_one_attempt_counts() -> None:
    """An attempt whose own request failed, then met a circuit opened meanwhile, counts.

    Program awards post one program after another: a learner's own 500 on the first, then
    the circuit (opened by another event's failures) refusing the second, still costs the
    event an attempt — else two such learners could hide behind a circuit that each probe
    (a read that succeeds) closes and their next writes re-open, for ever.
    """
    harness = Harness(settings=RetrySettings(max_attempts=1))
    breaker = breaker_for(harness)

    def attempt() -> str:
        breaker.before_request(EVENT)  # the first program's write is sent...
        breaker.record_failure(EVENT, Cause(POST, 500, "http_500"))  # ...and fails
        open_by_others(breaker)
        breaker.before_request(EVENT)  # the second one is refused
        return "unreachable"

    with pytest.raises(RetriesExhausted) as caught:
        call_bounded(harness, attempt)
    assert caught.value.attempts == 1
    assert caught.value.error.reason == "http_500"
    assert caught.value.error.status == 500


def test_a_failure_recorded_before_a_refusal_keeps_its_own_reason() -> None:
    """The attempt ends with the recorded failure's reason (a read timeout has no status)."""
    harness = Harness(settings=RetrySettings(max_attempts=1))
    breaker = breaker_for(harness)

    def attempt() -> str:
        breaker.before_request(EVENT)
        breaker.record_failure(EVENT, Cause(POST, None, "read_timeout"))
        open_by_others(breaker)
        breaker.before_request(EVENT)  # refused: the circuit is open
        return "unreachable"

    with pytest.raises(RetriesExhausted) as caught:
        call_bounded(harness, attempt)
    assert caught.value.error.reason == "read_timeout"
    assert caught.value.reason == "read_timeout"  # the dead letter's reason


def test_an_own_failure_asking_past_the_budget_gives_up_at_once() -> None:
    """A counted failure whose Retry-After exceeds the budget left ends the call without waiting."""
    harness = Harness(settings=RetrySettings(max_attempts=10, max_seconds=60.0))
    breaker = breaker_for(harness)
    service = Service(breaker, itertools.repeat(own(429, retry_after=600.0)))
    with pytest.raises(RetriesExhausted) as caught:
        call_bounded(harness, service)
    assert caught.value.attempts == 1
    assert harness.sleeps == []


# clause 2: outage-class failures count only with evidence -----------------------------------


def test_a_persistent_504_of_one_event_counts_while_others_succeed() -> None:
    """Other events' successes on the endpoint show the service is up: the 504s are the event's.

    The first 504 is free (nothing sent after it has succeeded yet); each later one finds a
    success sent since the one before, and counts.
    """
    harness = Harness(settings=RetrySettings(max_attempts=3))
    breaker = breaker_for(harness)
    service = Service(breaker, itertools.repeat(outage(504)), meanwhile=succeed_elsewhere(breaker))
    with pytest.raises(RetriesExhausted) as caught:
        call_bounded(harness, service)
    assert caught.value.attempts == 3
    assert service.sent == 4
    assert harness.sleeps == [0.5, 1.0, 2.0]
    assert breaker.state is State.CLOSED  # one event never opens it


def test_an_outage_asking_for_600_seconds_is_not_counted() -> None:
    """No success anywhere: a 503 with Retry-After 600 costs nothing, and is waited out.

    Before the fix, a Retry-After beyond the remaining budget gave up at once, so an
    outage announcing a long maintenance dead-lettered every event it met.
    """
    harness = Harness(settings=RetrySettings(max_attempts=1, max_seconds=10.0))
    breaker = breaker_for(harness)
    service = Service(breaker, [outage(503, 600.0), outage(503, 600.0), outage(503, 600.0), None])
    assert call_bounded(harness, service) == "ok"
    assert harness.sleeps == [600.0, 600.0, 600.0]


@pytest.mark.parametrize(
    ("success_at", "counted"),
    [
        pytest.param(None, False, id="no success at all: an outage"),
        pytest.param("credentials_list", True, id="a success on the failing endpoint: counted"),
        pytest.param("credentials_post", False, id="successes elsewhere only: not counted"),
    ],
)
def test_evidence_is_a_success_on_the_failing_endpoint(
    success_at: str | None, counted: bool
) -> None:
    """A 403 on reads while writes succeed is the service user's permission, not the event.

    So it never dead-letters; a success on the endpoint that failed does make it count.
    """
    harness = Harness(settings=RetrySettings(max_attempts=1))
    breaker = breaker_for(harness)
    meanwhile = succeed_elsewhere(breaker, success_at) if success_at else None
    service = Service(
        breaker,
        [outage(403), outage(403), None],
        endpoint="credentials_list",
        meanwhile=meanwhile,
    )
    if counted:
        with pytest.raises(RetriesExhausted):
            call_bounded(harness, service)
    else:
        assert call_bounded(harness, service) == "ok"


def test_an_outage_beginning_during_the_call_never_dead_letters_it() -> None:
    """Successes before the outage began are no evidence against the event's first 503.

    ``make chaos`` found it: events whose calls began while Credentials served, then met a
    503 outage with ``Retry-After: 45``, had that first 503 counted (the endpoint had
    answered others since their calls began), and a counted failure asking past the budget
    gave up at once: 13 events dead-lettered at the outage's first second.
    """
    harness = Harness(settings=RetrySettings(max_attempts=6, max_seconds=10.0))
    breaker = breaker_for(harness)
    others = iter([succeed_elsewhere(breaker)])  # the service answered others, then went down

    def before_the_outage() -> None:
        next(others, lambda: None)()

    service = Service(
        breaker,
        [outage(503, 45.0), outage(503, 45.0), outage(503, 45.0), None],
        meanwhile=before_the_outage,
    )
    assert call_bounded(harness, service) == "ok"
    assert harness.sleeps == [45.0, 45.0, 45.0]


def test_a_success_sent_before_the_failure_is_no_evidence() -> None:
    """A success counts only if its request went out after the event's failure was answered.

    A request already in flight when the outage began may be answered after the event's
    failure: it shows the service was up before, not that it is up for others now.
    """
    harness = Harness(settings=RetrySettings(max_attempts=1))
    breaker = breaker_for(harness)

    def sent_a_minute_ago() -> None:
        breaker.record_success(Cause(POST, 201), elapsed=60.0)

    def nothing() -> None:
        return None

    late = iter([nothing, sent_a_minute_ago, nothing, nothing])

    def meanwhile() -> None:
        next(late)()

    service = Service(breaker, [outage(503), outage(503), outage(503), None], meanwhile=meanwhile)
    assert call_bounded(harness, service) == "ok"


def test_a_success_before_the_call_began_is_no_evidence() -> None:
    """Only successes since the event's first attempt began count as evidence."""
    harness = Harness(settings=RetrySettings(max_attempts=1))
    breaker = breaker_for(harness)
    breaker.record_success(Cause(POST, 201))  # long ago
    service = Service(breaker, [outage(502), outage(502), None])
    assert call_bounded(harness, service) == "ok"


def test_uncounted_failures_charge_no_time() -> None:
    """Time in outage-class failures nobody else escaped is not charged to the time budget."""
    harness = Harness(settings=RetrySettings(max_attempts=3, max_seconds=10.0))
    breaker = breaker_for(harness)
    slow = iter([100.0, 100.0, 1.0, 0.0])  # two slow outage failures, then a quick own 500

    def takes_time() -> None:
        harness.clock.advance(next(slow))

    service = Service(breaker, [outage(504), outage(504), own(500), None], meanwhile=takes_time)
    assert call_bounded(harness, service) == "ok"


def test_the_call_forgets_its_event_when_it_ends() -> None:
    """What the breaker remembered of the event's failures is dropped after its call."""
    harness = Harness(settings=RetrySettings(max_attempts=2))
    breaker = breaker_for(harness)
    assert call_bounded(harness, Service(breaker, [own(500), None])) == "ok"
    assert breaker.last_failure(EVENT) is None


def test_the_call_releases_its_event_from_the_endpoint_streaks_when_it_ends() -> None:
    """An event whose call is over no longer keeps its endpoint's circuit from closing."""
    harness = Harness()
    breaker = breaker_for(harness, threshold=2)
    refused = Cause("credentials_list", 403, "http_403", outage=True)
    breaker.record_failure("other", refused)

    def read_refused_then_rejected() -> str:
        breaker.record_failure(EVENT, refused)  # opens: two events' 403s on reads
        raise PermanentError("rejected", service=SERVICE, status=400)

    with pytest.raises(PermanentError):
        harness.retrier().call(read_refused_then_rejected, threading.Event(), request_id=EVENT)
    states = [breaker.state]
    breaker.record_success(Cause(POST, 201))  # "other" alone no longer makes reads broken
    states.append(breaker.state)
    assert states == [State.OPEN, State.CLOSED]


# the open circuit ----------------------------------------------------------------------------


def test_circuit_open_refusals_do_not_count(background: list[threading.Thread]) -> None:
    """CircuitOpenError from an already-open breaker costs no attempt, even with max_attempts=1."""
    harness = Harness(settings=RetrySettings(max_attempts=1))
    breaker = breaker_for(harness)
    open_by_others(breaker)
    service = Service(breaker, [None])
    start(background, lambda: probe_succeeds_later(breaker, harness.clock, 5.0))
    assert call_bounded(harness, service) == "ok"
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
    breaker = breaker_for(harness)
    open_by_others(breaker)
    # refused; 1000 s on the open circuit; counted; counted; success
    service = Service(breaker, [own(), own(), None])
    start(background, lambda: probe_succeeds_later(breaker, harness.clock, 1000.0))
    assert call_bounded(harness, service) == "ok"
    assert harness.sleeps == [1.0, 2.0]
    assert service.sent == 3


def test_cancellation_while_waiting_on_the_circuit(background: list[threading.Thread]) -> None:
    """An item cancelled while it waits on an open circuit raises Cancelled and sends nothing."""
    harness = Harness()
    breaker = breaker_for(harness)
    open_by_others(breaker)
    service = Service(breaker, [None])
    cancelled = threading.Event()

    def cancel_when_waiting() -> None:
        wait_until(lambda: breaker.holding_back)
        cancelled.set()

    start(background, cancel_when_waiting)
    with pytest.raises(Cancelled):
        harness.retrier().call(service, cancelled, request_id=EVENT)
    assert service.sent == 0
    assert harness.sleeps == []


def test_a_refused_request_of_cancelled_work_does_not_wait() -> None:
    """Work cancelled while its attempt met the open circuit gives up without waiting."""
    harness = Harness()
    breaker = breaker_for(harness)
    open_by_others(breaker)
    cancelled = threading.Event()
    service = Service(breaker, [], meanwhile=cancelled.set)

    def attempt() -> str:
        cancelled.set()
        return service()

    with pytest.raises(Cancelled):
        harness.retrier().call(attempt, cancelled, request_id=EVENT)
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
