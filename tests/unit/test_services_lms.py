"""The LMS client: learner certificates and course modes."""

from __future__ import annotations

import pytest

from consumer.errors import RejectedError, ServiceUnavailableError, TransientError
from consumer.programs import PassingCertificate
from consumer.services.bundle import Services
from tests.fakes.openedx import FakeOpenEdx

RUN = "course-v1:edX+DemoX+1T2026"
RUN2 = "course-v1:edX+Second+1T2026"


def test_passing_certificates_come_from_the_certificates_list(
    fake: FakeOpenEdx, services: Services
) -> None:
    """The learner's passing certificates (with their modes) are read from the LMS list."""
    fake.add_course_run(RUN)
    fake.add_course_run(RUN2)
    fake.add_lms_certificate("alice", RUN, mode="verified", status="downloadable")
    fake.add_lms_certificate("alice", RUN2, mode="no-id-professional", status="generating")
    fake.add_lms_certificate("alice", "course-v1:edX+Failed+1T2026", status="notpassing")
    found = services.lms.passing_certificates(username="alice", request_id="e")
    assert sorted(found, key=lambda cert: cert.course_run) == [
        PassingCertificate(course_run=RUN, mode="verified"),
        PassingCertificate(course_run=RUN2, mode="no-id-professional"),
    ]


def test_usernames_are_quoted_into_the_path(fake: FakeOpenEdx, services: Services) -> None:
    """A username with URL-special characters reaches the right learner's list."""
    fake.add_course_run(RUN)
    fake.add_lms_certificate("al ice+x@y.org", RUN)
    found = services.lms.passing_certificates(username="al ice+x@y.org", request_id="e")
    assert [cert.course_run for cert in found] == [RUN]


def test_course_modes_are_the_mode_slugs(fake: FakeOpenEdx, services: Services) -> None:
    """Course modes come back as slugs in the LMS's order."""
    fake.add_course_run(RUN, modes=("audit", "verified", "credit"))
    assert services.lms.course_modes(course_run=RUN, request_id="e") == (
        "audit",
        "verified",
        "credit",
    )


def test_unknown_course_is_a_rejection(services: Services) -> None:
    """Course modes of a run the LMS does not know are a 404 rejection."""
    with pytest.raises(RejectedError) as caught:
        services.lms.course_modes(course_run="course-v1:edX+Nope+1T2026", request_id="e")
    assert caught.value.status == 404


def test_lms_outage_and_errors_are_classified(fake: FakeOpenEdx, services: Services) -> None:
    """An LMS 502 is an outage; a 500 is transient."""
    fake.add_course_run(RUN)
    fake.set_error("lms", 502, times=1)
    with pytest.raises(ServiceUnavailableError):
        services.lms.course_modes(course_run=RUN, request_id="e")
    fake.set_error("lms", 500, times=1)
    with pytest.raises(TransientError):
        services.lms.course_modes(course_run=RUN, request_id="e")
    assert services.lms.course_modes(course_run=RUN, request_id="e") == ("audit", "verified")
