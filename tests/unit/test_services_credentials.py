"""The Credentials client: the seed's payloads, pagination, skips and failures."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from consumer.errors import (
    AuthRejectedError,
    RejectedError,
    ServiceUnavailableError,
    TransientError,
)
from consumer.services.bundle import Services, build_services
from consumer.services.credentials import ProgramWrite
from tests.fakes.openedx import FakeOpenEdx
from tests.fakes.openedx.settings import service_settings

RUN = "course-v1:edX+DemoX+1T2026"
PROGRAM = "8e9d7b1e-5a51-4b9b-9c2e-1b7a3c4d5e6f"


@pytest.fixture
def fake() -> Iterator[FakeOpenEdx]:
    fake = FakeOpenEdx.start()
    fake.add_user("alice", 42)
    fake.add_course_run(RUN)
    yield fake
    fake.stop()


def test_course_run_credential_payload_is_the_seeds(fake: FakeOpenEdx, services: Services) -> None:
    """A course-run credential is posted as the seed posts it, date_override as {"date": ...}."""
    services.credentials.post_course_run_credential(
        username="alice",
        course_run=RUN,
        mode="verified",
        status="awarded",
        date_override=datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC),
        request_id="e",
    )
    (write,) = fake.writes()
    assert write.payload == {
        "username": "alice",
        "status": "awarded",
        "credential": {"course_run_key": RUN, "mode": "verified", "type": "course-run"},
        "date_override": {"date": "2026-03-04T05:06:07Z"},
    }
    assert write.status == 201


def test_unknown_date_override_is_sent_as_json_null(fake: FakeOpenEdx, services: Services) -> None:
    """Without a date override the payload carries JSON null (which also clears an old override)."""
    services.credentials.post_course_run_credential(
        username="alice",
        course_run=RUN,
        mode="verified",
        status="revoked",
        date_override=None,
        request_id="e",
    )
    (write,) = fake.writes()
    assert write.payload["date_override"] is None
    assert fake.credentials("alice")[0].status == "revoked"


def test_program_award_and_revoke_payloads(fake: FakeOpenEdx, services: Services) -> None:
    """Program awards carry username, LMS user id and UUID; revocations add status revoked."""
    fake.add_program(PROGRAM, {"edX+DemoX": {RUN: "verified"}})
    for status in ("awarded", "revoked"):
        written = services.credentials.post_program_credential(
            username="alice", lms_user_id=42, program_uuid=PROGRAM, status=status, request_id="e"
        )
        assert written is ProgramWrite.APPLIED
    award, revoke = (write.payload for write in fake.writes())
    credential = {"type": "program", "program_uuid": PROGRAM}
    assert award == {"username": "alice", "lms_user_id": 42, "credential": credential}
    assert revoke == {**award, "status": "revoked"}


@pytest.mark.parametrize("status", [400, 404])
def test_unconfigured_program_is_a_skip_not_an_error(
    fake: FakeOpenEdx, services: Services, status: int
) -> None:
    """400 "No active ProgramCertificate" (older: 404) comes back as NOT_CONFIGURED."""
    fake.set_program_not_configured_status(status)
    written = services.credentials.post_program_credential(
        username="alice", lms_user_id=42, program_uuid=PROGRAM, status="awarded", request_id="e"
    )
    assert written is ProgramWrite.NOT_CONFIGURED
    assert fake.writes()[0].status == status


def test_other_400s_are_rejections(services: Services) -> None:
    """A run missing from Credentials' catalogue is a permanent rejection, not a skip."""
    with pytest.raises(RejectedError) as caught:
        services.credentials.post_course_run_credential(
            username="alice",
            course_run="course-v1:edX+Unknown+1T2026",
            mode="verified",
            status="awarded",
            date_override=None,
            request_id="e",
        )
    assert caught.value.status == 400
    assert "doesn't exist in the catalog" in str(caught.value)


def test_program_award_for_learner_without_user_row_is_a_500(
    fake: FakeOpenEdx, services: Services
) -> None:
    """Credentials' 500 for a learner without a user row is raised as transient."""
    fake.add_user("ghost", 99, in_credentials=False)
    fake.add_program(PROGRAM, {"edX+DemoX": {RUN: "verified"}})
    with pytest.raises(TransientError) as caught:
        services.credentials.post_program_credential(
            username="ghost", lms_user_id=99, program_uuid=PROGRAM, status="awarded", request_id="e"
        )
    assert caught.value.status == 500


