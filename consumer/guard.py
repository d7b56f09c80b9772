"""The hooks around every HTTP request: cancellation, circuit breakers and HTTP metrics.

``services.http`` calls ``before`` and ``after`` for each request it sends; this guard
turns them into decisions and Prometheus samples:

- ``before`` refuses a request whose work was cancelled (``errors.Cancelled``: a revoked
  partition's event starts nothing new) or whose service's circuit is open
  (``CircuitOpenError``);
- ``after`` counts the request and tells the breaker how it went. A 4xx verdict counts as
  the service being *up* (it answered); only retryable failures count against its circuit.

Every circuit change is logged with the service, the new state, the status or error reason
that caused it, the endpoint and a hint for the operator, and each opening is counted by
cause. Never a URL, a username or a body.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import structlog

from consumer.circuit import Breakers, Cause, CircuitBreaker, State
from consumer.config import CircuitSettings
from consumer.errors import Cancelled, TransientError
from consumer.observability import Metrics
from consumer.retry import Cancellations
from consumer.services.calls import CallRecord
from consumer.services.settings import ServiceSettings

log = structlog.get_logger("consumer.guard")

SERVICES = ("oauth", "credentials", "lms", "studio", "discovery")

# Where each service's address is configured, for hints (the variable, never its value).
_URL_VARIABLES = {
    "oauth": "BACKEND_SERVICE_EDX_OAUTH2_PROVIDER_URL",
    "credentials": "CREDENTIALS_INTERNAL_SERVICE_URL",
    "lms": "LMS_ROOT_URL",
    "studio": "CMS_ROOT_URL",
    "discovery": "COURSE_CATALOG_API_URL",
}
_NAMED_STATUSES = frozenset({401, 403, 408, 429, 500, 502, 503, 504})
_CONNECTION_REASONS = frozenset(
    {
        "connection_refused",
        "connection_reset",
        "connection_error",
        "connect_timeout",
        "dns_failure",
        "tls_error",
        "proxy_error",
    }
)
_REASON = re.compile(r"[a-z0-9_]{1,40}")


def configured_services(services: ServiceSettings | None) -> tuple[str, ...]:
    """The services this worker calls: none in dry-run; Studio, Discovery only when set."""
    if services is None:
        return ()
    optional = {"studio": services.studio_url, "discovery": services.discovery_url}
    return tuple(name for name in SERVICES if name not in optional or optional[name])


def status_class(record: CallRecord) -> str:
    """``2xx``, ``4xx``, ``5xx`` ... or ``error`` when no answer came."""
    return f"{record.status // 100}xx" if record.status else "error"


def opening_cause(cause: Cause) -> str:
    """A bounded label for what opened a circuit: ``http_403``, ``http_5xx``, ``read_timeout``."""
    if cause.status is not None:
        if cause.status in _NAMED_STATUSES:
            return f"http_{cause.status}"
        return f"http_{cause.status // 100}xx"
    return cause.reason if _REASON.fullmatch(cause.reason) else "other"


_STATE_HINTS = {
    State.CLOSED: "the service answers again; waiting work resumes",
    State.HALF_OPEN: "one request probes whether the service is back",
}
_READ_PERMISSION_HINT = (
    "the service user may not read other learners' credentials: grant it Credentials' "
    "view_usercredential permission, or make it a superuser"
)
_DOWN_HINT = "the service or its proxy is down or overloaded; it is probed until it answers"
_STATUS_HINTS = {
    401: "the OAuth client id/secret is rejected: check BACKEND_SERVICE_EDX_OAUTH2_KEY and "
    "BACKEND_SERVICE_EDX_OAUTH2_SECRET",
    403: "the service user must be global staff and not a restricted application",
    502: _DOWN_HINT,
    503: _DOWN_HINT,
    504: _DOWN_HINT,
}
_OWN_FAILURES_HINT = (
    "requests of several events fail; their own retry budgets run down, and they are "
    "dead-lettered if it lasts"
)


def hint(service: str, state: State, cause: Cause) -> str:
    """What an operator should look at, for a circuit that changed to ``state``."""
    if state in _STATE_HINTS:
        return _STATE_HINTS[state]
    if cause.status == 403 and cause.endpoint == "credentials_list":
        return _READ_PERMISSION_HINT
    if cause.reason in _CONNECTION_REASONS:
        variable = _URL_VARIABLES.get(service, "the service URL")
        return f"the service cannot be reached: check {variable} and the network"
    return _STATUS_HINTS.get(cause.status or 0, _OWN_FAILURES_HINT)


class ServiceGuard:
    """Cancellation, circuit breaker and metrics for every service call; thread-safe."""

    def __init__(
        self,
        breakers: Breakers,
        metrics: Metrics,
        *,
        cancellations: Cancellations | None = None,
    ) -> None:
        self._breakers = breakers
        self._metrics = metrics
        self._cancellations = cancellations
        # Each (service, endpoint[, status class]) series is looked up once: ``labels()``
        # takes a lock and builds a key on every call. Bounded: the worker's own endpoints.
        self._counted: dict[tuple[str, str, str], Any] = {}
        self._timed: dict[tuple[str, str], Any] = {}

    @classmethod
    def for_services(
        cls,
        settings: CircuitSettings,
        metrics: Metrics,
        services: Sequence[str] = SERVICES,
        *,
        cancellations: Cancellations | None = None,
    ) -> ServiceGuard:
        """One breaker per configured service, exporting its state and logging its changes.

        A service that is not configured is never called: it gets no breaker and no series
        (a circuit "closed" for a service that does not exist would only mislead).
        """

        def changed(service: str, state: State, cause: Cause) -> None:
            metrics.circuit_state.labels(service).set(state.value)
            if state is State.OPEN:
                metrics.circuit_opened.labels(service, opening_cause(cause)).inc()
            emit = log.warning if state is State.OPEN else log.info
            emit(
                "circuit_changed",
                service=service,
                state=state.name.lower().replace("_", "-"),
                endpoint=cause.endpoint or None,
                status=cause.status,
                reason=cause.reason or None,
                retry_after=cause.retry_after,
                hint=hint(service, state, cause),
            )

        breakers = Breakers(
            CircuitBreaker(
                service,
                failure_threshold=settings.failure_threshold,
                open_seconds=settings.open_seconds,
                max_open_seconds=settings.max_open_seconds,
                on_change=changed,
            )
            for service in services
        )
        for service in services:
            metrics.circuit_state.labels(service).set(State.CLOSED.value)
        return cls(breakers, metrics, cancellations=cancellations)

    @property
    def breakers(self) -> Breakers:
        """The breakers, for the engine (pausing) and the retrier (waiting, evidence)."""
        return self._breakers

    def before(self, service: str, endpoint: str, request_id: str) -> None:
        """Refuse the request: ``Cancelled`` for cancelled work, ``CircuitOpenError`` if open."""
        if self._cancellations is not None and self._cancellations.cancelled(request_id):
            raise Cancelled(f"{service} {endpoint}: the event was cancelled; request not sent")
        breaker = self._breakers.get(service)
        if breaker is not None:
            breaker.before_request(request_id)

    def after(self, record: CallRecord) -> None:
        """Count the request and tell the breaker whether the service looked up."""
        counted_as = (record.service, record.endpoint, status_class(record))
        counter = self._counted.get(counted_as)
        if counter is None:
            counter = self._counted[counted_as] = self._metrics.http_requests.labels(*counted_as)
        counter.inc()
        timed_as = (record.service, record.endpoint)
        timer = self._timed.get(timed_as)
        if timer is None:
            timer = self._timed[timed_as] = self._metrics.http_latency.labels(*timed_as)
        timer.observe(record.elapsed)
        breaker: CircuitBreaker | None = self._breakers.get(record.service)
        if breaker is None:
            return
        if isinstance(record.error, TransientError):
            breaker.record_failure(
                record.request_id,
                Cause(
                    endpoint=record.endpoint,
                    status=record.status,
                    reason=record.error.reason,
                    retry_after=record.error.retry_after,
                    outage=record.outage,
                ),
            )
        else:
            breaker.record_success(
                Cause(endpoint=record.endpoint, status=record.status), elapsed=record.elapsed
            )
