"""The hooks around every HTTP request: circuit breakers and HTTP metrics.

``services.http`` calls ``before`` and ``after`` for each request it sends; this guard
turns them into breaker decisions and Prometheus samples. A 4xx verdict counts as the
service being *up* (it answered); only retryable failures count against its circuit.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from consumer.circuit import Breakers, CircuitBreaker, State
from consumer.config import CircuitSettings
from consumer.errors import TransientError
from consumer.observability import Metrics
from consumer.services.http import CallRecord
from consumer.services.settings import ServiceSettings

log = structlog.get_logger("consumer.guard")

SERVICES = ("oauth", "credentials", "lms", "studio", "discovery")


def configured_services(services: ServiceSettings | None) -> tuple[str, ...]:
    """The services this worker calls: none in dry-run; Studio, Discovery only when set."""
    if services is None:
        return ()
    optional = {"studio": services.studio_url, "discovery": services.discovery_url}
    return tuple(name for name in SERVICES if name not in optional or optional[name])


def status_class(record: CallRecord) -> str:
    """``2xx``, ``4xx``, ``5xx`` ... or ``error`` when no answer came."""
    return f"{record.status // 100}xx" if record.status else "error"


class ServiceGuard:
    """Circuit breaker and metrics for every service call; thread-safe."""

    def __init__(self, breakers: Breakers, metrics: Metrics) -> None:
        self._breakers = breakers
        self._metrics = metrics

    @classmethod
    def for_services(
        cls, settings: CircuitSettings, metrics: Metrics, services: Sequence[str] = SERVICES
    ) -> ServiceGuard:
        """One breaker per configured service, exporting its state as a gauge.

        A service that is not configured is never called: it gets no breaker and no series
        (a circuit "closed" for a service that does not exist would only mislead).
        """

        def exported(service: str, state: State) -> None:
            metrics.circuit_state.labels(service).set(state.value)
            log.warning(
                "circuit_changed", service=service, state=state.name.lower().replace("_", "-")
            )

        breakers = Breakers(
            CircuitBreaker(
                service,
                failure_threshold=settings.failure_threshold,
                open_seconds=settings.open_seconds,
                max_open_seconds=settings.max_open_seconds,
                on_change=exported,
            )
            for service in services
        )
        for service in services:
            metrics.circuit_state.labels(service).set(State.CLOSED.value)
        return cls(breakers, metrics)

    @property
    def breakers(self) -> Breakers:
        """The breakers, for the engine (pausing) and the retrier (waiting)."""
        return self._breakers

    def before(self, service: str, endpoint: str, request_id: str) -> None:  # noqa: ARG002 - the protocol's
        """Refuse the request (``CircuitOpenError``) while the service's circuit is open."""
        breaker = self._breakers.get(service)
        if breaker is not None:
            breaker.before_request(request_id)

    def after(self, record: CallRecord) -> None:
        """Count the request and tell the breaker whether the service looked up."""
        self._metrics.http_requests.labels(
            record.service, record.endpoint, status_class(record)
        ).inc()
        self._metrics.http_latency.labels(record.service, record.endpoint).observe(record.elapsed)
        breaker: CircuitBreaker | None = self._breakers.get(record.service)
        if breaker is None:
            return
        if isinstance(record.error, TransientError):
            breaker.record_failure(record.request_id, outage=record.outage)
        else:
            breaker.record_success()
