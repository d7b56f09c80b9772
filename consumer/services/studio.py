"""Studio's course-details API: the only REST source of the certificate display behaviour.

``GET /api/contentstore/v1/course_details/{course_id}`` (no trailing slash) answers the
course's ``certificates_display_behavior`` (``end`` | ``end_with_date`` |
``early_no_info``), ``certificate_available_date``, ``self_paced`` and ``end_date``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from consumer.services.answers import AnswerReader
from consumer.services.http import HttpClient
from consumer.services.request_parts import path_segment

_DETAILS = AnswerReader("studio", "course_details")


@dataclass(frozen=True, slots=True)
class CourseDetails:
    """What the certificate-available-date rule needs from Studio."""

    course_run: str
    display_behavior: str | None
    certificate_available_date: datetime | None
    self_paced: bool
    end: datetime | None


class StudioClient:
    """Reads course details from Studio. Thread-safe; blocks for one request."""

    service = "studio"

    def __init__(self, http: HttpClient) -> None:
        self._http = http

    def course_details(self, *, course_run: str, request_id: str) -> CourseDetails:
        """The run's certificate settings. Raises the ``http`` errors (404 unknown run).

        A date that is not an ISO-8601 date or has no UTC form, or a field of another type,
        is a ``MalformedAnswerError`` (retried, then dead-lettered), never a crash.
        """
        reply = self._http.call(
            "GET",
            f"api/contentstore/v1/course_details/{path_segment(course_run)}",
            endpoint="course_details",
            request_id=request_id,
        )
        body = _DETAILS.mapping(reply.body, "the answer")
        return CourseDetails(
            course_run=course_run,
            display_behavior=_DETAILS.optional_text(
                body.get("certificates_display_behavior"), "certificates_display_behavior"
            ),
            certificate_available_date=_DETAILS.optional_date(
                body.get("certificate_available_date"), "certificate_available_date"
            ),
            self_paced=bool(_DETAILS.optional_bool(body.get("self_paced"), "self_paced")),
            end=_DETAILS.optional_date(body.get("end_date"), "end_date"),
        )
