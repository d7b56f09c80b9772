"""From an event to its outcome: handle, apply each command under the retry policy, report.

The handler and the effects are fakes (plain callables); the retrier is the real one with
fake time, so retries and cancellation run without waiting.
"""

from __future__ import annotations

import io
import json
import threading
from dataclasses import dataclass, field

from consumer.circuit import Breakers
from consumer.commands import Command, RevokePrograms, SyncCourseCertificate
from consumer.config import RetrySettings
from consumer.effects import EffectResult
from consumer.errors import InvalidEventError, PermanentError, ServiceUnavailableError
from consumer.events import (
    CertificateEvent,
    Event,
    EventMeta,
    EventType,
    Learner,
    parse_course_key,
)
from consumer.handlers import Handled, Handler, Policy, Skip, make_handler
from consumer.observability import Metrics
from consumer.outcomes import Abandoned, Applied, Failed, Skipped
from consumer.processing import ApplyProcessor, DryRunProcessor, skipped_outcome
from consumer.retry import Retrier
from tests.support.clock import FakeClock

USERNAME = "ada-lovelace-1815"
LEARNER = Learner(user_id=42, username=USERNAME)
RUN = "course-v1:Unit+C1+2026"
SYNC = SyncCourseCertificate(learner=LEARNER, course_run=RUN, mode="verified", status="awarded")
REVOKE = RevokePrograms(learner=LEARNER, course_run=RUN)
NOTHING = Handled(commands=())


def certificate(event_id: str = "event-1") -> CertificateEvent:
    return CertificateEvent(
        meta=EventMeta(id=event_id, type=EventType.CERTIFICATE_CREATED),
        learner=LEARNER,
        course_key=parse_course_key(RUN),
        mode="verified",
        status="downloadable",
    )


def handles(handled: Handled) -> Handler:
    return lambda _event: handled


@dataclass
class Effects:
    """Applies commands as scripted: per command name, what its calls do in turn (the last repeats).

    A step is an ``EffectResult`` to return or an exception to raise; no step: applied.
    """

    script: dict[str, list[EffectResult | Exception]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, command: Command, event_id: str) -> EffectResult:
        self.calls.append((command.name, event_id))
        steps = self.script.get(command.name, [])
        step = steps.pop(0) if len(steps) > 1 else (steps[0] if steps else None)
        if isinstance(step, Exception):
            raise step
        return step or EffectResult(command=command.name, status="applied")


