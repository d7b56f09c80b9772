"""Circuit breakers: failures of two events open the circuit, one event never; fair probes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from consumer.circuit import Breakers, Cause, CircuitBreaker, LastFailure, State
from consumer.errors import CircuitOpenError
from tests.support.clock import FakeClock

THRESHOLD = 3
OPEN = 5.0
MAX_OPEN = 30.0
JOIN = 10.0  # generous bound on a thread that should already be done; never asserted as time
EPS = 0.25  # a step that adds up exactly in binary floating point


def make_breaker(
    clock: FakeClock,
    *,
    threshold: int = THRESHOLD,
    changes: list[State] | None = None,
    causes: list[Cause] | None = None,
) -> CircuitBreaker:
    def on_change(service: str, state: State, cause: Cause) -> None:
        assert service == "credentials"
        if changes is not None:
            changes.append(state)
        if causes is not None:
            causes.append(cause)

    return CircuitBreaker(
        "credentials",
        failure_threshold=threshold,
        open_seconds=OPEN,
        max_open_seconds=MAX_OPEN,
        clock=clock,
        on_change=on_change,
        poll_seconds=0.01,
    )


def open_breaker(breaker: CircuitBreaker) -> None:
    """Open it with failures of two events (one event alone never opens it)."""
    for index in range(THRESHOLD):
        breaker.record_failure(f"req-{index % 2}")
    assert breaker.state is State.OPEN


def wait_until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` until true (a thread reached a point); fail after a generous bound."""
    for _ in range(5000):
        if condition():
            return
        time.sleep(0.002)
    pytest.fail("condition never became true")


class Waiter:
    """A thread blocked in ``breaker.wait``; ``returned`` is set when the call returns."""

    def __init__(self, breaker: CircuitBreaker, request_id: str = "") -> None:
        self.cancelled = threading.Event()
        self.returned = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(breaker, request_id), daemon=True)
        self._thread.start()

    def _run(self, breaker: CircuitBreaker, request_id: str) -> None:
        breaker.wait(self.cancelled, request_id=request_id)
        self.returned.set()

    def join(self) -> None:
        self._thread.join(JOIN)
        assert not self._thread.is_alive()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def waiters() -> Iterator[list[Waiter]]:
    """Waiter threads started by a test; each is cancelled and joined afterwards."""
    started: list[Waiter] = []
    yield started
    for waiter in started:
        waiter.cancelled.set()
        waiter.join()


# ---------------------------------------------------------------------------- opening

Step = str | None  # the event id of a failure; None for a success


@pytest.mark.parametrize(
    ("steps", "state"),
    [
        pytest.param(["r1"] * 3, State.CLOSED, id="N failures of one event: closed"),
        pytest.param(["r1"] * 20, State.CLOSED, id="one event's many retries: closed"),
        pytest.param(["r1", "r2"], State.CLOSED, id="N-1 failures of two events: closed"),
        pytest.param(["r1", "r1", "r2"], State.OPEN, id="N failures of two events: opens"),
        pytest.param(["r1", "r2", "r1"], State.OPEN, id="two events mixed: opens"),
        pytest.param(["r1", "r2", "r3"], State.OPEN, id="N events: opens"),
        pytest.param(["r1", "r1", None, "r1", "r2"], State.CLOSED, id="a success resets the count"),
        pytest.param(
            ["r1", "r2", None, "r3", "r3"], State.CLOSED, id="a success forgets earlier events"
        ),
        pytest.param(["r1"] * 5 + ["r2"], State.OPEN, id="one event's retries, then another"),
    ],
)
def test_opens_only_on_failures_of_two_events(
    clock: FakeClock, steps: list[Step], state: State
) -> None:
    """N consecutive failures open the circuit only when two or more events failed."""
    breaker = make_breaker(clock)
    for step in steps:
        if step is None:
            breaker.record_success()
        else:
            breaker.record_failure(step, Cause(reason="connection_refused"))
    assert breaker.state is state
    assert breaker.closed is (state is State.CLOSED)


