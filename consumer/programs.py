"""Programs and learner certificates as plain values, shared by ``rules`` and the services.

Discovery's program documents and the learner's certificates (from Credentials or the LMS)
are reduced to these frozen values at the service boundary, so the completion rules see
exactly the fields they use and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

CompletionSource = Literal["credentials", "lms"]
"""Where program completion learns which runs a learner holds (``CONSUMER_COMPLETION_SOURCE``).

``credentials`` (default): Credentials' own ``course-run`` credentials with
``status=awarded`` and no ``only_visible`` — closest to the seed, sees certificates
before they are viewable, but misses runs of orgs whose course sync is disabled; the
learner's modes still come from the LMS (ADR 0007).
``lms``: the LMS certificates list — sees every org, but only courses whose certificates
are already viewable.
"""


@dataclass(frozen=True, slots=True)
class ProgramRun:
    """One course run of a program course; ``seat_type`` is Discovery's run ``type``.

    ``None`` when the run has no seats: no certificate can ever match it.
    """

    key: str
    seat_type: str | None


@dataclass(frozen=True, slots=True)
class ProgramCourse:
    """A course of a program: completed when any of its runs is."""

    key: str
    runs: tuple[ProgramRun, ...]


@dataclass(frozen=True, slots=True)
class Program:
    """A Discovery program (active or retired) reduced to what completion needs."""

    uuid: str
    courses: tuple[ProgramCourse, ...]
    status: str = "active"

    def run_keys(self) -> frozenset[str]:
        """Every course-run key of the program."""
        return frozenset(run.key for course in self.courses for run in course.runs)


@dataclass(frozen=True, slots=True)
class PassingCertificate:
    """A learner's passing certificate in a run, with the certificate's mode."""

    course_run: str
    mode: str


@dataclass(frozen=True, slots=True)
class LearnerCertificate:
    """A learner's certificate in a run as the LMS has it, before completion filters it.

    ``listed``: the LMS certificates list shows it (its certificates are viewable); the
    per-run endpoint also answers certificates not yet viewable. ``modified`` is the LMS's
    last change, when known (``explain`` turns it into a replay start).
    """

    course_run: str
    mode: str
    status: str
    listed: bool = True
    modified: datetime | None = None

    def as_passing(self) -> PassingCertificate:
        """The certificate as completion counts it: the run and the learner's own mode."""
        return PassingCertificate(course_run=self.course_run, mode=self.mode)
