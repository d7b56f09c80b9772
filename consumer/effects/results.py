"""What applying a command did, as values for logs and metrics (no PII)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from consumer.commands import CredentialStatus

EffectStatus = Literal["applied", "skipped"]
ProgramAction = CredentialStatus | Literal["skipped"]


@dataclass(frozen=True, slots=True)
class ProgramResult:
    """What happened to one program of an award or revocation."""

    program_uuid: str
    action: ProgramAction
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EffectResult:
    """What applying one command did, for logs and metrics (no PII).

    ``status`` is ``applied`` when something was written, ``skipped`` when nothing needed
    or could be written; ``reason`` (snake_case, a metric label) says why something was
    skipped or assumed, ``detail`` is for people.
    """

    command: str
    status: EffectStatus
    reason: str | None = None
    detail: str = ""
    lms_user_id: int | None = None
    course_run: str | None = None
    programs: tuple[ProgramResult, ...] = ()
    certificate_type: str | None = None
    certificate_available_date: str | None = None
    display_behavior: str | None = None

    def log_fields(self) -> dict[str, Any]:
        """The non-empty fields as structlog keyword arguments."""
        fields: dict[str, Any] = {"command": self.command, "effect": self.status}
        optional: dict[str, Any] = {
            "reason": self.reason,
            "detail": self.detail,
            "lms_user_id": self.lms_user_id,
            "course_run": self.course_run,
            "certificate_type": self.certificate_type,
            "certificate_available_date": self.certificate_available_date,
            "display_behavior": self.display_behavior,
        }
        fields.update({key: value for key, value in optional.items() if value})
        if self.programs:
            fields["programs"] = {item.program_uuid: item.action for item in self.programs}
        return fields