def test_one_event_never_opens_the_circuit_whatever_its_failures(clock: FakeClock) -> None:
    """Outage-class or not, one event's failures alone leave the circuit closed.

    Before ADR 0004's rule, N outage-class failures of one event (a persistent 504 for one
    learner) opened it, and that event alone paused consumption.
    """
    breaker = make_breaker(clock)
    for status in (504, 504, 503, 502, 403, 504):
        breaker.record_failure("r1", Cause(status=status, reason=f"http_{status}"))
    assert breaker.state is State.CLOSED


LIST = "credentials_list"
REFUSED = Cause(LIST, 403, "http_403", outage=True)  # the service user may not read
OWN_500 = Cause(LIST, 500, "http_500")  # a failure that belongs to its event
WRITTEN = Cause("credentials_post", 201)  # another endpoint answers
BAD_GATEWAY = Cause("credentials_post", 502, "http_502", outage=True)
READ = Cause(LIST, 200)
EndpointStep = tuple[str, Cause] | Cause  # (event id, failure), or a success


def replay(breaker: CircuitBreaker, steps: list[EndpointStep]) -> None:
    for step in steps:
        if isinstance(step, Cause):
            breaker.record_success(step)
        else:
            breaker.record_failure(*step)


@pytest.mark.parametrize(
    ("steps", "state"),
    [
        pytest.param(
            [("r1", REFUSED), WRITTEN, ("r2", REFUSED), WRITTEN, ("r3", REFUSED)],
            State.OPEN,
            id="403s on reads between successful writes: opens",
        ),
        pytest.param(
            [("r1", REFUSED), WRITTEN, ("r2", REFUSED), READ, ("r3", REFUSED), WRITTEN],
            State.CLOSED,
            id="a success on the endpoint resets its count",
        ),
        pytest.param(
            [("r1", REFUSED), WRITTEN] * 5,
            State.CLOSED,
            id="one event's 403s never open it",
        ),
        pytest.param(
            [("r1", OWN_500), WRITTEN, ("r2", OWN_500), WRITTEN, ("r3", OWN_500)],
            State.CLOSED,
            id="own failures: only the service-wide count",
        ),
        pytest.param(
            [("r1", REFUSED), ("r2", BAD_GATEWAY), WRITTEN, ("r3", REFUSED)],
            State.CLOSED,
            id="each endpoint counts its own failures",
        ),
    ],
)
def test_outage_class_failures_are_also_counted_per_endpoint(
    clock: FakeClock, steps: list[EndpointStep], state: State
) -> None:
    """N outage-class failures of one endpoint from two events open it, whatever else succeeds.

    A service user lacking view_usercredential gets 403 on every read while its writes
    succeed: with only the service-wide count, each write reset it and the circuit never
    opened.
    """
    breaker = make_breaker(clock)
    replay(breaker, steps)
    assert breaker.state is state


def test_a_success_elsewhere_does_not_close_it_while_the_endpoint_stays_broken(
    clock: FakeClock,
) -> None:
    """A probe answered on another endpoint frees the slot; only the broken endpoint closes it.

    Closing on the write would let every waiter read again, fail, and re-open at once (a
    flap, and a circuit alert that never fires); the next request probes instead.
    """
    changes: list[State] = []
    breaker = make_breaker(clock, changes=changes)
    replay(breaker, [("r1", REFUSED), WRITTEN, ("r2", REFUSED), WRITTEN, ("r1", REFUSED)])
    clock.advance(OPEN)
    breaker.before_request("newcomer")  # its course certificate write is the probe...
    breaker.record_success(WRITTEN)  # ...and succeeds
    breaker.before_request("newcomer")  # the slot is free: its read is the next probe
    breaker.record_failure("newcomer", REFUSED)
    clock.advance(2 * OPEN)  # the failed probe doubled the period
    breaker.before_request("r2")
    breaker.record_success(READ)  # the permission was granted
    assert changes == [
        State.OPEN,
        State.HALF_OPEN,
        State.OPEN,
        State.HALF_OPEN,
        State.CLOSED,
    ]


def test_one_events_failed_probes_do_not_crowd_the_others_out(clock: FakeClock) -> None:
    """After one event failed many probes, the endpoint is still broken by both events."""
    breaker = make_breaker(clock)
    replay(breaker, [("r1", REFUSED), ("r2", REFUSED), ("r1", REFUSED)])
    for _ in range(THRESHOLD + 1):
        clock.advance(MAX_OPEN)
        breaker.before_request("r2")
        breaker.record_failure("r2", REFUSED)
    clock.advance(MAX_OPEN)
    breaker.before_request("newcomer")
    breaker.record_success(WRITTEN)
    assert breaker.state is State.HALF_OPEN


