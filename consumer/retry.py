"""Retrying one call: exponential backoff with full jitter, bounded by attempts and time.

The waits come from the ``backoff`` library's generator and jitter; the loop is ours
because it must do what ``backoff.on_exception`` cannot (ADR 0004):

- count a failure against the call's budget only when it belongs to the event. An *own*
  failure (500, 408, 429, read timeout, malformed answer: any ``TransientError`` that is not
  outage-class) always counts, whatever the circuit's state. An *outage-class* failure
  (``ServiceUnavailableError``: refused, reset, connect timeout, DNS, TLS, 502/503/504,
  401/403) counts only when a request to the same endpoint *sent after* this event's
  previous failure there succeeded — proof that the service is up for others now; the
  event's first outage-class failure on an endpoint never counts (successes before it, even
  answered just after it, show only that the service was up before). A real outage, where
  nothing sent succeeds, therefore never dead-letters anything, whatever its ``Retry-After``;
- honour ``Retry-After`` (the wait is at least what the service asked for; a counted
  failure asking for more than the budget left gives up at once, an uncounted one waits);
- wait on the service's breaker while its circuit is open, outside the time budget;
- never start an attempt once the call is cancelled (shutdown, partition revoked), and
  stop waiting at once when it is: cancelled means "no new request starts". With
  ``Cancellations`` shared with the HTTP guard, that holds for every request of an
  attempt, not only its first.

Only ``TransientError`` is retried; anything else passes through untouched. ``sleep``,
``clock`` and ``jitter`` are injected so tests assert the exact sequence of waits.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import backoff

from consumer.circuit import Breakers, Cause, CircuitBreaker, LastFailure
from consumer.config import RetrySettings
from consumer.errors import (
    Cancelled,
    CircuitOpenError,
    RetriesExhausted,
    ServiceUnavailableError,
    TransientError,
)

T = TypeVar("T")


class Cancellations:
    """The cancellation flags of calls in progress, by request id (the event id).

    The retrier registers each call's flag; the HTTP guard asks ``cancelled`` before every
    request and refuses to start one for cancelled work. A producer may repeat an id, so an
    id counts as cancelled only when every call registered under it is. Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flags: dict[str, list[threading.Event]] = {}

    @contextlib.contextmanager
    def registered(self, request_id: str, cancelled: threading.Event) -> Iterator[None]:
        """Register ``cancelled`` under ``request_id`` for the duration of the block."""
        with self._lock:
            self._flags.setdefault(request_id, []).append(cancelled)
        try:
            yield
        finally:
            with self._lock:
                flags = self._flags[request_id]
                flags.remove(cancelled)
                if not flags:
                    del self._flags[request_id]

    def cancelled(self, request_id: str) -> bool:
        """True when work is registered under ``request_id`` and all of it is cancelled."""
        with self._lock:
            flags = self._flags.get(request_id, [])
            return bool(flags) and all(flag.is_set() for flag in flags)


def _interruptible_sleep(cancelled: threading.Event, seconds: float) -> bool:
    return cancelled.wait(seconds)