@dataclass
class Harness:
    """An ApplyProcessor on fake effects, a real retrier on fake time, fresh metrics."""

    effects: Effects = field(default_factory=Effects)
    metrics: Metrics = field(default_factory=Metrics)
    clock: FakeClock = field(default_factory=lambda: FakeClock(100.0))
    wall: FakeClock = field(default_factory=lambda: FakeClock(1_700_000_000.0))
    sleeps: list[float] = field(default_factory=list)
    cancel_on_sleep: bool = False

    def sleep(self, cancelled: threading.Event, seconds: float) -> bool:
        self.sleeps.append(seconds)
        self.clock.advance(seconds)
        self.wall.advance(seconds)
        if self.cancel_on_sleep:
            cancelled.set()
        return cancelled.is_set()

    def processor(
        self,
        handled: Handled = NOTHING,
        *,
        handler: Handler | None = None,
        max_attempts: int = 3,
    ) -> ApplyProcessor:
        """The processor under test, for a handler answering ``handled`` (or ``handler``)."""
        retrier = Retrier(
            settings=RetrySettings(max_attempts=max_attempts),
            breakers=Breakers(),
            clock=self.clock,
            wall_clock=self.wall,
            sleep=self.sleep,
            jitter=lambda value: value,
        )
        return ApplyProcessor(handler or handles(handled), self.effects, retrier, self.metrics)

    def count(self, metric: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(
            f"credentials_consumer_{metric}_total", labels
        )
        return value or 0.0


def rejected(text: str = "bad request", status: int = 400) -> PermanentError:
    return PermanentError(text, service="credentials", status=status)


# ---------------------------------------------------------------------------- ApplyProcessor


def test_every_command_applied_makes_the_event_applied() -> None:
    """Each command is applied once, in order, with the event id; partial skips are kept."""
    harness = Harness()
    handled = Handled(commands=(SYNC, REVOKE), skipped=(Skip("honor_disabled", "mode honor"),))

    outcome = harness.processor(handled)(certificate("e-1"), threading.Event())

    assert outcome == Applied(commands=2, skipped=("honor_disabled",))
    assert harness.effects.calls == [(SYNC.name, "e-1"), (REVOKE.name, "e-1")]
    assert harness.count("commands", command=SYNC.name, result="applied") == 1
    assert harness.count("commands", command=REVOKE.name, result="applied") == 1


def test_a_command_result_counts_its_skip_or_its_assumption() -> None:
    """A skipped command counts under skips; an applied one with a reason under assumptions."""
    harness = Harness()
    harness.effects.script = {
        SYNC.name: [EffectResult(command=SYNC.name, status="skipped", reason="unchanged")],
        REVOKE.name: [EffectResult(command=REVOKE.name, status="applied", reason="assumed_end")],
    }

    outcome = harness.processor(Handled(commands=(SYNC, REVOKE)))(certificate(), threading.Event())

    assert outcome == Applied(commands=2)
    assert harness.count("commands", command=SYNC.name, result="skipped") == 1
    assert harness.count("skips", reason="unchanged") == 1
    assert harness.count("assumptions", reason="assumed_end") == 1


def test_an_event_with_no_commands_is_skipped_with_every_reason() -> None:
    """Reasons are joined sorted and once each; details in order; nothing is applied."""
    harness = Harness()
    handled = Handled(
        commands=(),
        skipped=(Skip("b_off", "second"), Skip("a_off", "first"), Skip("a_off", "third")),
    )

    outcome = harness.processor(handled)(certificate(), threading.Event())

    assert outcome == Skipped(reason="a_off+b_off", detail="second; first; third")
    assert harness.effects.calls == []


def test_an_event_handled_into_nothing_at_all_is_skipped_as_no_commands() -> None:
    """No command and no stated skip: the reason is no_commands."""
    assert skipped_outcome(Handled(commands=())) == Skipped(reason="no_commands", detail="")


def test_a_handler_error_fails_the_event_at_the_handle_stage() -> None:
    """A classified error from the handler is a failure (dead letter), not an exception."""
    harness = Harness()
    processor = harness.processor(handler=_raise(InvalidEventError("no such route")))

    outcome = processor(certificate(), threading.Event())

    assert isinstance(outcome, Failed)
    assert (outcome.stage, outcome.error_class, outcome.reason) == (
        "handle",
        "InvalidEventError",
        "invalid_event",
    )
    assert harness.effects.calls == []


def _raise(error: Exception) -> Handler:
    def handler(_event: Event) -> Handled:
        raise error

    return handler


def test_a_rejected_command_does_not_stop_the_others() -> None:
    """Commands are independent: one rejected, the next still applied, the event failed."""
    harness = Harness()
    harness.effects.script = {SYNC.name: [rejected()]}

    outcome = harness.processor(Handled(commands=(SYNC, REVOKE)))(certificate(), threading.Event())

    assert isinstance(outcome, Failed)
    assert (outcome.stage, outcome.error_class, outcome.reason) == (
        "apply",
        "PermanentError",
        "http_400",
    )
    assert outcome.message.startswith(f"{SYNC.name}: ")
    assert outcome.attempts == 1
    assert [name for name, _ in harness.effects.calls] == [SYNC.name, REVOKE.name]
    assert harness.count("commands", command=SYNC.name, result="failed") == 1
    assert harness.count("commands", command=REVOKE.name, result="applied") == 1


def test_failures_of_several_commands_make_one_dead_letter_context() -> None:
    """The first failure leads; messages are joined; attempts and times span all of them."""
    harness = Harness()
    harness.effects.script = {
        SYNC.name: [ServiceUnavailableError("refused", service="credentials")],
        REVOKE.name: [ServiceUnavailableError("down", service="credentials", status=503)],
    }

    outcome = harness.processor(Handled(commands=(SYNC, REVOKE)), max_attempts=3)(
        certificate(), threading.Event()
    )

    assert isinstance(outcome, Failed)
    assert (outcome.error_class, outcome.reason) == ("ServiceUnavailableError", "unavailable")
    assert outcome.message == (
        f"{SYNC.name}: retries exhausted: refused | {REVOKE.name}: retries exhausted: down"
    )
    assert outcome.attempts == 3
    assert len(harness.sleeps) == 4  # two waits for each command
    assert outcome.first_failure == 1_700_000_000.0  # the first command's first failure
    assert outcome.last_failure == 1_700_000_000.0 + sum(harness.sleeps)  # the second's last


def test_exhausted_retries_fail_the_event_with_their_attempts_and_times() -> None:
    """A transient error retried to the end of the budget: attempts, first and last failure."""
    harness = Harness()
    harness.effects.script = {SYNC.name: [ServiceUnavailableError("refused", service="lms")]}

    outcome = harness.processor(Handled(commands=(SYNC,)), max_attempts=3)(
        certificate(), threading.Event()
    )

    assert isinstance(outcome, Failed)
    assert (outcome.stage, outcome.error_class, outcome.reason) == (
        "apply",
        "ServiceUnavailableError",
        "unavailable",
    )
    assert outcome.message == f"{SYNC.name}: retries exhausted: refused"
    assert outcome.attempts == 3
    assert len(harness.effects.calls) == 3
    assert outcome.first_failure == 1_700_000_000.0
    assert outcome.last_failure == 1_700_000_000.0 + sum(harness.sleeps)


def test_a_transient_failure_that_recovers_applies_the_event() -> None:
    """A retry that succeeds is not a failure."""
    harness = Harness()
    harness.effects.script = {
        SYNC.name: [
            ServiceUnavailableError("refused", service="lms"),
            EffectResult(command=SYNC.name, status="applied"),
        ]
    }

    outcome = harness.processor(Handled(commands=(SYNC,)))(certificate(), threading.Event())

    assert outcome == Applied(commands=1)
    assert len(harness.effects.calls) == 2


def test_cancelled_while_retrying_the_event_is_abandoned_and_nothing_more_is_applied() -> None:
    """Cancellation (revoke, shutdown) abandons the event: not done, later commands not run."""
    harness = Harness(cancel_on_sleep=True)
    harness.effects.script = {SYNC.name: [ServiceUnavailableError("refused", service="lms")]}

    outcome = harness.processor(Handled(commands=(SYNC, REVOKE)))(certificate(), threading.Event())

    assert isinstance(outcome, Abandoned)
    assert [name for name, _ in harness.effects.calls] == [SYNC.name]


def test_the_learner_username_never_reaches_the_failure_message() -> None:
    """A service that quotes the username back: the dead-letter text does not carry it."""
    harness = Harness()
    harness.effects.script = {SYNC.name: [rejected(f"user {USERNAME} is unknown")]}

    outcome = harness.processor(Handled(commands=(SYNC,)))(certificate(), threading.Event())

    assert isinstance(outcome, Failed)
    assert USERNAME not in outcome.message
    assert outcome.message.startswith(f"{SYNC.name}: user ")
    assert outcome.message.endswith(" is unknown")


def test_failure_messages_are_bounded() -> None:
    """One failure's text is cut at 1000 characters, a combined one at 2000."""
    harness = Harness()
    harness.effects.script = {
        SYNC.name: [rejected("x" * 5000)],
        REVOKE.name: [rejected("y" * 5000)],
    }

    single = harness.processor(Handled(commands=(SYNC,)))(certificate(), threading.Event())
    combined = harness.processor(Handled(commands=(SYNC, REVOKE)))(certificate(), threading.Event())

    assert isinstance(single, Failed)
    assert len(single.message) == 1000
    assert isinstance(combined, Failed)
    assert len(combined.message) == 2000


# ---------------------------------------------------------------------------- DryRunProcessor


def test_a_dry_run_writes_one_sorted_json_line_per_command_and_skip() -> None:
    """Commands and skips as JSON lines naming the learner by LMS user id only; no service call."""
    out = io.StringIO()
    processor = DryRunProcessor(make_handler(Policy(programs_enabled=False)), out)

    outcome = processor(certificate("e-9"), threading.Event())

    lines = out.getvalue().splitlines()
    assert [json.loads(line) for line in lines] == [
        {
            "command": SYNC.name,
            "course_run": RUN,
            "date_override": None,
            "event_id": "e-9",
            "event_type": str(EventType.CERTIFICATE_CREATED),
            "lms_user_id": 42,
            "mode": "verified",
            "status": "awarded",
        },
        {
            "detail": "COURSE_CATALOG_API_URL is not set: programs are not handled",
            "event_id": "e-9",
            "event_type": str(EventType.CERTIFICATE_CREATED),
            "skip": "programs_not_configured",
        },
    ]
    assert all(line == json.dumps(json.loads(line), sort_keys=True) for line in lines)
    assert USERNAME not in out.getvalue()
    assert outcome == Applied(commands=1, skipped=("programs_not_configured",))


def test_a_dry_run_of_an_event_with_nothing_to_do_is_skipped() -> None:
    """Only skips: the event is skipped, and its skips are still written."""
    out = io.StringIO()
    skip = Skip("course_certificate_sync_disabled", "off")
    processor = DryRunProcessor(handles(Handled(commands=(), skipped=(skip,))), out)

    outcome = processor(certificate(), threading.Event())

    assert outcome == Skipped(reason="course_certificate_sync_disabled", detail="off")
    assert len(out.getvalue().splitlines()) == 1


def test_a_dry_run_handler_error_fails_the_event_and_writes_nothing() -> None:
    """A classified handler error is a failure at the handle stage in dry-run too."""
    out = io.StringIO()
    processor = DryRunProcessor(_raise(InvalidEventError("no such route")), out)

    outcome = processor(certificate(), threading.Event())

    assert isinstance(outcome, Failed)
    assert outcome.stage == "handle"
    assert out.getvalue() == ""