def test_a_success_elsewhere_frees_the_probe_slot_for_a_waiter(
    clock: FakeClock, waiters: list[Waiter]
) -> None:
    """A waiting event gets the slot once the probe answered elsewhere; still half-open."""
    breaker = make_breaker(clock)
    replay(breaker, [("r1", REFUSED), ("r2", REFUSED), ("r1", REFUSED)])
    clock.advance(OPEN)
    breaker.before_request("newcomer")
    waiter = Waiter(breaker, "r1")
    waiters.append(waiter)
    breaker.record_success(WRITTEN)
    assert waiter.returned.wait(JOIN)
    assert breaker.state is State.HALF_OPEN
    breaker.before_request("r1")


def test_an_endpoint_stops_holding_the_circuit_once_its_events_are_released(
    clock: FakeClock,
) -> None:
    """When the calls of the events that failed there are over, a success elsewhere closes.

    Nobody is left to retry the endpoint (their partition was revoked, say): keeping the
    circuit half-open would throttle the service to one request at a time for nothing.
    """
    breaker = make_breaker(clock)
    replay(breaker, [("r1", REFUSED), ("r2", REFUSED), ("r1", REFUSED)])
    breaker.release("r1")
    breaker.release("r2")
    assert breaker.last_failure("r1") is None
    clock.advance(OPEN)
    breaker.before_request("newcomer")
    breaker.record_success(WRITTEN)
    assert breaker.state is State.CLOSED


def test_a_released_event_leaves_the_others_in_the_streak(clock: FakeClock) -> None:
    """Releasing one event keeps the failures of the others: two of them still open it."""
    breaker = make_breaker(clock)
    replay(breaker, [("gone", REFUSED), ("r1", REFUSED), WRITTEN])
    breaker.release("gone")
    replay(breaker, [("r2", REFUSED), WRITTEN])
    states = [breaker.state]
    replay(breaker, [("r1", REFUSED)])
    states.append(breaker.state)
    assert states == [State.CLOSED, State.OPEN]


def test_threshold_of_one_opens_on_a_single_failure(clock: FakeClock) -> None:
    """With failure_threshold=1 one failure opens the circuit."""
    breaker = make_breaker(clock, threshold=1)
    breaker.record_failure("r1")
    assert breaker.state is State.OPEN


def test_on_change_carries_the_cause(clock: FakeClock) -> None:
    """Each change reports what caused it: the failure that opened it, the success closing it."""
    causes: list[Cause] = []
    breaker = make_breaker(clock, causes=causes)
    for request_id in ("a", "b", "a"):
        breaker.record_failure(request_id, Cause("credentials_list", 403, "http_403"))
    clock.advance(OPEN)
    breaker.before_request("c")
    breaker.record_success(Cause("credentials_list", 200))
    assert causes == [
        Cause("credentials_list", 403, "http_403"),
        Cause(reason="open_period_over"),
        Cause("credentials_list", 200),
    ]


def test_state_values_are_the_exported_metric_values() -> None:
    """State values are what the metric exports: 0 closed, 1 half-open, 2 open."""
    assert [State.CLOSED.value, State.HALF_OPEN.value, State.OPEN.value] == [0, 1, 2]


def test_on_change_reports_each_transition(clock: FakeClock) -> None:
    """on_change is called with every state the breaker enters, in order."""
    changes: list[State] = []
    breaker = make_breaker(clock, changes=changes)
    open_breaker(breaker)
    clock.advance(OPEN)
    breaker.before_request("probe")
    breaker.record_failure("probe")
    clock.advance(2 * OPEN)
    breaker.before_request("probe")
    breaker.record_success()
    assert changes == [State.OPEN, State.HALF_OPEN, State.OPEN, State.HALF_OPEN, State.CLOSED]


# ---------------------------------------------------------------------------- open


def test_closed_breaker_lets_every_request_go(clock: FakeClock) -> None:
    """A closed breaker never raises from before_request."""
    breaker = make_breaker(clock)
    for _ in range(10):
        breaker.before_request("probe")
    assert breaker.state is State.CLOSED


