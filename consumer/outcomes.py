"""What became of one event: the value a worker hands back to the engine.

``Applied`` and ``Skipped`` are done: the offset may be committed. ``Failed`` is done once
its dead-letter record is acknowledged. ``Abandoned`` is *not* done: the work was cut
short (shutdown, partition revoked) and the event will be consumed again.

A ``Failed`` is built here only: ``Failed.of`` from the error that ended the event,
``Failed.combined`` from the failures of several commands of one event.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from consumer.errors import ConsumerError

Stage = Literal["decode", "handle", "apply"]


@dataclass(frozen=True, slots=True)
class Applied:
    """Every command of the event was applied (or skipped per command, with reasons)."""

    commands: int
    skipped: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Skipped:
    """The event asks for nothing, for a stated reason (a metric label, snake_case)."""

    reason: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Failed:
    """The event cannot be applied: it goes to the dead-letter topic with this context."""

    stage: Stage
    error_class: str
    reason: str
    message: str
    attempts: int = 1
    first_failure: float = 0.0  # epoch seconds
    last_failure: float = 0.0

    @classmethod
    def of(
        cls,
        stage: Stage,
        error: ConsumerError,
        *,
        message: str | None = None,
        attempts: int = 1,
        first_failure: float | None = None,
        last_failure: float | None = None,
    ) -> Failed:
        """The failure ``error`` stands for; times default to now (a single attempt).

        ``message`` replaces ``str(error)`` when the caller has made it safe (redacted) or
        added context; either way it is cut to 1000 characters (a dead-letter header).
        """
        now = time.time()
        return cls(
            stage=stage,
            error_class=type(error).__name__,
            reason=error.reason,
            message=(str(error) if message is None else message)[:1000],
            attempts=attempts,
            first_failure=first_failure or now,
            last_failure=last_failure or now,
        )

    @classmethod
    def combined(cls, failures: Sequence[Failed]) -> Failed:
        """One dead-letter context for several failed commands of an event (the first leads)."""
        first = failures[0]
        if len(failures) == 1:
            return first
        return cls(
            stage=first.stage,
            error_class=first.error_class,
            reason=first.reason,
            message=" | ".join(failure.message for failure in failures)[:2000],
            attempts=max(failure.attempts for failure in failures),
            first_failure=min(failure.first_failure for failure in failures),
            last_failure=max(failure.last_failure for failure in failures),
        )

    def log_fields(self) -> dict[str, str | int]:
        """The fields every log line of a failure carries (no PII: the message is safe)."""
        return {
            "stage": self.stage,
            "error_class": self.error_class,
            "reason": self.reason,
            "error": self.message,
            "attempts": self.attempts,
        }


@dataclass(frozen=True, slots=True)
class Abandoned:
    """Cut short before it was done; the offset stays uncommitted."""

    why: str


Outcome = Applied | Skipped | Failed | Abandoned
