"""Circuit breakers: tell a dependency outage apart from a bad event (ADR 0004).

When a service fails *systemically*, retrying each event against it only burns retry
budgets and, in the end, dead-letters a whole backlog that was fine. A breaker per service
watches the outcome of every request to it (from all workers):

- closed: requests flow. It opens after ``failure_threshold`` consecutive retryable
  failures that come from at least two distinct events (or one, with a threshold of 1),
  counted two ways: failures of the service with no success of it in between, or
  outage-class failures of one *endpoint* with no success of that endpoint in between (a
  service whose reads answer 403 while its writes succeed is broken, though every write
  would clear the first count). One event can never open it alone, so one event can never
  pause consumption.
- open: no request is sent (``CircuitOpenError``); callers wait without spending retry
  budget, and the engine pauses consumption while someone waits. After the open period one
  probe may go. The period doubles with each failed probe (up to ``max_open_seconds``) and
  is never shorter than the ``Retry-After`` of the failure that opened it (up to the same cap).
- half-open: exactly one request (the probe) is in flight. Success closes the circuit and
  releases every waiter; failure re-opens it. While an endpoint is still broken (enough
  outage-class failures of two events since its last success), a success elsewhere does
  not close the circuit — every waiter would hit that endpoint again and re-open it at
  once — but frees the probe slot for the next request. An endpoint stops being broken
  when it answers, or when the calls of the events that failed there are over (``release``).

Probing is fair: the probe slot goes to a request whose event has failed fewest probes in
this open episode, so an event whose own requests fail cannot keep the slot while another
waits for its first try. Once every waiting event has failed a probe, ``holding_back``
turns false and the engine takes new work again (each new event is a fresh candidate).

The breaker also keeps, per endpoint, a monotonic count of successes, and each event's last
failure: the retrier reads them to tell whether the service is up for others (ADR 0004).

Time is injected (``clock``) so tests drive the state machine without waiting.
"""

from __future__ import annotations

import enum
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from consumer.errors import CircuitOpenError

Clock = Callable[[], float]

_REMEMBERED_FAILURES = 10_000  # last failures kept by event id (the retrier forgets its own)


class State(enum.Enum):
    """Breaker states; the value is what the metric exports (0 closed, 1 half-open, 2 open)."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


@dataclass(frozen=True, slots=True)
class Cause:
    """What a request did, as far as a breaker cares: no URL, no body, no user.

    ``reason`` is the error's snake_case reason (``http_503``, ``connection_refused``) for a
    failure, empty for a success; ``outage`` tells an outage-class failure (ADR 0004).
    """

    endpoint: str = ""
    status: int | None = None
    reason: str = ""
    retry_after: float | None = None
    outage: bool = False


@dataclass(frozen=True, slots=True)
class LastFailure:
    """An event's last failed request to a service, and when its failure was recorded."""

    cause: Cause
    at: float


OnChange = Callable[[str, State, Cause], None]