def test_open_breaker_refuses_without_sending(clock: FakeClock) -> None:
    """While open, before_request raises CircuitOpenError naming the service; nothing is sent."""
    breaker = make_breaker(clock)
    open_breaker(breaker)
    sent: list[str] = []

    def call() -> None:
        breaker.before_request("probe")
        sent.append("request")

    clock.advance(OPEN - EPS)
    with pytest.raises(CircuitOpenError) as caught:
        call()
    assert caught.value.service == "credentials"
    assert caught.value.reason == "circuit_open"
    assert sent == []
    assert breaker.state is State.OPEN


def test_failures_while_open_do_not_extend_the_open_time(clock: FakeClock) -> None:
    """Failures reported while open (requests sent before it opened) are ignored."""
    breaker = make_breaker(clock)
    open_breaker(breaker)
    clock.advance(OPEN - 1)
    for rid in ("late-1", "late-2", "late-3", "late-4"):
        breaker.record_failure(rid)
    clock.advance(1)
    breaker.before_request("probe")  # the probe goes on the original schedule
    assert breaker.state is State.HALF_OPEN


# ---------------------------------------------------------------------------- probing


def test_exactly_one_probe_after_open_seconds(clock: FakeClock) -> None:
    """After open_seconds exactly one request (the probe) goes; others get CircuitOpenError."""
    breaker = make_breaker(clock)
    open_breaker(breaker)
    clock.advance(OPEN)
    breaker.before_request("probe")
    assert breaker.state is State.HALF_OPEN
    for _ in range(5):
        with pytest.raises(CircuitOpenError):
            breaker.before_request("other")
    clock.advance(MAX_OPEN)
    with pytest.raises(CircuitOpenError):
        breaker.before_request("other")


def test_a_probe_that_never_reports_back_frees_its_slot_after_max_open_seconds(
    clock: FakeClock,
) -> None:
    """A probe whose caller died does not keep the circuit half-open forever."""
    breaker = make_breaker(clock)
    open_breaker(breaker)
    clock.advance(OPEN)
    breaker.before_request("lost-probe")
    clock.advance(MAX_OPEN + EPS)
    breaker.before_request("next-probe")
    breaker.record_failure("lost-probe")  # too late: not the probe any more
    states = [breaker.state]
    breaker.record_failure("next-probe")
    states.append(breaker.state)
    assert states == [State.HALF_OPEN, State.OPEN]


def test_probe_success_closes_and_lets_everyone_go(clock: FakeClock) -> None:
    """A successful probe closes the circuit; requests flow again."""
    breaker = make_breaker(clock)
    open_breaker(breaker)
    clock.advance(OPEN)
    breaker.before_request("probe")
    breaker.record_success()
    assert breaker.state is State.CLOSED
    for _ in range(3):
        breaker.before_request("probe")


def test_probe_failure_reopens_for_doubled_time_capped(clock: FakeClock) -> None:
    """Each failed probe doubles the open time (5, 10, 20, then capped at 30)."""
    breaker = make_breaker(clock)
    open_breaker(breaker)
    observed: list[float] = []
    for expected in (OPEN, 2 * OPEN, 4 * OPEN, MAX_OPEN, MAX_OPEN):
        clock.advance(expected - EPS)
        with pytest.raises(CircuitOpenError):
            breaker.before_request("probe")
        clock.advance(EPS)
        breaker.before_request("probe")  # the probe
        observed.append(expected)
        breaker.record_failure("probe")
        assert breaker.state is State.OPEN
    assert observed == [5.0, 10.0, 20.0, 30.0, 30.0]


def test_probe_success_resets_the_open_time(clock: FakeClock) -> None:
    """After a probe closes the circuit, the next opening lasts open_seconds again."""
    breaker = make_breaker(clock)
    open_breaker(breaker)
    clock.advance(OPEN)
    breaker.before_request("probe")
    breaker.record_failure("probe")  # now open for 10
    clock.advance(2 * OPEN)
    breaker.before_request("probe")
    breaker.record_success()
    open_breaker(breaker)
    clock.advance(OPEN)
    breaker.before_request("probe")
    assert breaker.state is State.HALF_OPEN


