"""What ``explain`` answers, as values: each decision with its reason, and the findings.

``Trace.to_json`` is the ``--json`` form; ``render`` prints the same facts as a tree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from consumer import rules
from consumer.commands import iso_utc
from consumer.explain.gather import Question, Sources
from consumer.programs import CompletionSource, LearnerCertificate, Program
from consumer.rules import ProgramCheck, RunCheck

Action = Literal["award", "revoke", "none"]


@dataclass(frozen=True, slots=True)
class Decision:
    """What the worker would do, and why: ``reason`` is snake_case (the skip vocabulary)."""

    action: str
    reason: str
    detail: str

    def to_json(self) -> dict[str, str]:
        """The JSON form."""
        return {"action": self.action, "reason": self.reason, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Finding:
    """Two sources disagree (or a setting hides something): what, and how to fix it."""

    kind: str
    detail: str
    fixes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {"kind": self.kind, "detail": self.detail, "fixes": list(self.fixes)}


@dataclass(frozen=True, slots=True)
class RunTrace:
    """One program run: the learner's certificate, Credentials' copy, and the rules' check."""

    check: RunCheck
    certificate: LearnerCertificate | None
    in_credentials: bool
    counted: bool

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "key": self.check.key,
            "seat_type": self.check.seat_type,
            "required_mode": rules.run_seat_type(self.check.seat_type),
            "certificate": _certificate_json(self.certificate),
            "in_credentials": self.in_credentials,
            "counted": self.counted,
            "complete": self.check.complete,
            "reason": self.check.reason,
            "detail": self.check.detail,
        }


@dataclass(frozen=True, slots=True)
class ProgramTrace:
    """One program: its courses and runs as the rules judged them, and the verdict."""

    program: Program
    check: ProgramCheck
    runs: Mapping[str, RunTrace]
    awarded: bool
    excluded: bool
    verdict: Decision

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "uuid": self.check.uuid,
            "status": self.program.status,
            "complete": self.check.complete,
            "completion_reason": self.check.reason,
            "completion_detail": self.check.detail,
            "awarded": self.awarded,
            "excluded": self.excluded,
            "verdict": self.verdict.action,
            "reason": self.verdict.reason,
            "detail": self.verdict.detail,
            "courses": [
                {
                    "key": course.key,
                    "complete": course.complete,
                    "reason": course.reason,
                    "runs": [self.runs[run.key].to_json() for run in course.runs],
                }
                for course in self.check.courses
            ],
        }


@dataclass(frozen=True, slots=True)
class DateTrace:
    """The certificate available date a catalog event of the run would set, and why."""

    modes: tuple[str, ...]
    certificate_type: str | None
    decision: Decision
    value: datetime | None = None
    known: bool = False
    pacing: str | None = None
    end: datetime | None = None
    display_behavior: str | None = None
    assumed: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            **self.decision.to_json(),
            "course_modes": list(self.modes),
            "certificate_type": self.certificate_type,
            "certificate_available_date": iso_utc(self.value),
            "date_known": self.known,
            "pacing": self.pacing,
            "end": iso_utc(self.end),
            "display_behavior": self.display_behavior,
            "assumed": self.assumed,
        }


@dataclass(frozen=True, slots=True)
class CourseRunTrace:
    """The run asked with ``--course-run``: course-certificate sync and CAD."""

    key: str
    certificate: LearnerCertificate | None
    in_credentials: bool
    sync: Decision
    date: DateTrace

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "key": self.key,
            "certificate": _certificate_json(self.certificate),
            "in_credentials": self.in_credentials,
            "course_certificate": self.sync.to_json(),
            "certificate_available_date": self.date.to_json(),
        }


@dataclass(frozen=True, slots=True)
class Trace:
    """The whole answer: what the sources hold, each decision with its reason, and findings."""

    question: Question
    completion_source: CompletionSource
    judged_as: str
    sources: Sources
    programs: tuple[ProgramTrace, ...]
    programs_gate: Decision | None
    course_run: CourseRunTrace | None
    findings: tuple[Finding, ...]

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` form: the same facts as the tree."""
        sources = self.sources
        return {
            "learner": {
                "lms_user_id": self.question.lms_user_id,
                "username": self.question.username,
            },
            "completion_source": self.completion_source,
            "judged_as": self.judged_as,
            "sources": {
                "lms_certificates": [
                    _certificate_json(cert) for _, cert in sorted(sources.certificates.items())
                ],
                "credentials_course_runs": sorted(sources.held_runs),
                "credentials_programs": sorted(sources.awarded_programs),
                "programs_missing": list(sources.programs_missing),
            },
            "programs_gate": self.programs_gate.to_json() if self.programs_gate else None,
            "programs": [program.to_json() for program in self.programs],
            "course_run": self.course_run.to_json() if self.course_run else None,
            "findings": [finding.to_json() for finding in self.findings],
        }


def _certificate_json(cert: LearnerCertificate | None) -> dict[str, Any] | None:
    if cert is None:
        return None
    return {
        "course_run": cert.course_run,
        "mode": cert.mode,
        "status": cert.status,
        "listed": cert.listed,
        "modified": iso_utc(cert.modified),
    }