def test_course_certificate_config_sends_all_four_fields(
    fake: FakeOpenEdx, services: Services
) -> None:
    """The config POST has course_id, certificate_type, the CAD (JSON null) and is_active."""
    services.credentials.post_course_certificate_config(
        course_run=RUN, certificate_type="verified", certificate_available_date=None, request_id="e"
    )
    services.credentials.post_course_certificate_config(
        course_run=RUN,
        certificate_type="verified",
        certificate_available_date=datetime(2026, 9, 1, tzinfo=UTC),
        request_id="e",
    )
    first, second = (write.payload for write in fake.writes())
    assert first == {
        "course_id": RUN,
        "certificate_type": "verified",
        "certificate_available_date": None,
        "is_active": True,
    }
    assert second["certificate_available_date"] == "2026-09-01T00:00:00Z"
    assert fake.course_certificate_configs()[RUN].certificate_available_date == datetime(
        2026, 9, 1, tzinfo=UTC
    )


def test_listing_follows_next_across_pages(fake: FakeOpenEdx, services: Services) -> None:
    """45 credentials come back complete from three 20-per-page requests."""
    for index in range(45):
        fake.add_credential(
            "alice", course_run=f"course-v1:edX+C{index:02d}+1T2026", mode="verified"
        )
    found = services.credentials.list_credentials(username="alice", request_id="e")
    pages = fake.requests(endpoint="credentials_list")
    assert len(found) == 45
    assert len({item.uuid for item in found}) == 45
    assert [record.status for record in pages] == [200, 200, 200]


def test_listing_does_not_ask_for_only_visible(fake: FakeOpenEdx, services: Services) -> None:
    """Credentials not yet visible (CAD in the future) are still read: no only_visible filter."""
    fake.add_course_certificate_config(
        RUN, "verified", certificate_available_date="2999-01-01T00:00:00Z"
    )
    fake.add_credential("alice", course_run=RUN, mode="verified")
    runs = services.credentials.awarded_course_runs(username="alice", request_id="e")
    assert runs == frozenset({RUN})


def test_awarded_programs_exclude_revoked_ones(fake: FakeOpenEdx, services: Services) -> None:
    """Only awarded program credentials count as already awarded."""
    fake.add_credential("alice", program_uuid=PROGRAM)
    fake.add_credential("alice", program_uuid="revoked-one", status="revoked")
    fake.add_credential("alice", course_run=RUN, mode="verified")
    awarded = services.credentials.awarded_program_uuids(username="alice", request_id="e")
    assert awarded == frozenset({PROGRAM})


def test_missing_view_permission_is_a_403_auth_rejection(fake: FakeOpenEdx) -> None:
    """A service user without view_usercredential gets a 403: outage-class, not the event's."""
    fake.add_oauth_client("no-view", "s3cret", username="admin", permissions=())
    services = build_services(
        service_settings(fake, oauth_client_id="no-view", oauth_client_secret="s3cret")
    )
    try:
        with pytest.raises(AuthRejectedError) as caught:
            services.credentials.list_credentials(username="alice", request_id="e")
    finally:
        services.close()
    assert caught.value.status == 403


def test_throttled_reads_carry_retry_after(fake: FakeOpenEdx, services: Services) -> None:
    """A 429 from Credentials is transient and carries the Retry-After seconds."""
    fake.set_error("credentials", 429, endpoint="credentials_list", retry_after=60)
    with pytest.raises(TransientError) as caught:
        services.credentials.list_credentials(username="alice", request_id="e")
    assert (caught.value.status, caught.value.retry_after) == (429, 60.0)


def test_credentials_outage_is_outage_class(fake: FakeOpenEdx, services: Services) -> None:
    """Credentials down with 503 is an outage the circuit breaker can see."""
    fake.set_outage("credentials", "503")
    with pytest.raises(ServiceUnavailableError):
        services.credentials.awarded_program_uuids(username="alice", request_id="e")