def test_probe_failure_of_any_kind_reopens(clock: FakeClock) -> None:
    """A non-outage failure of the probe still re-opens the circuit (one failure is enough)."""
    breaker = make_breaker(clock)
    open_breaker(breaker)
    clock.advance(OPEN)
    breaker.before_request("probe")
    breaker.record_failure("probe")
    assert breaker.state is State.OPEN


def test_stale_failure_does_not_let_a_second_probe_go(clock: FakeClock) -> None:
    """Half-open allows one request in flight even if a request sent earlier fails meanwhile."""
    breaker = make_breaker(clock)
    breaker.before_request("slow")  # sent while closed, still in flight
    open_breaker(breaker)
    clock.advance(OPEN)
    breaker.before_request("probe")  # the probe, in flight
    breaker.record_failure("slow")  # the early request times out now
    clock.advance(MAX_OPEN)
    with pytest.raises(CircuitOpenError):
        breaker.before_request("probe")  # the probe has not answered: no second probe


def test_the_open_period_honours_retry_after_up_to_the_cap(clock: FakeClock) -> None:
    """A failure asking to wait (503 Retry-After) holds the circuit open that long, capped."""
    breaker = make_breaker(clock)
    for request_id in ("a", "b"):
        breaker.record_failure(request_id, Cause(status=503, retry_after=12.0))
    breaker.record_failure("a", Cause(status=503, retry_after=12.0))
    clock.advance(12.0 - EPS)
    with pytest.raises(CircuitOpenError):
        breaker.before_request("probe")
    clock.advance(EPS)
    breaker.before_request("probe")
    breaker.record_failure("probe", Cause(status=503, retry_after=600.0))
    clock.advance(MAX_OPEN - EPS)
    with pytest.raises(CircuitOpenError):
        breaker.before_request("probe-2")
    clock.advance(EPS)
    breaker.before_request("probe-2")  # 600 s asked, the cap (max_open_seconds) wins
    assert breaker.state is State.HALF_OPEN


# ---------------------------------------------------------------------------- fair probes


def fail_probe(breaker: CircuitBreaker, clock: FakeClock, request_id: str) -> None:
    """Let the open period pass; ``request_id`` probes and fails."""
    clock.advance(MAX_OPEN)
    breaker.before_request(request_id)
    breaker.record_failure(request_id, Cause(status=500, reason="http_500"))
    assert breaker.state is State.OPEN


def test_an_event_whose_probe_failed_yields_the_slot_to_a_waiter_that_has_not_probed(
    clock: FakeClock, waiters: list[Waiter]
) -> None:
    """The probe slot goes to a waiting event that has not probed in this open episode.

    Before ADR 0004's rule, one event whose own requests fail could take the slot again
    and again, re-opening the circuit each time, while the others waited for ever.
    """
    breaker = make_breaker(clock)
    open_breaker(breaker)
    fail_probe(breaker, clock, "own-500")
    waiters.append(Waiter(breaker, "fresh"))
    wait_until(lambda: breaker.holding_back)
    clock.advance(MAX_OPEN)
    with pytest.raises(CircuitOpenError):
        breaker.before_request("own-500")
    breaker.before_request("fresh")
    assert breaker.state is State.HALF_OPEN


def test_probes_rotate_among_events_that_all_failed_one(clock: FakeClock) -> None:
    """When every candidate has failed a probe, the one with the fewest failures goes next."""
    breaker = make_breaker(clock)
    open_breaker(breaker)
    fail_probe(breaker, clock, "a")
    fail_probe(breaker, clock, "b")
    gate = threading.Event()
    waiting = [
        threading.Thread(target=breaker.wait, args=(gate,), kwargs={"request_id": rid})
        for rid in ("a", "b")
    ]
    for thread in waiting:
        thread.start()
    try:
        wait_until(lambda: len(breaker._waiting) == 2)  # both wait (no public view of it)
        clock.advance(MAX_OPEN)
        breaker.before_request("a")  # a tie: a may go
        breaker.record_failure("a", Cause(status=500))
        clock.advance(MAX_OPEN)
        with pytest.raises(CircuitOpenError):
            breaker.before_request("a")  # a has failed two, b one: b's turn
        breaker.before_request("b")
    finally:
        gate.set()
        for thread in waiting:
            thread.join(JOIN)


