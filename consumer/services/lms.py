"""The LMS APIs the worker reads: a learner's certificates and a course's modes.

``GET /api/certificates/v0/certificates/{username}/`` is a plain list of the learner's
*passing* certificates in courses whose certificates are already viewable; it is the
alternative completion source (``completion_source="lms"``). ``GET
/api/course_modes/v1/courses/{course_id}/`` is a plain list of the course's modes; the
certificate type of a course-certificate config is chosen from it by ``rules``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from consumer.errors import TransientError
from consumer.programs import PassingCertificate
from consumer.services.http import HttpClient, path_segment

PASSING_STATUSES = frozenset({"downloadable", "generating"})


@dataclass(frozen=True, slots=True)
class LmsCertificate:
    """One certificate from the LMS list (username left out)."""

    course_id: str
    mode: str
    status: str
    is_passing: bool


def _certificate(item: Mapping[str, Any]) -> LmsCertificate:
    status = str(item.get("status", ""))
    passing = item.get("is_passing")
    return LmsCertificate(
        course_id=str(item.get("course_id", "")),
        mode=str(item.get("certificate_type", "")),
        status=status,
        is_passing=bool(passing) if passing is not None else status in PASSING_STATUSES,
    )


def _list(body: object, what: str) -> list[Mapping[str, Any]]:
    if not isinstance(body, list):
        raise TransientError(f"lms answered {what} with something other than a list", service="lms")
    return [item for item in body if isinstance(item, dict)]


class LmsClient:
    """Reads from the LMS. Thread-safe; every method blocks for one request."""

    service = "lms"

    def __init__(self, http: HttpClient) -> None:
        self._http = http

    def certificates(self, *, username: str, request_id: str) -> tuple[LmsCertificate, ...]:
        """The learner's certificates as the LMS lists them. Raises the ``http`` errors."""
        reply = self._http.call(
            "GET",
            f"api/certificates/v0/certificates/{path_segment(username)}/",
            endpoint="certificates_list",
            request_id=request_id,
            redact=(username,),
        )
        return tuple(_certificate(item) for item in _list(reply.body, "certificates"))

    def passing_certificates(
        self, *, username: str, request_id: str
    ) -> tuple[PassingCertificate, ...]:
        """The learner's passing certificates (``downloadable``/``generating``)."""
        return tuple(
            PassingCertificate(course_run=item.course_id, mode=item.mode)
            for item in self.certificates(username=username, request_id=request_id)
            if item.is_passing and item.status in PASSING_STATUSES and item.course_id
        )

    def course_modes(self, *, course_run: str, request_id: str) -> tuple[str, ...]:
        """The mode slugs of the course run, in the LMS's order. Raises the ``http`` errors."""
        reply = self._http.call(
            "GET",
            f"api/course_modes/v1/courses/{path_segment(course_run)}/",
            endpoint="course_modes",
            request_id=request_id,
        )
        return tuple(
            str(item["mode_slug"])
            for item in _list(reply.body, "course modes")
            if item.get("mode_slug")
        )
