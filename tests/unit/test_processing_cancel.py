"""Processing: a cancelled event starts no further command (issue 8, item 9)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from consumer.circuit import Breakers
from consumer.commands import Command
from consumer.config import RetrySettings
from consumer.events import CertificateEvent, EventMeta, EventType, Learner, parse_course_key
from consumer.handlers import Policy, make_handler
from consumer.observability import Metrics
from consumer.outcomes import Abandoned, Applied
from consumer.processing import ApplyProcessor
from consumer.retry import Retrier

EVENT = CertificateEvent(
    meta=EventMeta(id="ce-1", type=EventType.CERTIFICATE_CREATED),
    learner=Learner(user_id=42, username="learner"),
    course_key=parse_course_key("course-v1:OrgX+DemoX+1T2024"),
    mode="verified",
    status="downloadable",
)


@dataclass(frozen=True)
class Done:
    """What the fake effects return: applied, for the log."""

    status: str = "applied"
    reason: str | None = None

    def log_fields(self) -> dict[str, object]:
        return {}


def test_an_event_cancelled_between_its_commands_starts_no_further_command() -> None:
    """Revoked while its first command ran, a certificate event does not start its second.

    It is abandoned (not done): the partition's next owner applies the whole event again.
    """
    cancelled = threading.Event()
    applied: list[str] = []

    def apply(command: Command, request_id: str) -> Done:
        assert request_id == "ce-1"
        applied.append(command.name)
        cancelled.set()  # the partition is revoked while the first command runs
        return Done()

    processor = ApplyProcessor(
        make_handler(Policy()), apply, Retrier(RetrySettings(), Breakers()), Metrics()
    )
    outcome = processor(EVENT, cancelled)

    assert applied == ["sync_course_certificate"]  # award_programs never started
    assert isinstance(outcome, Abandoned)


def test_an_event_not_cancelled_applies_every_command() -> None:
    """The same event, left alone, applies both of its commands."""
    applied: list[str] = []

    def apply(command: Command, _request_id: str) -> Done:
        applied.append(command.name)
        return Done()

    processor = ApplyProcessor(
        make_handler(Policy()), apply, Retrier(RetrySettings(), Breakers()), Metrics()
    )
    outcome = processor(EVENT, threading.Event())

    assert applied == ["sync_course_certificate", "award_programs"]
    assert outcome == Applied(commands=2)