@dataclass(slots=True)
class _Call:
    """The state of one ``Retrier.call``: its waits and what it has spent."""

    cancelled: threading.Event
    request_id: str | None
    waits: Iterator[float]
    started_with: dict[str, dict[str, int]]  # success counts per service when the call began
    seen: dict[tuple[str, str], float] = field(default_factory=dict)  # last failure's time
    attempts: int = 0
    charged: float = 0.0
    first_failure: float | None = None


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
    cancellations: Cancellations | None = None

    def call(
        self, fn: Callable[[], T], cancelled: threading.Event, *, request_id: str | None = None
    ) -> T:
        """Call ``fn`` until it returns, raises a non-transient error, or the budget ends.

        ``request_id`` (the event id every request of ``fn`` carries) ties the requests'
        outcomes, as the breakers saw them, to this call. Raises ``RetriesExhausted``
        (budget spent) or ``Cancelled`` (``cancelled`` is set: no attempt starts then, not
        even the first).
        """
        if request_id is None:
            return self._loop(fn, cancelled, None)
        registered = (
            self.cancellations.registered(request_id, cancelled)
            if self.cancellations is not None
            else contextlib.nullcontext()
        )
        try:
            with registered:
                return self._loop(fn, cancelled, request_id)
        finally:
            for breaker in self.breakers:
                breaker.release(request_id)

    def _forget(self, request_id: str | None) -> None:
        if request_id is not None:
            for breaker in self.breakers:
                breaker.forget(request_id)

    def _loop(self, fn: Callable[[], T], cancelled: threading.Event, request_id: str | None) -> T:
        waits = backoff.expo(
            base=2,
            factor=self.settings.initial_seconds,
            max_value=self.settings.max_backoff_seconds,
        )
        next(waits)  # backoff's generators are primed before the first value
        call = _Call(cancelled, request_id, waits, dict(self.breakers.successes()))
        while True:
            if cancelled.is_set():
                raise Cancelled
            self._forget(request_id)  # what the breakers remember of it is this attempt's
            began = self.clock()
            try:
                return fn()
            except TransientError as error:
                self._after_failure(error, self.clock() - began, call)

    def _after_failure(self, error: TransientError, took: float, call: _Call) -> None:
        """Wait until the next attempt may go; raise ``Cancelled`` or ``RetriesExhausted``."""
        if call.cancelled.is_set():
            raise Cancelled from error
        breaker = self.breakers.get(error.service)
        recorded = None
        if breaker is not None and call.request_id is not None:
            recorded = breaker.last_failure(call.request_id)
        if isinstance(error, CircuitOpenError) and breaker is not None:
            if recorded is None:  # refused before anything of this attempt failed
                breaker.wait(call.cancelled, request_id=call.request_id or "")
                return
            # A request of this attempt failed, then the circuit refused the next one: the
            # attempt failed with that request's failure (else an event whose own requests
            # fail could hide behind a circuit that keeps re-opening).
            error = _failure_as_error(error.service, recorded.cause)
        failed_at = self.wall_clock()
        if call.first_failure is None:
            call.first_failure = failed_at
        counted = self._counts(error, breaker, recorded, call)
        if counted:
            call.attempts += 1
            call.charged += took
            self._give_up_if_spent(error, call, failed_at)
        if breaker is not None and not breaker.closed:
            breaker.wait(call.cancelled, request_id=call.request_id or "")  # it paces retries
            return
        self._back_off(error, call, charged=counted)

    def _back_off(self, error: TransientError, call: _Call, *, charged: bool) -> None:
        """Sleep the jittered backoff, at least ``Retry-After``; charge it if the failure counts."""
        delay = self.jitter(next(call.waits))
        if error.retry_after is not None:
            delay = max(delay, error.retry_after)
        if charged:
            delay = min(delay, self.settings.max_seconds - call.charged)
        if self.on_retry is not None:
            self.on_retry(error, delay)
        slept_from = self.clock()
        if self.sleep(call.cancelled, delay):
            raise Cancelled from error
        if charged:
            call.charged += self.clock() - slept_from

    def _give_up_if_spent(self, error: TransientError, call: _Call, failed_at: float) -> None:
        """Raise ``RetriesExhausted`` when a counted failure leaves no budget to retry in."""
        spent = call.attempts >= self.settings.max_attempts
        spent = spent or call.charged >= self.settings.max_seconds
        remaining = self.settings.max_seconds - call.charged
        # Asked to wait past the budget: retrying sooner would only be refused.
        too_long = error.retry_after is not None and error.retry_after > remaining
        if spent or too_long:
            first = call.first_failure if call.first_failure is not None else failed_at
            raise RetriesExhausted(
                error, attempts=call.attempts, first_failure=first, last_failure=failed_at
            ) from error

    @staticmethod
    def _counts(
        error: TransientError,
        breaker: CircuitBreaker | None,
        recorded: LastFailure | None,
        call: _Call,
    ) -> bool:
        """Whether ``error`` counts against the budget (the module docstring's rule)."""
        if not isinstance(error, ServiceUnavailableError):
            return True  # the event's own failure (or a refusal no breaker explains)
        if breaker is None or call.request_id is None:
            return True  # no way to tell an outage: the budget bounds the call
        started = call.started_with.get(breaker.service, {})
        if recorded is None:  # not seen by the breaker: any success of the service is evidence
            return sum(breaker.successes().values()) > sum(started.values())
        endpoint = recorded.cause.endpoint
        previous = call.seen.get((breaker.service, endpoint))
        call.seen[(breaker.service, endpoint)] = recorded.at
        if previous is None:
            return False  # a first failure there: nothing since shows the service up for others
        return breaker.success_sent_after(endpoint, previous)


def _failure_as_error(service: str, cause: Cause) -> TransientError:
    """A request's failure as the breaker recorded it, as the error that ends an attempt."""
    kind = ServiceUnavailableError if cause.outage else TransientError
    return kind(
        f"{service} {cause.endpoint}: {cause.reason or 'failed'} (its circuit then opened)",
        service=service,
        status=cause.status,
        retry_after=cause.retry_after,
        reason=cause.reason or None,
    )