def test_holding_back_ends_once_every_waiter_failed_a_probe(
    clock: FakeClock, waiters: list[Waiter]
) -> None:
    """After a full failed rotation the engine may take new work; new events are candidates."""
    breaker = make_breaker(clock)
    open_breaker(breaker)
    first, second = Waiter(breaker, "first"), Waiter(breaker, "second")
    waiters.extend([first, second])
    wait_until(lambda: breaker.holding_back)
    fail_probe(breaker, clock, "first")
    held = [breaker.holding_back]  # "second" has not probed yet
    fail_probe(breaker, clock, "second")
    held.append(breaker.holding_back)
    assert held == [True, False]
    clock.advance(MAX_OPEN)
    breaker.before_request("newly-admitted")  # a new event's request is a fresh candidate
    assert breaker.state is State.HALF_OPEN
    newcomer = Waiter(breaker, "another-new")
    waiters.append(newcomer)
    wait_until(lambda: breaker.holding_back)  # a waiter that has not probed holds back again


def test_a_success_starts_a_new_episode(clock: FakeClock) -> None:
    """Failed probes are forgotten once the circuit closes: the next episode starts even."""
    breaker = make_breaker(clock)
    open_breaker(breaker)
    fail_probe(breaker, clock, "a")
    clock.advance(MAX_OPEN)
    breaker.before_request("b")
    breaker.record_success()
    open_breaker(breaker)
    waiter_b = threading.Event()
    thread = threading.Thread(target=breaker.wait, args=(waiter_b,), kwargs={"request_id": "b"})
    thread.start()
    try:
        wait_until(lambda: breaker.holding_back)
        clock.advance(OPEN)
        breaker.before_request("a")  # a's earlier failure no longer puts it behind b
    finally:
        waiter_b.set()
        thread.join(JOIN)


# ---------------------------------------------------------------------------- evidence


def test_successes_are_counted_per_endpoint_and_failures_remembered_per_event(
    clock: FakeClock,
) -> None:
    """The retrier's evidence: successes per endpoint, when sent, each event's last failure."""
    breaker = make_breaker(clock)
    breaker.record_success(Cause("credentials_post", 201))
    breaker.record_success(Cause("credentials_list", 200))
    clock.advance(10)
    breaker.record_failure("e1", Cause("credentials_post", 504))
    failed_at = clock()
    clock.advance(1)
    breaker.record_success(Cause("credentials_post", 201), elapsed=2.0)  # sent before e1 failed
    assert not breaker.success_sent_after("credentials_post", failed_at)
    breaker.record_success(Cause("credentials_post", 201), elapsed=0.5)  # sent after
    assert breaker.success_sent_after("credentials_post", failed_at)
    assert not breaker.success_sent_after("credentials_list", failed_at)
    breaker.record_failure("e2", Cause("credentials_list", 403))
    assert breaker.successes() == {"credentials_post": 3, "credentials_list": 1}
    assert breaker.last_failure("e1") == LastFailure(Cause("credentials_post", 504), failed_at)
    assert breaker.last_failure("e2") == LastFailure(Cause("credentials_list", 403), clock())
    breaker.forget("e1")
    assert breaker.last_failure("e1") is None
    assert breaker.last_failure("never") is None


# ---------------------------------------------------------------------------- waiting


def test_wait_returns_at_once_when_closed(clock: FakeClock) -> None:
    """wait() on a closed breaker returns immediately and never holds consumption back."""
    breaker = make_breaker(clock)
    breaker.wait(threading.Event())
    assert breaker.holding_back is False


def test_wait_returns_at_once_when_the_probe_is_due(clock: FakeClock) -> None:
    """wait() on an open breaker whose open time has passed returns so the caller can probe."""
    breaker = make_breaker(clock)
    open_breaker(breaker)
    clock.advance(OPEN)
    breaker.wait(threading.Event())
    assert breaker.state is State.OPEN  # the state turns half-open on the next request


def test_holding_back_only_while_someone_waits(clock: FakeClock, waiters: list[Waiter]) -> None:
    """An open breaker holds consumption back only while a caller waits in wait()."""
    breaker = make_breaker(clock)
    open_breaker(breaker)
    assert breaker.holding_back is False
    waiter = Waiter(breaker)
    waiters.append(waiter)
    wait_until(lambda: breaker.holding_back)
    waiter.cancelled.set()
    waiter.join()
    assert breaker.holding_back is False
    assert breaker.state is State.OPEN


