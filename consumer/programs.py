"""Programs and learner certificates as plain values, shared by ``rules`` and the services.

Discovery's program documents and the learner's certificates (from Credentials or the LMS)
are reduced to these frozen values at the service boundary, so the completion rules see
exactly the fields they use and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass


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
