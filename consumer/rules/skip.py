"""``Skip``: the value every rule returns when it decides not to act, with why."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Skip:
    """A decision not to act, with why: ``reason`` is a snake_case metric label.

    ``detail`` is for a log line or a person; it names modes, orgs and settings, never the
    learner (who is already in the log context by LMS user id).
    """

    reason: str
    detail: str

    def to_json(self) -> dict[str, str]:
        """Return the dry-run form of this skip."""
        return {"skip": self.reason, "detail": self.detail}