class CircuitBreaker:
    """One service's breaker; thread-safe, shared by every worker."""

    def __init__(
        self,
        service: str,
        *,
        failure_threshold: int = 5,
        open_seconds: float = 5.0,
        max_open_seconds: float = 60.0,
        clock: Clock = time.monotonic,
        on_change: OnChange | None = None,
        poll_seconds: float = 0.5,
    ) -> None:
        """``poll_seconds``: how often a waiter looks at the (injected) clock."""
        self.service = service
        self._threshold = failure_threshold
        self._base_open = open_seconds
        self._max_open = max_open_seconds
        self._clock = clock
        self._on_change = on_change
        self._poll = poll_seconds
        self._state = State.CLOSED
        self._failures: list[str] = []  # event ids of the consecutive failures while closed
        # endpoint -> event id -> outage-class failures there since the endpoint's last success
        self._endpoint_failures: dict[str, dict[str, int]] = {}
        self._open_for = open_seconds  # the doubling schedule
        self._hold = open_seconds  # this opening's period (the schedule, or Retry-After)
        self._opened_at = 0.0
        self._probe: tuple[str, float] | None = None  # (event id, sent at) in half-open
        self._probe_failures: dict[str, int] = {}  # failed probes per event, this episode
        self._waiting: dict[str, int] = {}  # event id -> threads of it waiting in wait()
        self._successes: dict[str, int] = {}  # endpoint -> successes ever (monotonic)
        self._success_sent: dict[str, float] = {}  # endpoint -> latest send time of a success
        self._last_failure: OrderedDict[str, LastFailure] = OrderedDict()
        self._changed = threading.Condition()

    # ------------------------------------------------------------------ state

    @property
    def state(self) -> State:
        """The current state (open turns into half-open lazily, on the next request)."""
        return self._state

    @property
    def closed(self) -> bool:
        """True when requests flow freely."""
        return self._state is State.CLOSED

    @property
    def holding_back(self) -> bool:
        """True when the service is down and an event waits for its first probe.

        A breaker nobody waits on (say, Discovery while its cached copy serves) does not
        hold consumption back, nor does one whose every waiter has already failed a probe
        in this episode: new work then gets its turn to probe.
        """
        with self._changed:
            return self._state is not State.CLOSED and any(
                self._probe_failures.get(event_id, 0) == 0 for event_id in self._waiting
            )

    # ------------------------------------------------------------------ requests

    def before_request(self, request_id: str) -> None:
        """Let a request go, or raise ``CircuitOpenError`` (nothing was sent)."""
        with self._changed:
            if self._state is State.CLOSED:
                return
            if self._state is State.OPEN and self._open_period_over():
                self._set(State.HALF_OPEN, Cause(reason="open_period_over"))
            if self._state is State.HALF_OPEN and self._may_probe(request_id):
                self._probe = (request_id, self._clock())
                return
            raise CircuitOpenError(f"circuit of {self.service} is open", service=self.service)

    def record_success(self, cause: Cause | None = None, *, elapsed: float = 0.0) -> None:
        """A request got an answer that shows the service is up (2xx, or a 4xx verdict).

        ``elapsed``: how long ago the request was sent (its round trip): evidence against
        an event's failure is a success of a request sent after that failure.
        """
        cause = cause or Cause()
        with self._changed:
            self._successes[cause.endpoint] = self._successes.get(cause.endpoint, 0) + 1
            sent = self._clock() - elapsed
            self._success_sent[cause.endpoint] = max(
                self._success_sent.get(cause.endpoint, sent), sent
            )
            self._failures.clear()
            self._endpoint_failures.pop(cause.endpoint, None)
            self._probe = None
            if self._state is State.CLOSED:
                return
            if self._broken_endpoint() is not None:
                # Another endpoint answered, the broken one has not: closing would only let
                # every waiter hit it again. The next request may probe.
                self._changed.notify_all()
                return
            self._open_for = self._base_open
            self._probe_failures.clear()
            self._set(State.CLOSED, cause)

    def record_failure(self, request_id: str, cause: Cause | None = None) -> None:
        """A request of event ``request_id`` failed in a retryable way.

        Opens the circuit when the failures are systemic (see the module docstring). In
        half-open only the probe's own failure counts: a request sent before the circuit
        opened may fail late, and must not re-open it (or free the probe slot).
        """
        cause = cause or Cause()
        with self._changed:
            self._remember_failure(request_id, cause)
            if cause.outage:
                counts = self._endpoint_failures.setdefault(cause.endpoint, {})
                counts[request_id] = counts.get(request_id, 0) + 1
            if self._state is State.HALF_OPEN:
                if self._probe is not None and self._probe[0] == request_id:
                    self._probe = None
                    self._probe_failures[request_id] = self._probe_failures.get(request_id, 0) + 1
                    self._open_for = min(self._open_for * 2, self._max_open)
                    self._open(cause)
                return
            if self._state is not State.CLOSED:
                return
            self._failures.append(request_id)
            del self._failures[: -self._threshold]
            systemic = self._enough(len(self._failures), len(set(self._failures)))
            if systemic or self._broken_endpoint() is not None:
                self._open(cause)

    # ------------------------------------------------------------------ evidence

    def successes(self) -> dict[str, int]:
        """Successes so far per endpoint (monotonic counts; a copy)."""
        with self._changed:
            return dict(self._successes)

    def success_sent_after(self, endpoint: str, moment: float) -> bool:
        """Whether a request to ``endpoint`` sent after ``moment`` (breaker clock) succeeded."""
        with self._changed:
            return self._success_sent.get(endpoint, float("-inf")) > moment

    def last_failure(self, request_id: str) -> LastFailure | None:
        """Event ``request_id``'s last failure here (since ``forget``), if any."""
        with self._changed:
            return self._last_failure.get(request_id)

    def forget(self, request_id: str) -> None:
        """Drop event ``request_id``'s last failure (its attempt starts afresh)."""
        with self._changed:
            self._last_failure.pop(request_id, None)

    def release(self, request_id: str) -> None:
        """Event ``request_id``'s call is over: forget it, and drop it from endpoint streaks.

        An event that no longer retries (applied, dead-lettered, cancelled) is no longer
        evidence that an endpoint is broken: without it, a streak may stop holding the
        circuit open.
        """
        with self._changed:
            self._last_failure.pop(request_id, None)
            for endpoint, counts in list(self._endpoint_failures.items()):
                counts.pop(request_id, None)
                if not counts:
                    del self._endpoint_failures[endpoint]

    def _remember_failure(self, request_id: str, cause: Cause) -> None:
        self._last_failure[request_id] = LastFailure(cause, self._clock())
        self._last_failure.move_to_end(request_id)
        while len(self._last_failure) > _REMEMBERED_FAILURES:
            self._last_failure.popitem(last=False)

    # ------------------------------------------------------------------ waiting

    def wait(self, cancelled: threading.Event, *, request_id: str = "") -> None:
        """Block until event ``request_id`` may try again, or ``cancelled`` is set.

        Returns when the circuit is closed, or when a probe may go and this event is a
        candidate for it (see ``before_request``). While an event that has not yet failed a
        probe waits here, ``holding_back`` is true and the engine stops consuming.
        """
        with self._changed:
            self._waiting[request_id] = self._waiting.get(request_id, 0) + 1
        try:
            while not cancelled.is_set():
                with self._changed:
                    if self._state is State.CLOSED:
                        return
                    timeout = self._poll
                    if self._state is State.OPEN and not self._open_period_over():
                        remaining = self._hold - (self._clock() - self._opened_at)
                        timeout = min(self._poll, remaining)
                    elif self._probe_slot_free() and self._is_candidate(request_id):
                        return
                    self._changed.wait(timeout=timeout)
        finally:
            with self._changed:
                self._waiting[request_id] -= 1
                if not self._waiting[request_id]:
                    del self._waiting[request_id]
                self._changed.notify_all()  # another waiter may be a candidate now

    # ------------------------------------------------------------------ internals

    def _enough(self, failures: int, events: int) -> bool:
        """Enough consecutive failures, from two events or more (one, with a threshold of 1)."""
        return failures >= self._threshold and events >= min(2, self._threshold)

    def _broken_endpoint(self) -> str | None:
        """An endpoint with enough outage-class failures since its last success, if any.

        Counted per event, so that one waiter's many failed probes cannot crowd the others
        out of the count (as they would out of a window of the last N failures).
        """
        for endpoint, counts in self._endpoint_failures.items():
            if self._enough(sum(counts.values()), len(counts)):
                return endpoint
        return None

    def _open_period_over(self) -> bool:
        return self._clock() - self._opened_at >= self._hold

    def _probe_slot_free(self) -> bool:
        """No probe in flight, or the last one never reported back (its caller died)."""
        return self._probe is None or self._clock() - self._probe[1] > self._max_open

    def _is_candidate(self, request_id: str) -> bool:
        """No waiting event has failed fewer probes in this episode than ``request_id``."""
        failed = self._probe_failures.get(request_id, 0)
        return all(
            self._probe_failures.get(other, 0) >= failed
            for other in self._waiting
            if other != request_id
        )

    def _may_probe(self, request_id: str) -> bool:
        return self._probe_slot_free() and self._is_candidate(request_id)

    def _open(self, cause: Cause) -> None:
        asked = min(cause.retry_after or 0.0, self._max_open)
        self._hold = max(self._open_for, asked)
        self._opened_at = self._clock()
        self._failures.clear()
        self._probe = None
        self._set(State.OPEN, cause)

    def _set(self, state: State, cause: Cause) -> None:
        self._state = state
        self._changed.notify_all()
        if self._on_change is not None:
            self._on_change(self.service, state, cause)


class Breakers:
    """The breakers of every service, by name; built once at start-up."""

    def __init__(self, breakers: Iterable[CircuitBreaker] = ()) -> None:
        self._by_service = {breaker.service: breaker for breaker in breakers}

    def get(self, service: str) -> CircuitBreaker | None:
        """The breaker of ``service``, if it has one."""
        return self._by_service.get(service)

    def add(self, breaker: CircuitBreaker) -> CircuitBreaker:
        """Register ``breaker`` and return it."""
        self._by_service[breaker.service] = breaker
        return breaker

    def holding_back(self) -> bool:
        """True when any service is down with work waiting for it (the engine pauses)."""
        return any(breaker.holding_back for breaker in self._by_service.values())

    def successes(self) -> Mapping[str, dict[str, int]]:
        """Every breaker's success counts, by service (a snapshot)."""
        return {service: breaker.successes() for service, breaker in self._by_service.items()}

    def __iter__(self) -> Iterator[CircuitBreaker]:
        return iter(self._by_service.values())
