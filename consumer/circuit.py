"""Circuit breakers: tell a dependency outage apart from a bad event.

When a service fails *systemically*, retrying each event against it only burns retry
budgets and, in the end, dead-letters a whole backlog that was fine. A breaker per service
watches the outcomes of every request to it (from all workers):

- closed: requests flow. It opens after ``failure_threshold`` consecutive failures that
  look systemic: every one outage-class (connection refused/reset, connect timeout, 502,
  503, 504), or coming from at least two distinct events (so one event that always gets
  a 500 — Credentials' 500 for a learner it has no user row for — cannot open it alone,
  and ends in the dead-letter topic after its own retries).
- open: no request is sent (``CircuitOpenError``); callers wait without spending retry
  budget, and the engine pauses consumption. After ``open_seconds`` one probe may go.
- half-open: exactly one request (the probe) is in flight. Success closes the circuit and
  releases every waiter; failure re-opens it for twice as long (up to ``max_open_seconds``).

Time is injected (``clock``) so tests drive the state machine without waiting.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable, Iterable, Iterator

from consumer.errors import CircuitOpenError

Clock = Callable[[], float]


class State(enum.Enum):
    """Breaker states; the value is what the metric exports (0 closed, 1 half-open, 2 open)."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


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
        on_change: Callable[[str, State], None] | None = None,
    ) -> None:
        self.service = service
        self._threshold = failure_threshold
        self._base_open = open_seconds
        self._max_open = max_open_seconds
        self._clock = clock
        self._on_change = on_change
        self._state = State.CLOSED
        self._failures: list[tuple[str, bool]] = []  # consecutive (request id, outage?)
        self._open_for = open_seconds
        self._opened_at = 0.0
        self._probe: tuple[str, float] | None = None  # (request id, sent at) in half-open
        self._waiters = 0
        self._changed = threading.Condition()

    @property
    def state(self) -> State:
        """The current state (open turns into half-open lazily, on the next request)."""
        return self._state

    @property
    def closed(self) -> bool:
        """True when requests flow freely."""
        return self._state is State.CLOSED

    def before_request(self, request_id: str) -> None:
        """Let a request go, or raise ``CircuitOpenError`` (nothing was sent)."""
        with self._changed:
            if self._state is State.CLOSED:
                return
            if self._state is State.OPEN and self._clock() - self._opened_at >= self._open_for:
                self._set(State.HALF_OPEN)
            if self._state is State.HALF_OPEN and self._probe_slot_free():
                self._probe = (request_id, self._clock())
                return
            raise CircuitOpenError(f"circuit of {self.service} is open", service=self.service)

    def _probe_slot_free(self) -> bool:
        """No probe in flight, or the last one never reported back (its caller died)."""
        return self._probe is None or self._clock() - self._probe[1] > self._max_open

    def record_success(self) -> None:
        """A request got an answer that shows the service is up (2xx, or a 4xx verdict)."""
        with self._changed:
            self._failures.clear()
            self._probe = None
            if self._state is not State.CLOSED:
                self._open_for = self._base_open
                self._set(State.CLOSED)

    def record_failure(self, request_id: str, *, outage: bool) -> None:
        """A request failed in a retryable way; open the circuit if the failures are systemic.

        In half-open only the probe's own failure counts: a request sent before the circuit
        opened may fail late, and must not re-open it (or free the probe slot).
        """
        with self._changed:
            if self._state is State.HALF_OPEN:
                if self._probe is not None and self._probe[0] == request_id:
                    self._probe = None
                    self._open_for = min(self._open_for * 2, self._max_open)
                    self._open()
                return
            if self._state is not State.CLOSED:
                return
            self._failures.append((request_id, outage))
            del self._failures[: -self._threshold]
            if len(self._failures) >= self._threshold and self._systemic():
                self._open()

    def wait(self, cancelled: threading.Event, *, poll_seconds: float = 0.5) -> None:
        """Block until a request may be tried again (closed, or a probe may go), or ``cancelled``.

        While anyone waits here, ``holding_back`` is true and the engine stops consuming.
        """
        with self._changed:
            self._waiters += 1
        try:
            while not cancelled.is_set():
                with self._changed:
                    if self._state is State.CLOSED:
                        return
                    timeout = poll_seconds
                    if self._state is State.OPEN:
                        remaining = self._open_for - (self._clock() - self._opened_at)
                        if remaining <= 0:
                            return
                        timeout = min(poll_seconds, remaining)
                    elif self._probe_slot_free():
                        return
                    self._changed.wait(timeout=timeout)
        finally:
            with self._changed:
                self._waiters -= 1

    @property
    def holding_back(self) -> bool:
        """True when the service is down and work is waiting for it: stop taking new work.

        A breaker nobody waits on (say, Discovery while its cached copy serves) does not
        hold consumption back; new work then probes the service in the normal way.
        """
        return self._state is not State.CLOSED and self._waiters > 0

    def _systemic(self) -> bool:
        """All outage-class, or spread over distinct events (two, or one when threshold is 1)."""
        distinct = len({request_id for request_id, _ in self._failures})
        return all(outage for _, outage in self._failures) or distinct >= min(2, self._threshold)

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._failures.clear()
        self._set(State.OPEN)

    def _set(self, state: State) -> None:
        self._state = state
        self._changed.notify_all()
        if self._on_change is not None:
            self._on_change(self.service, state)


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

    def __iter__(self) -> Iterator[CircuitBreaker]:
        return iter(self._by_service.values())
