"""The Studio client: course details, the only REST source of the display behaviour."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from consumer.errors import RejectedError, TransientError
from consumer.services.bundle import Services, build_services
from consumer.services.studio import CourseDetails
from tests.fakes.openedx import FakeOpenEdx
from tests.fakes.openedx.settings import service_settings

RUN = "course-v1:edX+DemoX+1T2026"


def test_course_details_are_read_without_a_trailing_slash(
    fake: FakeOpenEdx, services: Services
) -> None:
    """Course details (display behaviour, CAD, pacing, end) come from the slash-less URL."""
    fake.add_course_run(
        RUN,
        self_paced=False,
        end="2026-06-01T00:00:00Z",
        certificate_available_date="2026-07-01T12:00:00Z",
        display_behavior="end_with_date",
    )
    details = services.studio
    assert details is not None
    assert details.course_details(course_run=RUN, request_id="e") == CourseDetails(
        course_run=RUN,
        display_behavior="end_with_date",
        certificate_available_date=datetime(2026, 7, 1, 12, tzinfo=UTC),
        self_paced=False,
        end=datetime(2026, 6, 1, tzinfo=UTC),
    )
    (record,) = fake.requests(service="studio")
    assert record.status == 200


def test_unknown_course_is_a_rejection(services: Services) -> None:
    """A run Studio does not know is a 404 rejection."""
    assert services.studio is not None
    with pytest.raises(RejectedError) as caught:
        services.studio.course_details(course_run=RUN, request_id="e")
    assert caught.value.status == 404


def test_slow_studio_is_a_timeout(fake: FakeOpenEdx) -> None:
    """A Studio slower than the read timeout fails transiently."""
    fake.add_course_run(RUN)
    fake.set_latency("studio", 2.0)
    services = build_services(service_settings(fake, read_timeout=0.1))
    try:
        assert services.studio is not None
        with pytest.raises(TransientError) as caught:
            services.studio.course_details(course_run=RUN, request_id="e")
    finally:
        services.close()
    assert caught.value.reason == "read_timeout"


def test_studio_is_optional(fake: FakeOpenEdx) -> None:
    """Without CMS_ROOT_URL there is no Studio client."""
    services = build_services(service_settings(fake, studio_url=None))
    try:
        assert services.studio is None
    finally:
        services.close()
