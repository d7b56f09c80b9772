"""Program awards and revocations: read what the decision needs, ask ``rules``, write.

One POST per program: a failed program does not undo the others; after trying them all,
the worst error is raised (outage before transient before permanent), naming the programs
that failed. A retry then re-reads the awarded programs, so it only repeats what is still
missing. A program Credentials has not configured is a per-program skip, not an error.

Whether programs are handled at all is the handler's ``Policy`` decision
(``handlers.award_gate`` / ``revoke_gate``); these effects hold the same gates, taken from
the same policy once, and never decide it again from what happens to be configured.
"""

from __future__ import annotations

import structlog

from consumer import rules
from consumer.commands import AwardPrograms, CredentialStatus, RevokePrograms
from consumer.effects.completion import completion
from consumer.effects.results import EffectResult, EffectStatus, ProgramResult
from consumer.errors import (
    CircuitOpenError,
    ConsumerError,
    PermanentError,
    ServiceUnavailableError,
    TransientError,
)
from consumer.events import Learner
from consumer.handlers import Policy, award_gate, revoke_gate
from consumer.programs import Program
from consumer.rules import Skip
from consumer.services.bundle import Services
from consumer.services.credentials import ProgramWrite

log = structlog.get_logger("consumer.effects")

_DONE_EVENT: dict[CredentialStatus, str] = {
    "awarded": "program_awarded",
    "revoked": "program_revoked",
}
_FAILED_EVENT: dict[CredentialStatus, str] = {
    "awarded": "program_award_failed",
    "revoked": "program_revoke_failed",
}


def _is_outage(error: ConsumerError) -> bool:
    """The service is down (or its circuit open): further requests would fail the same way."""
    return isinstance(error, ServiceUnavailableError | CircuitOpenError)


def _severity(error: ConsumerError) -> int:
    if _is_outage(error):
        return 3
    if isinstance(error, TransientError):
        return 2
    return 1


def _worst(
    failures: list[tuple[str, ConsumerError]], results: list[ProgramResult]
) -> ConsumerError:
    """The most retryable failure, restated as its own class with the programs that failed."""
    worst = max((error for _, error in failures), key=_severity)
    failed = ", ".join(uuid for uuid, _ in failures)
    done = ", ".join(f"{item.program_uuid}={item.action}" for item in results) or "none"
    message = f"{worst} [programs failed: {failed}; others: {done}]"
    if isinstance(worst, TransientError):
        return type(worst)(
            message,
            service=worst.service,
            status=worst.status,
            retry_after=worst.retry_after,
            reason=worst.reason,
        )
    if isinstance(worst, PermanentError):
        return PermanentError(
            message, service=worst.service, status=worst.status, reason=worst.reason
        )
    return worst


def _learner_result(
    command: AwardPrograms | RevokePrograms,
    status: EffectStatus,
    reason: str | None,
    detail: str = "",
) -> EffectResult:
    """The result of a program command that wrote nothing (or before per-program detail)."""
    return EffectResult(
        command=command.name,
        status=status,
        reason=reason,
        detail=detail,
        lms_user_id=command.learner.user_id,
        course_run=command.course_run,
    )


def _gated(command: AwardPrograms | RevokePrograms, gate: Skip) -> EffectResult:
    return _learner_result(command, "skipped", gate.reason, gate.detail)


