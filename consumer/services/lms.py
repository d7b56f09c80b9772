"""The LMS APIs the worker reads: a learner's certificates and a course's modes.

``GET /api/certificates/v0/certificates/{username}/`` is a plain list of the learner's
*passing* certificates in courses whose certificates are already viewable; ``GET
.../certificates/{username}/courses/{course_id}/`` is one certificate in any non-audit
status (404 without one), viewable or not. Together they are where program completion
takes a learner's certificate *modes* (Credentials cannot say them). ``GET
/api/course_modes/v1/courses/{course_id}/`` is a plain list of the course's modes; the
certificate type of a course-certificate config is chosen from it by ``rules``.

Answers are checked item by item (``answers.AnswerReader``): another shape is a
``MalformedAnswerError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from consumer.errors import RejectedError
from consumer.programs import LearnerCertificate, PassingCertificate
from consumer.services.answers import AnswerReader
from consumer.services.http import HttpClient
from consumer.services.request_parts import path_segment

PASSING_STATUSES = frozenset({"downloadable", "generating"})

_LIST = AnswerReader("lms", "certificates_list")
_DETAIL = AnswerReader("lms", "certificate_detail")
_MODES = AnswerReader("lms", "course_modes")


@dataclass(frozen=True, slots=True)
class LmsCertificate:
    """One certificate from the LMS (username left out)."""

    course_id: str
    mode: str
    status: str
    is_passing: bool
    modified: datetime | None = None
    """``modified_date``, read leniently: only ``explain`` uses it, so it never fails a read."""

    @property
    def passing(self) -> bool:
        """Passing by both the LMS's flag and its status (``downloadable``/``generating``)."""
        return self.is_passing and self.status in PASSING_STATUSES

    def as_passing(self) -> PassingCertificate:
        """The certificate as completion sees it: the run and the learner's own mode."""
        return PassingCertificate(course_run=self.course_id, mode=self.mode)

    def as_learner(self, *, listed: bool) -> LearnerCertificate:
        """The certificate as completion judges it (``rules.completion_skip``).

        ``listed``: it came from the certificates list (viewable), not the per-run read.
        """
        return LearnerCertificate(
            course_run=self.course_id,
            mode=self.mode,
            status=self.status,
            listed=listed,
            modified=self.modified,
        )


def _lenient_date(value: object) -> datetime | None:
    """An ISO-8601 date as aware UTC, or None for anything else (never raises)."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _certificate(read: AnswerReader, value: object, where: str) -> LmsCertificate:
    item = read.mapping(value, where)
    status = read.text(item.get("status"), f"{where}.status")
    passing = read.optional_bool(item.get("is_passing"), f"{where}.is_passing")
    return LmsCertificate(
        course_id=read.text(item.get("course_id"), f"{where}.course_id"),
        mode=read.text(item.get("certificate_type"), f"{where}.certificate_type"),
        status=status,
        is_passing=passing if passing is not None else status in PASSING_STATUSES,
        modified=_lenient_date(item.get("modified_date")),
    )


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
        items = _LIST.array(reply.body, "the answer")
        return tuple(_certificate(_LIST, item, f"[{index}]") for index, item in enumerate(items))

    def passing_certificates(
        self, *, username: str, request_id: str
    ) -> tuple[PassingCertificate, ...]:
        """The learner's passing certificates (``downloadable``/``generating``), viewable only."""
        return tuple(
            item.as_passing()
            for item in self.certificates(username=username, request_id=request_id)
            if item.passing
        )

    def certificate(
        self, *, username: str, course_run: str, request_id: str
    ) -> LmsCertificate | None:
        """The learner's certificate in one run, viewable or not; ``None`` if there is none.

        A 404 (``no_certificate_for_user`` and the like) is ``None``; other errors raise.
        """
        try:
            reply = self._http.call(
                "GET",
                f"api/certificates/v0/certificates/{path_segment(username)}"
                f"/courses/{path_segment(course_run)}/",
                endpoint="certificate_detail",
                request_id=request_id,
                redact=(username,),
            )
        except RejectedError as error:
            if error.status == 404:
                return None
            raise
        return _certificate(_DETAIL, reply.body, "the answer")

    def course_modes(self, *, course_run: str, request_id: str) -> tuple[str, ...]:
        """The mode slugs of the course run, in the LMS's order. Raises the ``http`` errors."""
        reply = self._http.call(
            "GET",
            f"api/course_modes/v1/courses/{path_segment(course_run)}/",
            endpoint="course_modes",
            request_id=request_id,
        )
        items = _MODES.array(reply.body, "the answer")
        return tuple(
            _MODES.text(_MODES.mapping(item, f"[{index}]").get("mode_slug"), f"[{index}].mode_slug")
            for index, item in enumerate(items)
        )
