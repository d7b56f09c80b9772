"""From a decoded event to its outcome, on a worker thread.

Two processors share one shape, ``(event, cancelled) -> Outcome``:

- ``ApplyProcessor`` handles the event (pure), then applies each command through
  ``effects`` under the retry policy. Commands of one event are independent upserts: a
  command that fails for good does not stop the others, and the event is dead-lettered
  once all were tried (a redrive re-applies all of them, harmlessly).
- ``DryRunProcessor`` handles the event and writes the commands as JSON lines; it calls
  no service.

Both turn every classified failure into an outcome; anything else propagates and stops
the process (see ``engine``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Protocol, TextIO

import structlog

from consumer.commands import Command
from consumer.errors import Cancelled, ConsumerError, PermanentError, RetriesExhausted
from consumer.events import CertificateEvent, Event
from consumer.handlers import Handled, Handler
from consumer.observability import Metrics
from consumer.outcomes import Abandoned, Applied, Failed, Outcome, Skipped, Stage
from consumer.retry import Retrier
from consumer.services.redaction import redact_text

log = structlog.get_logger("consumer.processing")
# Made once (json.dumps builds one per call); commands are flat dicts of plain values: no cycle.
_JSON = json.JSONEncoder(sort_keys=True, check_circular=False)


class EffectResultLike(Protocol):
    """What ``effects.EffectResult`` offers the processor."""

    @property
    def status(self) -> str:
        """``applied`` or ``skipped``."""

    @property
    def reason(self) -> str | None:
        """Why it was skipped (a metric label)."""

    def log_fields(self) -> dict[str, object]:
        """Fields for the log line (no PII)."""


Apply = Callable[[Command, str], EffectResultLike]


def skipped_outcome(handled: Handled) -> Skipped:
    """The outcome of an event whose commands were all ruled out."""
    return Skipped(
        reason="+".join(sorted({skip.reason for skip in handled.skipped})) or "no_commands",
        detail="; ".join(skip.detail for skip in handled.skipped),
    )


def _redact(text: str, event: Event) -> str:
    r"""Mask the learner's username in an error text, in every spelling (defence in depth).

    Not only as given: JSON-escaped (``Jos\u00e9``, ``\"``, ``\\``) and percent-encoded
    forms too, since service answers quoted in messages carry those.
    """
    if isinstance(event, CertificateEvent) and event.learner.username:
        return redact_text(text, (event.learner.username,))
    return text


def _failed(stage: Stage, error: ConsumerError, event: Event, *, context: str = "") -> Failed:
    """The failure of ``event``, its message prefixed with ``context`` and redacted."""
    return Failed.of(stage, error, message=context + _redact(str(error), event))


class ApplyProcessor:
    """Handle, then apply every command with retries; thread-safe."""

    def __init__(self, handler: Handler, apply: Apply, retrier: Retrier, metrics: Metrics) -> None:
        self._handler = handler
        self._apply = apply
        self._retrier = retrier
        self._metrics = metrics

    def __call__(self, event: Event, cancelled: threading.Event) -> Outcome:
        """Return what became of ``event``."""
        try:
            handled = self._handler(event)
        except ConsumerError as error:
            return _failed("handle", error, event)
        if handled.is_skipped:
            return skipped_outcome(handled)
        failures: list[Failed] = []
        for command in handled.commands:
            if cancelled.is_set():  # revoked or stopping: the next command must not start
                return Abandoned(why=f"cancelled before {command.name}")
            failure = self._apply_one(command, event, cancelled)
            if isinstance(failure, Abandoned):
                return failure
            if failure is not None:
                failures.append(failure)
        if failures:
            return Failed.combined(failures)
        return Applied(
            commands=len(handled.commands), skipped=tuple(skip.reason for skip in handled.skipped)
        )

    def _apply_one(
        self, command: Command, event: Event, cancelled: threading.Event
    ) -> Failed | Abandoned | None:
        try:
            result = self._retrier.call(
                lambda: self._apply(command, event.meta.id), cancelled, request_id=event.meta.id
            )
        except Cancelled:
            return Abandoned(why=f"cancelled during {command.name}")
        except RetriesExhausted as exhausted:
            self._metrics.commands.labels(command.name, "failed").inc()
            return Failed.of(
                "apply",
                exhausted.error,
                message=f"{command.name}: retries exhausted: "
                + _redact(str(exhausted.error), event),
                attempts=exhausted.attempts,
                first_failure=exhausted.first_failure,
                last_failure=exhausted.last_failure,
            )
        except PermanentError as error:
            self._metrics.commands.labels(command.name, "failed").inc()
            return _failed("apply", error, event, context=f"{command.name}: ")
        self._metrics.commands.labels(command.name, result.status).inc()
        if result.status == "skipped" and result.reason:
            self._metrics.skips.labels(result.reason).inc()
        elif result.reason:
            self._metrics.assumptions.labels(result.reason).inc()
        if result.status == "skipped":  # a skip keeps its line; an applied command is detail
            log.info("command_done", **result.log_fields())  # event_id: bound by the worker
        else:
            log.debug("command_done", **result.log_fields())
        return None


class DryRunProcessor:
    """Write each event's commands (and skips) as JSON lines to ``out``; call no service.

    One line per command: ``{"event_id", "event_type", "command", ...command fields}``, and
    one per skip: ``{"event_id", "event_type", "skip", "detail"}``. Keys are sorted. The
    learner is named by LMS user id only.
    """

    def __init__(self, handler: Handler, out: TextIO) -> None:
        self._handler = handler
        self._out = out
        self._lock = threading.Lock()

    def __call__(self, event: Event, cancelled: threading.Event) -> Outcome:  # noqa: ARG002 - nothing to cancel
        """Print what ``event`` would do."""
        try:
            handled = self._handler(event)
        except ConsumerError as error:
            return _failed("handle", error, event)
        head = {"event_id": event.meta.id, "event_type": str(event.meta.type)}
        lines = [_JSON.encode({**head, **command.to_json()}) for command in handled.commands]
        lines += [_JSON.encode({**head, **skip.to_json()}) for skip in handled.skipped]
        with self._lock:
            self._out.write("".join(line + "\n" for line in lines))
            self._out.flush()
        if handled.is_skipped:
            return skipped_outcome(handled)
        return Applied(
            commands=len(handled.commands), skipped=tuple(skip.reason for skip in handled.skipped)
        )
