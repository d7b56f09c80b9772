"""``check``: a token and one read per configured service, with hints and no secrets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from consumer.services.check import CheckResult, check_services
from tests.fakes.openedx import DEFAULT_CLIENT_SECRET, FakeOpenEdx
from tests.fakes.openedx.settings import service_settings


@pytest.fixture
def fake() -> Iterator[FakeOpenEdx]:
    fake = FakeOpenEdx.start(per_service_ports=True)
    yield fake
    fake.stop()


def by_service(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {result.service: result for result in results}


def printed(results: list[CheckResult]) -> str:
    return "\n".join(result.line() for result in results)


def test_every_configured_service_is_reached(fake: FakeOpenEdx) -> None:
    """With a healthy Open edX every service checks out, and the output never shows the secret."""
    results = check_services(service_settings(fake))
    assert [(result.service, result.ok) for result in results] == [
        ("oauth", True),
        ("credentials", True),
        ("lms", True),
        ("studio", True),
        ("discovery", True),
    ]
    assert DEFAULT_CLIENT_SECRET not in printed(results)


def test_missing_view_permission_says_what_to_grant(fake: FakeOpenEdx) -> None:
    """A service user without view_usercredential fails the Credentials check; the hint says why."""
    fake.add_oauth_client("no-view", "s3cret", username="admin", permissions=())
    results = by_service(
        check_services(
            service_settings(fake, oauth_client_id="no-view", oauth_client_secret="s3cret")
        )
    )
    credentials = results["credentials"]
    assert not credentials.ok
    assert credentials.hint is not None
    assert "view_usercredential" in credentials.hint
    assert "s3cret" not in credentials.line()


def test_rejected_client_secret_stops_at_the_token(fake: FakeOpenEdx) -> None:
    """A wrong client secret fails the oauth check and the others are reported as not checked."""
    results = check_services(service_settings(fake, oauth_client_secret="wrong-secret"))
    assert [(result.service, result.ok) for result in results] == [
        ("oauth", False),
        ("credentials", False),
        ("lms", False),
        ("studio", False),
        ("discovery", False),
    ]
    assert "wrong-secret" not in printed(results)
    assert by_service(results)["lms"].summary == "not checked: no token"


def test_unreachable_service_is_reported_as_such(fake: FakeOpenEdx) -> None:
    """A service refusing connections fails its own check only."""
    fake.set_outage("discovery", "refused")
    results = by_service(check_services(service_settings(fake)))
    assert (results["credentials"].ok, results["discovery"].ok) == (True, False)
    assert "connection_refused" in results["discovery"].summary


def test_optional_services_say_they_are_not_configured(fake: FakeOpenEdx) -> None:
    """Without Studio or Discovery the check says what the worker does instead."""
    results = by_service(
        check_services(service_settings(fake, studio_url=None, discovery_url=None))
    )
    assert "assumed 'end'" in results["studio"].summary
    assert "no program awards" in results["discovery"].summary
    assert fake.requests(service="studio") == []


def test_a_forbidden_service_names_the_permission_to_grant(fake: FakeOpenEdx) -> None:
    """A 403 names what to grant: is_staff for LMS/Studio, view_usercredential for Credentials."""
    fake.add_oauth_client("not-staff", "s3cret", username="plain", is_staff=False, permissions=())
    results = by_service(
        check_services(
            service_settings(fake, oauth_client_id="not-staff", oauth_client_secret="s3cret")
        )
    )
    studio, credentials = results["studio"], results["credentials"]
    assert (studio.ok, studio.summary) == (False, "forbidden (HTTP 403)")
    assert studio.hint is not None
    assert "is_staff" in studio.hint
    assert credentials.hint is not None
    assert "view_usercredential" in credentials.hint


def test_a_rejected_client_names_the_variables_to_check(fake: FakeOpenEdx) -> None:
    """A 401 from the token endpoint points at the client id and secret, not at JWT settings."""
    oauth = by_service(check_services(service_settings(fake, oauth_client_secret="wrong")))["oauth"]
    assert oauth.hint is not None
    assert "BACKEND_SERVICE_EDX_OAUTH2_SECRET" in oauth.hint
