"""What became of one event: the value a worker hands back to the engine.

``Applied`` and ``Skipped`` are done: the offset may be committed. ``Failed`` is done once
its dead-letter record is acknowledged. ``Abandoned`` is *not* done: the work was cut
short (shutdown, partition revoked) and the event will be consumed again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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


@dataclass(frozen=True, slots=True)
class Abandoned:
    """Cut short before it was done; the offset stays uncommitted."""

    why: str


Outcome = Applied | Skipped | Failed | Abandoned