class ProgramEffects:
    """Awards and revokes program credentials. Thread-safe; blocks on HTTP.

    Raises ``ValueError`` when the policy handles programs but ``services`` has no program
    cache (Discovery unconfigured): a wiring mistake, found at start-up.
    """

    def __init__(self, services: Services, policy: Policy) -> None:
        self._award_gate = award_gate(policy)
        self._revoke_gate = revoke_gate(policy)
        if services.programs is None and (self._award_gate is None or self._revoke_gate is None):
            raise ValueError("the policy handles programs, but Discovery is not configured")
        self._services = services
        self._cache = services.programs
        self._excluded = policy.programs_without_certificates
        self._completion = completion(policy.completion_source, services)

    def award(self, command: AwardPrograms, request_id: str) -> EffectResult:
        """Award every completed program the learner does not hold and the policy allows."""
        if self._award_gate is not None:
            return _gated(command, self._award_gate)
        assert self._cache is not None  # __init__: an open gate has a cache
        username = command.learner.username
        own = rules.event_certificate(command.course_run, command.mode, command.status)
        passing, candidates = self._completion(username, own, self._cache, request_id)
        if not passing:
            return _learner_result(command, "skipped", "no_completed_programs")
        completed = rules.completed_programs(candidates, passing)
        if not completed:
            return _learner_result(command, "skipped", "no_completed_programs")
        awarded = self._services.credentials.awarded_program_uuids(
            username=username, request_id=request_id
        )
        to_award = rules.programs_to_award(completed, awarded, self._excluded)
        if not to_award:
            return _learner_result(command, "skipped", "already_awarded")
        outcomes = self._write(command.learner, to_award, "awarded", request_id)
        return _programs_result(command, outcomes)

    def revoke(self, command: RevokePrograms, request_id: str) -> EffectResult:
        """Revoke the learner's awarded programs that contain the run (seed behaviour)."""
        if self._revoke_gate is not None:
            return _gated(command, self._revoke_gate)
        assert self._cache is not None  # __init__: an open gate has a cache
        containing: tuple[Program, ...] = self._cache.programs_for_runs((command.course_run,))
        if not containing:
            return _learner_result(command, "skipped", "no_program_contains_run")
        awarded = self._services.credentials.awarded_program_uuids(
            username=command.learner.username, request_id=request_id
        )
        to_revoke = rules.programs_to_revoke(containing, command.course_run, awarded)
        if not to_revoke:
            return _learner_result(command, "skipped", "no_awarded_program_contains_run")
        outcomes = self._write(command.learner, to_revoke, "revoked", request_id)
        return _programs_result(command, outcomes)

    def _write(
        self,
        learner: Learner,
        program_uuids: tuple[str, ...],
        status: CredentialStatus,
        request_id: str,
    ) -> list[ProgramResult]:
        """POST each program; raise the worst failure after trying them all.

        An outage-class failure (or an open circuit) stops the loop early: the rest would
        fail the same way.
        """
        results: list[ProgramResult] = []
        failures: list[tuple[str, ConsumerError]] = []
        for program_uuid in program_uuids:
            try:
                written = self._services.credentials.post_program_credential(
                    username=learner.username,
                    lms_user_id=learner.user_id,
                    program_uuid=program_uuid,
                    status=status,
                    request_id=request_id,
                )
            except (TransientError, PermanentError) as error:
                failures.append((program_uuid, error))
                log.warning(
                    _FAILED_EVENT[status],
                    program_uuid=program_uuid,
                    lms_user_id=learner.user_id,
                    error=error.reason,
                )
                if _is_outage(error):
                    break
                continue
            if written is ProgramWrite.NOT_CONFIGURED:
                results.append(ProgramResult(program_uuid, "skipped", written.value))
                log.warning(
                    "program_not_configured", program_uuid=program_uuid, lms_user_id=learner.user_id
                )
            else:
                results.append(ProgramResult(program_uuid, status))
                log.info(
                    _DONE_EVENT[status], program_uuid=program_uuid, lms_user_id=learner.user_id
                )
        if failures:
            raise _worst(failures, results)
        return results


def _programs_result(
    command: AwardPrograms | RevokePrograms, outcomes: list[ProgramResult]
) -> EffectResult:
    written = any(item.action != "skipped" for item in outcomes)
    skipped = any(item.action == "skipped" for item in outcomes)
    return EffectResult(
        command=command.name,
        status="applied" if written else "skipped",
        reason="program_not_configured" if skipped else None,
        lms_user_id=command.learner.user_id,
        course_run=command.course_run,
        programs=tuple(outcomes),
    )
