"""The HTTP guard: every request counted, and the breakers fed and obeyed, through before/after.

Driven only through ``ServiceGuard``'s public hooks with real breakers, so the tests hold
whatever rule the breakers use to open (they are opened here the way any rule agrees on:
outage-class failures of two events, as many as the threshold).
"""

from __future__ import annotations

import pytest
from prometheus_client import Metric
from structlog.testing import capture_logs

from consumer.circuit import Breakers, CircuitBreaker
from consumer.config import CircuitSettings
from consumer.errors import (
    CircuitOpenError,
    ConsumerError,
    PermanentError,
    ServiceUnavailableError,
)
from consumer.guard import SERVICES, ServiceGuard, status_class
from consumer.observability import Metrics
from consumer.services.calls import CallRecord

THRESHOLD = CircuitSettings().failure_threshold


def call(
    service: str = "credentials",
    *,
    status: int | None = 200,
    error: ConsumerError | None = None,
    request_id: str = "event-1",
    endpoint: str = "credentials_list",
    elapsed: float = 0.25,
) -> CallRecord:
    return CallRecord(
        service=service,
        endpoint=endpoint,
        method="GET",
        request_id=request_id,
        status=status,
        elapsed=elapsed,
        error=error,
    )


def outage(service: str = "credentials", request_id: str = "event-1") -> CallRecord:
    error = ServiceUnavailableError("503", service=service, status=503)
    return call(service, status=503, error=error, request_id=request_id)


def rejected(service: str = "credentials") -> CallRecord:
    return call(service, status=400, error=PermanentError("400", service=service, status=400))


def open_circuit(guard: ServiceGuard, service: str = "credentials") -> None:
    """Outage-class failures of two events, as many as the threshold."""
    for index in range(THRESHOLD):
        guard.after(outage(service, request_id=f"event-{index % 2}"))


def requests(metrics: Metrics, service: str, endpoint: str, status: str) -> float:
    labels = {"service": service, "endpoint": endpoint, "status_class": status}
    return (
        metrics.registry.get_sample_value("credentials_consumer_http_requests_total", labels) or 0
    )


def latency_count(metrics: Metrics, service: str, endpoint: str) -> float:
    """Observations of the latency histogram (read through the metric, whatever its name)."""
    families: list[Metric] = list(metrics.http_latency.collect())
    return sum(
        sample.value
        for family in families
        for sample in family.samples
        if sample.name.endswith("_count")
        and sample.labels == {"service": service, "endpoint": endpoint}
    )


@pytest.mark.parametrize(
    ("status", "expected"),
    [(200, "2xx"), (204, "2xx"), (404, "4xx"), (429, "4xx"), (503, "5xx"), (None, "error")],
)
def test_status_class_is_the_hundreds_or_error_without_an_answer(
    status: int | None, expected: str
) -> None:
    """A bounded label: 2xx, 4xx, 5xx ... or error when no answer came."""
    assert status_class(call(status=status)) == expected


def test_for_services_builds_a_closed_breaker_per_service_and_exports_it() -> None:
    """Every Open edX service gets a breaker, and its gauge starts at closed (0)."""
    metrics = Metrics()

    guard = ServiceGuard.for_services(CircuitSettings(), metrics)

    for service in SERVICES:
        breaker = guard.breakers.get(service)
        assert breaker is not None
        assert breaker.closed
        value = metrics.registry.get_sample_value(
            "credentials_consumer_circuit_state", {"service": service}
        )
        assert value == 0


def test_every_request_is_counted_by_status_class_with_its_latency() -> None:
    """after() counts each request under its service, endpoint and status class."""
    metrics = Metrics()
    guard = ServiceGuard.for_services(CircuitSettings(), metrics)

    guard.after(call("lms", status=200, endpoint="user"))
    guard.after(call("lms", status=200, endpoint="user"))
    guard.after(
        call(
            "lms",
            status=None,
            error=ServiceUnavailableError("refused", service="lms"),
            endpoint="user",
        )
    )
    guard.after(call("studio", status=404, endpoint="course"))

    assert requests(metrics, "lms", "user", "2xx") == 2
    assert requests(metrics, "lms", "user", "error") == 1
    assert requests(metrics, "studio", "course", "4xx") == 1
    assert latency_count(metrics, "lms", "user") == 3


def test_outage_failures_open_the_circuit_and_before_then_refuses() -> None:
    """Failures of the service open its breaker; before() then refuses requests to it only."""
    metrics = Metrics()
    guard = ServiceGuard.for_services(CircuitSettings(), metrics)
    guard.before("credentials", "credentials_list", "event-9")  # closed: goes

    with capture_logs() as logs:
        open_circuit(guard, "credentials")

    with pytest.raises(CircuitOpenError):
        guard.before("credentials", "credentials_list", "event-9")
    guard.before("lms", "user", "event-9")  # another service is not affected
    state = metrics.registry.get_sample_value(
        "credentials_consumer_circuit_state", {"service": "credentials"}
    )
    assert state == 2
    changes = [line for line in logs if line["event"] == "circuit_changed"]
    assert [(line["service"], line["state"]) for line in changes] == [("credentials", "open")]


def test_a_4xx_answer_counts_as_the_service_being_up() -> None:
    """A rejection is an answer: it ends a run of failures, so they do not add up to an opening."""
    guard = ServiceGuard.for_services(CircuitSettings(), Metrics())

    for index in range(THRESHOLD - 1):
        guard.after(outage(request_id=f"event-{index % 2}"))
    guard.after(rejected())
    for index in range(THRESHOLD - 1):
        guard.after(outage(request_id=f"event-{index % 2}"))

    breaker = guard.breakers.get("credentials")
    assert breaker is not None
    assert breaker.closed
    guard.before("credentials", "credentials_list", "event-9")


def test_a_service_without_a_breaker_is_only_counted() -> None:
    """A call to a service the guard has no breaker for is counted and never refused."""
    metrics = Metrics()
    guard = ServiceGuard(Breakers(), metrics)

    for index in range(THRESHOLD * 2):
        guard.after(outage("elsewhere", request_id=f"event-{index % 2}"))

    guard.before("elsewhere", "any", "event-9")
    assert requests(metrics, "elsewhere", "credentials_list", "5xx") == THRESHOLD * 2


def test_the_guard_uses_the_breakers_it_was_given() -> None:
    """The engine and the retrier see the very breakers the guard feeds."""
    breaker = CircuitBreaker("credentials", failure_threshold=THRESHOLD)
    breakers = Breakers([breaker])
    guard = ServiceGuard(breakers, Metrics())

    open_circuit(guard)

    assert guard.breakers is breakers
    assert not breaker.closed
