"""Studio's course-details API: the only REST source of the certificate display behaviour.

``GET /api/contentstore/v1/course_details/{course_id}`` (no trailing slash) answers the
course's ``certificates_display_behavior`` (``end`` | ``end_with_date`` |
``early_no_info``), ``certificate_available_date``, ``self_paced`` and ``end_date``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from consumer.errors import TransientError
from consumer.services.http import HttpClient, path_segment


@dataclass(frozen=True, slots=True)
class CourseDetails:
    """What the certificate-available-date rule needs from Studio."""

    course_run: str
    display_behavior: str | None
    certificate_available_date: datetime | None
    self_paced: bool
    end: datetime | None


def parse_datetime(value: object) -> datetime | None:
    """An ISO-8601 value from a service as an aware UTC datetime (naive means UTC)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class StudioClient:
    """Reads course details from Studio. Thread-safe; blocks for one request."""

    service = "studio"

    def __init__(self, http: HttpClient) -> None:
        self._http = http

    def course_details(self, *, course_run: str, request_id: str) -> CourseDetails:
        """The run's certificate settings. Raises the ``http`` errors (404 unknown run)."""
        reply = self._http.call(
            "GET",
            f"api/contentstore/v1/course_details/{path_segment(course_run)}",
            endpoint="course_details",
            request_id=request_id,
        )
        body = reply.body
        if not isinstance(body, dict):
            raise TransientError(
                "studio answered course details without an object", service="studio"
            )
        behavior = body.get("certificates_display_behavior")
        return CourseDetails(
            course_run=course_run,
            display_behavior=str(behavior) if behavior else None,
            certificate_available_date=parse_datetime(body.get("certificate_available_date")),
            self_paced=bool(body.get("self_paced")),
            end=parse_datetime(body.get("end_date")),
        )
