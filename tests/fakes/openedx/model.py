"""The fake's state: users, runs, programs, configs, credentials, and what it recorded."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SERVICES = ("oauth", "credentials", "lms", "studio", "discovery")
VIEW_USERCREDENTIAL = "view_usercredential"
PASSING_STATUSES = frozenset({"downloadable", "generating"})
CERTIFICATE_TYPES = frozenset(
    {"honor", "verified", "professional", "no-id-professional", "masters"}
)


@dataclass(slots=True)
class User:
    """A user as the LMS and Credentials know it (a service user or a learner)."""

    username: str
    lms_user_id: int
    is_staff: bool = False
    is_superuser: bool = False
    permissions: frozenset[str] = frozenset()
    in_credentials: bool = True
    """Credentials has a user row (a program award for a learner without one answers 500)."""


@dataclass(slots=True)
class OAuthClient:
    """An OAuth2 application of the LMS, acting as ``username``."""

    client_id: str
    client_secret: str
    username: str


@dataclass(slots=True)
class CourseRun:
    """A course run, as the LMS, Studio and Credentials' catalogue see it."""

    key: str
    modes: tuple[str, ...] = ("audit", "verified")
    self_paced: bool = False
    start: datetime | None = None
    end: datetime | None = None
    certificate_available_date: datetime | None = None
    display_behavior: str | None = "end"
    in_credentials_catalog: bool = True
    certificates_viewable: bool = True


@dataclass(slots=True)
class ProgramCourse:
    """A Discovery course of a program, with its runs' seat types (``None``: no seats)."""

    key: str
    runs: dict[str, str | None]


@dataclass(slots=True)
class Program:
    """A Discovery program; ``in_credentials``: Credentials has an active ProgramCertificate."""

    uuid: str
    courses: list[ProgramCourse]
    status: str = "active"
    title: str = ""
    in_credentials: bool = True

    def run_keys(self) -> set[str]:
        """Every run key of the program."""
        return {run for course in self.courses for run in course.runs}


@dataclass(slots=True)
class CourseCertificateConfig:
    """Credentials' course-certificate config of a run."""

    course_id: str
    certificate_type: str
    certificate_available_date: datetime | None
    is_active: bool
    id: int = 0


@dataclass(slots=True)
class UserCredential:
    """A learner's credential in Credentials (a course run or a program)."""

    uuid: str
    username: str
    type: str
    key: str
    status: str
    mode: str | None
    created: datetime
    modified: datetime
    lms_user_id: int | None = None
    date_override: str | None = None


@dataclass(slots=True)
class LmsCertificate:
    """A GeneratedCertificate in the LMS."""

    username: str
    course_id: str
    mode: str
    status: str
    grade: str
    uuid: str
    created: datetime
    modified: datetime


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request the fake received: what, for whom, answered how, when, on which thread.

    ``status`` is ``None`` when the connection was reset instead of answered. ``payload``
    is the JSON body (form bodies without the client secret). Times are the fake process's
    ``time.monotonic()``. ``fault`` names the injected failure (``outage``, ``error``,
    ``timeout``, ``reset``) when a knob answered instead of the service: such a request
    never reached the service's state.
    """

    service: str
    endpoint: str
    method: str
    status: int | None
    request_id: str | None
    username: str | None
    lms_user_id: int | None
    course_run: str | None
    program_uuid: str | None
    payload: Any
    started: float
    ended: float
    thread: str
    user_agent: str | None = None
    fault: str | None = None

    @property
    def is_write(self) -> bool:
        """A POST to a service API (token requests are not writes)."""
        return self.method == "POST" and self.service != "oauth"


@dataclass(frozen=True, slots=True)
class Stats:
    """Concurrency and volume seen by the fake since the last reset."""

    requests: int
    token_requests: int
    max_in_flight: int
    max_in_flight_per_learner: dict[str, int] = field(default_factory=dict)