def test_wait_returns_when_the_circuit_closes(clock: FakeClock, waiters: list[Waiter]) -> None:
    """Waiters blocked on an open circuit are released when a probe succeeds."""
    breaker = make_breaker(clock)
    open_breaker(breaker)
    group = [Waiter(breaker) for _ in range(3)]
    waiters.extend(group)
    wait_until(lambda: breaker.holding_back)
    clock.advance(OPEN)
    breaker.before_request("probe")  # another worker's probe
    assert not any(waiter.returned.is_set() for waiter in group)  # probe in flight: keep waiting
    breaker.record_success()
    for waiter in group:
        waiter.join()
        assert waiter.returned.is_set()
    assert breaker.holding_back is False


def test_wait_returns_when_probe_time_comes(clock: FakeClock, waiters: list[Waiter]) -> None:
    """A waiter on an open circuit returns once open_seconds have passed, to send the probe."""
    breaker = make_breaker(clock)
    open_breaker(breaker)
    waiter = Waiter(breaker)
    waiters.append(waiter)
    wait_until(lambda: breaker.holding_back)
    clock.advance(OPEN - EPS)
    assert not waiter.returned.is_set()
    clock.advance(EPS)
    waiter.join()
    assert waiter.returned.is_set()
    assert waiter.cancelled.is_set() is False


def test_wait_keeps_waiting_when_the_probe_fails(clock: FakeClock, waiters: list[Waiter]) -> None:
    """A failed probe re-opens the circuit and the waiter keeps waiting until the next probe."""
    breaker = make_breaker(clock)
    open_breaker(breaker)
    clock.advance(OPEN)
    breaker.before_request("probe")  # probe in flight
    waiter = Waiter(breaker)
    waiters.append(waiter)
    wait_until(lambda: breaker.holding_back)
    breaker.record_failure("probe")
    assert breaker.state is State.OPEN
    assert not waiter.returned.is_set()
    clock.advance(2 * OPEN)
    waiter.join()
    assert waiter.returned.is_set()


def test_wait_returns_on_cancellation(clock: FakeClock, waiters: list[Waiter]) -> None:
    """A cancelled waiter returns although the circuit is still open."""
    breaker = make_breaker(clock)
    open_breaker(breaker)
    waiter = Waiter(breaker)
    waiters.append(waiter)
    wait_until(lambda: breaker.holding_back)
    waiter.cancelled.set()
    waiter.join()
    assert waiter.returned.is_set()
    assert breaker.state is State.OPEN


def test_wait_with_cancellation_already_set_returns_at_once(clock: FakeClock) -> None:
    """wait() with its event already set returns without blocking and leaves no waiter behind."""
    breaker = make_breaker(clock)
    open_breaker(breaker)
    cancelled = threading.Event()
    cancelled.set()
    breaker.wait(cancelled)
    assert breaker.holding_back is False


# ---------------------------------------------------------------------------- Breakers


def test_breakers_look_up_by_service_name(clock: FakeClock) -> None:
    """Breakers finds each breaker by its service name; unknown names give None."""
    credentials = make_breaker(clock)
    lms = CircuitBreaker("lms", clock=clock)
    breakers = Breakers([credentials])
    assert breakers.add(lms) is lms
    assert breakers.get("credentials") is credentials
    assert breakers.get("lms") is lms
    assert breakers.get("discovery") is None
    assert list(breakers) == [credentials, lms]


def test_breakers_hold_back_when_any_breaker_does(clock: FakeClock, waiters: list[Waiter]) -> None:
    """Breakers.holding_back is true while any one service is open with a waiter."""
    credentials = make_breaker(clock)
    lms = CircuitBreaker("lms", failure_threshold=1, clock=clock, poll_seconds=0.01)
    breakers = Breakers([credentials, lms])
    lms.record_failure("r")
    assert breakers.holding_back() is False  # open, but nobody waits on it
    waiter = Waiter(lms)
    waiters.append(waiter)
    wait_until(breakers.holding_back)
    waiter.cancelled.set()
    waiter.join()
    assert breakers.holding_back() is False
