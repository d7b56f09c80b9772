"""What must happen in Credentials, as data: the output of the handlers, the input of effects.

Each command is a frozen value that says *what* to do, not how; ``effects`` turns it into
service calls. ``to_json`` is the stable dry-run format: one JSON object per command, keys
sorted by the caller, datetimes as ISO-8601 UTC with a ``Z``. It carries the LMS user id,
never the username.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from consumer.events import Learner, Pacing

CredentialStatus = Literal["awarded", "revoked"]
"""The status of a learner's credential in Credentials: the one awarded/revoked vocabulary.

Commands carry it, the rules decide it, effects log by it and the Credentials client sends it.
"""


def iso_utc(value: datetime | None) -> str | None:
    """Format a datetime as Credentials expects it (``%Y-%m-%dT%H:%M:%SZ``), or None.

    Never raises. A naive value is UTC (as ``events.parse_time`` reads the platform's), so
    the host's time zone never matters; the year always has four digits. An instant whose UTC
    form falls outside years 1 to 9999 cannot be converted; events refuse such dates
    (``date_out_of_range``), and should one arrive anyway it is written with its own offset,
    which names the same instant, rather than crash the worker.
    """
    if value is None:
        return None
    if value.utcoffset() is None:
        value = value.replace(tzinfo=UTC)
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        return value.isoformat(timespec="seconds")
    return utc.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


@dataclass(frozen=True, slots=True)
class SyncCourseCertificate:
    """Upsert the learner's course-run credential (seed: ``award_course_certificate``)."""

    learner: Learner
    course_run: str
    mode: str
    status: CredentialStatus
    date_override: datetime | None = None

    name = "sync_course_certificate"

    def to_json(self) -> dict[str, Any]:
        """The dry-run form of this command."""
        return {
            "command": self.name,
            "lms_user_id": self.learner.user_id,
            "course_run": self.course_run,
            "mode": self.mode,
            "status": self.status,
            "date_override": iso_utc(self.date_override),
        }


def _learner_and_run(name: str, learner: Learner, course_run: str) -> dict[str, Any]:
    return {"command": name, "lms_user_id": learner.user_id, "course_run": course_run}


@dataclass(frozen=True, slots=True)
class AwardPrograms:
    """Award every program the learner has completed and not yet received.

    ``course_run`` is the run whose certificate triggered it, ``mode`` and ``status`` that
    certificate's: completion takes the learner's mode of this run from the event, since
    Credentials' reads answer the run's config type instead (ADR 0007). Candidates are the
    programs containing *any* of the learner's completed runs (seed:
    award_program_certificates).
    """

    learner: Learner
    course_run: str
    mode: str
    status: str

    name = "award_programs"

    def to_json(self) -> dict[str, Any]:
        """The dry-run form of this command."""
        return {
            **_learner_and_run(self.name, self.learner, self.course_run),
            "mode": self.mode,
            "status": self.status,
        }


@dataclass(frozen=True, slots=True)
class RevokePrograms:
    """Revoke awarded programs containing the run (seed: ``revoke_program_certificates``)."""

    learner: Learner
    course_run: str

    name = "revoke_programs"

    def to_json(self) -> dict[str, Any]:
        """The dry-run form of this command."""
        return _learner_and_run(self.name, self.learner, self.course_run)


@dataclass(frozen=True, slots=True)
class SyncCertificateAvailableDate:
    """Set the run's certificate available date in Credentials' course-certificate config.

    The catalog event carries pacing and end; the display behaviour and the CAD come from
    Studio when configured (``None`` here means "look it up, else assume ``end``").
    """

    course_run: str
    pacing: Pacing
    end: datetime | None
    display_behavior: str | None = None
    certificate_available_date: datetime | None = None

    name = "sync_certificate_available_date"

    def to_json(self) -> dict[str, Any]:
        """The dry-run form of this command."""
        return {
            "command": self.name,
            "course_run": self.course_run,
            "pacing": self.pacing,
            "end": iso_utc(self.end),
            "display_behavior": self.display_behavior,
            "certificate_available_date": iso_utc(self.certificate_available_date),
        }


Command = SyncCourseCertificate | AwardPrograms | RevokePrograms | SyncCertificateAvailableDate
