"""The HTTP guard: cancelled work starts no request; circuit changes logged with a hint, counted."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from structlog.testing import capture_logs

from consumer.circuit import Cause, State
from consumer.config import CircuitSettings, RetrySettings
from consumer.errors import Cancelled, ServiceUnavailableError, TransientError
from consumer.guard import ServiceGuard, hint, opening_cause
from consumer.observability import Metrics
from consumer.retry import Cancellations, Retrier
from consumer.services.bundle import Services, build_services
from consumer.services.calls import CallRecord
from tests.fakes.openedx import FakeOpenEdx
from tests.fakes.openedx.settings import service_settings

EVENT = "event-1"


def failed(
    service: str,
    endpoint: str,
    request_id: str,
    *,
    status: int | None,
    reason: str,
    outage: bool = True,
) -> CallRecord:
    kind = ServiceUnavailableError if outage else TransientError
    error = kind("failed", service=service, status=status)
    error.reason = reason
    return CallRecord(
        service=service,
        endpoint=endpoint,
        method="GET",
        request_id=request_id,
        status=status,
        elapsed=0.01,
        error=error,
    )


def open_circuit(
    guard: ServiceGuard, service: str, endpoint: str, *, status: int | None, reason: str
) -> None:
    """Failures of two events, as many as the threshold: the circuit opens."""
    for index in range(CircuitSettings().failure_threshold):
        guard.after(failed(service, endpoint, f"e{index % 2}", status=status, reason=reason))


# ---------------------------------------------------------------------------- cancellation


@pytest.fixture
def guarded(fake: FakeOpenEdx) -> Iterator[tuple[Services, Retrier]]:
    """Clients of the fake behind a guard that knows the cancellations of the retrier's calls."""
    cancellations = Cancellations()
    guard = ServiceGuard.for_services(CircuitSettings(), Metrics(), cancellations=cancellations)
    services = build_services(service_settings(fake), guard=guard)
    yield services, Retrier(RetrySettings(), guard.breakers, cancellations=cancellations)
    services.close()


def test_a_cancelled_event_starts_no_further_request_of_its_attempt(
    fake: FakeOpenEdx, guarded: tuple[Services, Retrier]
) -> None:
    """Cancelled between two requests of one attempt, the event sends the first only.

    Before the fix, cancelling stopped retries only: the rest of a running attempt (the
    program writes after the reads, say) still went out after the partition's release.
    """
    services, retrier = guarded
    cancelled = threading.Event()

    def attempt() -> None:
        services.credentials.awarded_program_uuids(username="alice", request_id=EVENT)
        cancelled.set()  # the partition is revoked now
        services.credentials.awarded_program_uuids(username="bob", request_id=EVENT)

    with pytest.raises(Cancelled):
        retrier.call(attempt, cancelled, request_id=EVENT)
    sent = [record.username for record in fake.requests(service="credentials")]
    assert sent == ["alice"]


def test_requests_of_other_or_unregistered_work_go() -> None:
    """Only the cancelled call's request id is refused; others and unknown ids pass."""
    cancellations = Cancellations()
    guard = ServiceGuard.for_services(CircuitSettings(), Metrics(), cancellations=cancellations)
    stopped, running = threading.Event(), threading.Event()
    stopped.set()
    with (
        cancellations.registered("stopped", stopped),
        cancellations.registered("running", running),
    ):
        with pytest.raises(Cancelled):
            guard.before("credentials", "credentials_post", "stopped")
        guard.before("credentials", "credentials_post", "running")
        guard.before("credentials", "credentials_post", "program-cache-refresh-1")


# ---------------------------------------------------------------------------- circuit changes


@pytest.mark.parametrize(
    ("service", "endpoint", "status", "reason", "expected"),
    [
        pytest.param(
            "credentials",
            "credentials_post",
            401,
            "http_401",
            "BACKEND_SERVICE_EDX_OAUTH2_KEY and BACKEND_SERVICE_EDX_OAUTH2_SECRET",
            id="401: the OAuth client",
        ),
        pytest.param(
            "credentials",
            "credentials_list",
            403,
            "http_403",
            "view_usercredential permission, or make it a superuser",
            id="403 on reads: the Credentials permission",
        ),
        pytest.param(
            "lms",
            "course_modes",
            403,
            "http_403",
            "global staff and not a restricted application",
            id="403 elsewhere: staff, unrestricted",
        ),
        pytest.param(
            "studio",
            "course_details",
            None,
            "connection_refused",
            "check CMS_ROOT_URL and the network",
            id="refused: the URL variable",
        ),
        pytest.param(
            "credentials",
            "credentials_post",
            503,
            "http_503",
            "down or overloaded",
            id="503: down",
        ),
    ],
)
def test_an_opening_is_logged_with_service_status_endpoint_and_hint(
    service: str, endpoint: str, status: int | None, reason: str, expected: str
) -> None:
    """The circuit_changed line names what opened it and what to do; never a URL or user."""
    metrics = Metrics()
    guard = ServiceGuard.for_services(CircuitSettings(), metrics)
    with capture_logs() as logs:
        open_circuit(guard, service, endpoint, status=status, reason=reason)
    (line,) = [line for line in logs if line["event"] == "circuit_changed"]
    assert line["service"] == service
    assert line["state"] == "open"
    assert line["endpoint"] == endpoint
    assert line["status"] == status
    assert line["reason"] == reason
    assert expected in line["hint"]
    assert "://" not in str(line)  # no URL


def test_an_opening_is_counted_by_cause() -> None:
    """circuit_opened counts each opening by service and a bounded cause."""
    metrics = Metrics()
    guard = ServiceGuard.for_services(CircuitSettings(), metrics)
    open_circuit(guard, "credentials", "credentials_list", status=403, reason="http_403")
    open_circuit(guard, "lms", "course_modes", status=None, reason="connection_refused")

    def opened(service: str, cause: str) -> float | None:
        return metrics.registry.get_sample_value(
            "credentials_consumer_circuit_opened_total", {"service": service, "cause": cause}
        )

    assert opened("credentials", "http_403") == 1.0
    assert opened("lms", "connection_refused") == 1.0
    state = metrics.registry.get_sample_value(
        "credentials_consumer_circuit_state", {"service": "credentials"}
    )
    assert state == State.OPEN.value


@pytest.mark.parametrize(
    ("cause", "label"),
    [
        pytest.param(Cause(status=403), "http_403", id="a named status"),
        pytest.param(Cause(status=500), "http_500", id="500"),
        pytest.param(Cause(status=507), "http_5xx", id="another 5xx: its class"),
        pytest.param(Cause(status=418), "http_4xx", id="another 4xx: its class"),
        pytest.param(Cause(reason="read_timeout"), "read_timeout", id="an error reason"),
        pytest.param(Cause(reason="Weird Reason: http://x"), "other", id="anything else"),
    ],
)
def test_opening_causes_are_bounded(cause: Cause, label: str) -> None:
    """The cause label is a status, its class, or a snake_case reason: never free text."""
    assert opening_cause(cause) == label


def test_closing_and_probing_have_their_own_hints() -> None:
    """Half-open and closed lines say what is happening rather than what to fix."""
    assert "probes" in hint("credentials", State.HALF_OPEN, Cause())
    assert "resumes" in hint("credentials", State.CLOSED, Cause())
