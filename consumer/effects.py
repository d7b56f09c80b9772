"""Commands become service calls: the only place fetched data meets ``rules``.

``Effects.apply(command, request_id)`` reads what the decision needs, asks ``rules``, writes
the result to Credentials and returns an ``EffectResult`` saying what was done or skipped
and why (LMS user id and keys only: no username, e-mail or name). Every write is an upsert,
so applying a command again — a retry, a replay — is harmless.

Failures are the service errors, raised (the engine retries ``TransientError`` and
dead-letters the rest). Program awards and revocations are one POST per program: a failed
program does not undo the others; after trying them all, the worst error is raised
(outage before transient before permanent), naming the programs that failed. A retry then
re-reads the awarded programs, so it only repeats what is still missing. A program
Credentials has not configured is a per-program skip, not an error.

Program completion never takes a learner's mode from Credentials: Credentials answers a
run's config type as every credential's mode (ADR 0007). The event's own run counts with
the event's mode and status. With ``completion_source="credentials"`` (default) *which*
other runs the learner holds comes from Credentials' awarded ``course-run`` credentials
(sees certificates before they are viewable, misses orgs whose course sync is disabled),
and their modes from the LMS — its certificates list, and the per-run certificate for a
run the list leaves out because it is not yet viewable — only for runs of programs the
held runs could complete. With ``"lms"`` the LMS certificates list is the whole source
(every org, but only certificates already viewable).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import structlog

from consumer import rules
from consumer.commands import (
    AwardPrograms,
    Command,
    CredentialStatus,
    RevokePrograms,
    SyncCertificateAvailableDate,
    SyncCourseCertificate,
    iso_utc,
)
from consumer.errors import (
    CircuitOpenError,
    ConsumerError,
    PermanentError,
    ServiceUnavailableError,
    TransientError,
)
from consumer.events import Learner
from consumer.programs import LearnerCertificate, PassingCertificate, Program
from consumer.services.bundle import Services
from consumer.services.credentials import ProgramWrite
from consumer.services.program_cache import ProgramCache

log = structlog.get_logger(__name__)

Status = Literal["applied", "skipped"]
Completion = Callable[
    [str, PassingCertificate | None, ProgramCache, str],
    tuple[tuple[PassingCertificate, ...], tuple[Program, ...]],
]
"""(username, the event's certificate, cache, request id) -> (passing certificates, candidates)."""
ProgramAction = Literal["awarded", "revoked", "skipped"]
_DONE_EVENT: dict[CredentialStatus, str] = {
    "awarded": "program_awarded",
    "revoked": "program_revoked",
}
_FAILED_EVENT: dict[CredentialStatus, str] = {
    "awarded": "program_award_failed",
    "revoked": "program_revoke_failed",
}


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
    status: Status
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
    """The most retryable failure, re-raised with the programs that failed in its message."""
    worst = max((error for _, error in failures), key=_severity)
    failed = ", ".join(uuid for uuid, _ in failures)
    done = ", ".join(f"{item.program_uuid}={item.action}" for item in results) or "none"
    message = f"{worst} [programs failed: {failed}; others: {done}]"
    summary: ConsumerError
    if isinstance(worst, TransientError):
        summary = type(worst)(
            message, service=worst.service, status=worst.status, retry_after=worst.retry_after
        )
    elif isinstance(worst, PermanentError):
        summary = PermanentError(message, service=worst.service, status=worst.status)
    else:
        return worst
    summary.reason = worst.reason
    return summary


def _learner_result(
    command: AwardPrograms | RevokePrograms, status: Status, reason: str | None
) -> EffectResult:
    """The result of a program command that wrote nothing (or before per-program detail)."""
    return EffectResult(
        command=command.name,
        status=status,
        reason=reason,
        lms_user_id=command.learner.user_id,
        course_run=command.course_run,
    )


class Effects:
    """Applies commands with the service clients. Thread-safe; blocks on HTTP."""

    def __init__(
        self,
        services: Services,
        *,
        programs_without_certificates: rules.ProgramExclusion = frozenset(),
        honor_certificates_enabled: bool = True,
    ) -> None:
        self._services = services
        self._excluded = programs_without_certificates
        self._honor = honor_certificates_enabled
        self._completion: Completion = (
            self._completion_from_lms
            if services.settings.completion_source == "lms"
            else self._completion_from_credentials
        )

    def apply(self, command: Command, request_id: str) -> EffectResult:
        """Apply ``command``; ``request_id`` (the event id) goes into every request.

        Idempotent. Raises ``TransientError``/``ServiceUnavailableError`` (retry) or
        ``PermanentError`` (dead letter); a skip is a result, never an error.
        """
        if isinstance(command, SyncCourseCertificate):
            return self._sync_course_certificate(command, request_id)
        if isinstance(command, AwardPrograms):
            return self._award_programs(command, request_id)
        if isinstance(command, RevokePrograms):
            return self._revoke_programs(command, request_id)
        return self._sync_available_date(command, request_id)

    # ------------------------------------------------------------------ course certificate

    def _sync_course_certificate(
        self, command: SyncCourseCertificate, request_id: str
    ) -> EffectResult:
        self._services.credentials.post_course_run_credential(
            username=command.learner.username,
            course_run=command.course_run,
            mode=command.mode,
            status=command.status,
            date_override=command.date_override,
            request_id=request_id,
        )
        return EffectResult(
            command=command.name,
            status="applied",
            detail=command.status,
            lms_user_id=command.learner.user_id,
            course_run=command.course_run,
        )

    # ------------------------------------------------------------------ programs

    def _award_programs(self, command: AwardPrograms, request_id: str) -> EffectResult:
        def result(status: Status, reason: str | None) -> EffectResult:
            return _learner_result(command, status, reason)

        cache = self._services.programs
        if cache is None:
            return result("skipped", "programs_not_configured")
        if rules.awarding_disabled(self._excluded):
            return result("skipped", "programs_without_certificates_all")
        username = command.learner.username
        own = rules.event_certificate(command.course_run, command.mode, command.status)
        passing, candidates = self._completion(username, own, cache, request_id)
        if not passing:
            return result("skipped", "no_completed_programs")
        completed = rules.completed_programs(candidates, passing)
        if not completed:
            return result("skipped", "no_completed_programs")
        awarded = self._services.credentials.awarded_program_uuids(
            username=username, request_id=request_id
        )
        to_award = rules.programs_to_award(completed, awarded, self._excluded)
        if not to_award:
            return result("skipped", "already_awarded")
        outcomes = self._write_programs(command.learner, to_award, "awarded", request_id)
        return self._programs_result(command.name, command.learner, command.course_run, outcomes)

    def _completion_from_credentials(
        self,
        username: str,
        own: PassingCertificate | None,
        cache: ProgramCache,
        request_id: str,
    ) -> tuple[tuple[PassingCertificate, ...], tuple[Program, ...]]:
        """Held runs from Credentials; modes from the event (its run) and the LMS (others).

        The LMS is asked only when a program the held runs could complete has a run other
        than the event's: one list request, plus one per such run the list leaves out.
        """
        held = self._services.credentials.awarded_course_runs(
            username=username, request_id=request_id
        )
        mine = frozenset({own.course_run}) if own is not None else frozenset[str]()
        runs = held | mine
        if not runs:
            return (), ()
        candidates = rules.completable_programs(cache.programs_for_runs(runs), runs)
        needed = frozenset(run for program in candidates for run in program.run_keys())
        found = self._lms_certificates(username, (needed & held) - mine, request_id)
        passing = rules.counted_certificates(found, source="credentials", held_runs=held, own=own)
        return passing, candidates

    def _lms_certificates(
        self, username: str, runs: frozenset[str], request_id: str
    ) -> tuple[LearnerCertificate, ...]:
        """The learner's LMS certificates in ``runs``, with the LMS's modes and statuses.

        The list first (passing, viewable only); a run it leaves out is read on its own
        (not yet viewable, or not passing). ``rules.counted_certificates`` judges them.
        """
        if not runs:
            return ()
        lms = self._services.lms
        listed = {
            cert.course_id: cert.as_learner(listed=True)
            for cert in lms.certificates(username=username, request_id=request_id)
            if cert.course_id in runs
        }
        found = list(listed.values())
        for run in sorted(runs - listed.keys()):
            cert = lms.certificate(username=username, course_run=run, request_id=request_id)
            if cert is not None:
                found.append(cert.as_learner(listed=False))
        return tuple(found)

    def _completion_from_lms(
        self,
        username: str,
        own: PassingCertificate | None,
        cache: ProgramCache,
        request_id: str,
    ) -> tuple[tuple[PassingCertificate, ...], tuple[Program, ...]]:
        """The LMS certificates list, with the event's own certificate for its run."""
        listed = tuple(
            cert.as_learner(listed=True)
            for cert in self._services.lms.certificates(username=username, request_id=request_id)
        )
        passing = rules.counted_certificates(listed, source="lms", held_runs=frozenset(), own=own)
        return passing, cache.programs_for_runs(cert.course_run for cert in passing)

    def _revoke_programs(self, command: RevokePrograms, request_id: str) -> EffectResult:
        def result(status: Status, reason: str | None) -> EffectResult:
            return _learner_result(command, status, reason)

        cache = self._services.programs
        if cache is None:
            return result("skipped", "programs_not_configured")
        containing: tuple[Program, ...] = cache.programs_for_runs((command.course_run,))
        if not containing:
            return result("skipped", "no_program_contains_run")
        awarded = self._services.credentials.awarded_program_uuids(
            username=command.learner.username, request_id=request_id
        )
        to_revoke = rules.programs_to_revoke(containing, command.course_run, awarded)
        if not to_revoke:
            return result("skipped", "no_awarded_program_contains_run")
        outcomes = self._write_programs(command.learner, to_revoke, "revoked", request_id)
        return self._programs_result(command.name, command.learner, command.course_run, outcomes)

    def _write_programs(
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
                    request_id=request_id,
                )
                if _is_outage(error):
                    break
                continue
            if written is ProgramWrite.NOT_CONFIGURED:
                results.append(ProgramResult(program_uuid, "skipped", written.value))
                log.warning(
                    "program_not_configured",
                    program_uuid=program_uuid,
                    lms_user_id=learner.user_id,
                    request_id=request_id,
                )
            else:
                results.append(ProgramResult(program_uuid, status))
                log.info(
                    _DONE_EVENT[status],
                    program_uuid=program_uuid,
                    lms_user_id=learner.user_id,
                    request_id=request_id,
                )
        if failures:
            raise _worst(failures, results)
        return results

    @staticmethod
    def _programs_result(
        command: str, learner: Learner, course_run: str, outcomes: list[ProgramResult]
    ) -> EffectResult:
        written = any(item.action in ("awarded", "revoked") for item in outcomes)
        skipped = any(item.action == "skipped" for item in outcomes)
        return EffectResult(
            command=command,
            status="applied" if written else "skipped",
            reason="program_not_configured" if skipped else None,
            lms_user_id=learner.user_id,
            course_run=course_run,
            programs=tuple(outcomes),
        )

    # ------------------------------------------------------------------ CAD

    def _sync_available_date(
        self, command: SyncCertificateAvailableDate, request_id: str
    ) -> EffectResult:
        modes = self._services.lms.course_modes(
            course_run=command.course_run, request_id=request_id
        )
        certificate_type = rules.certificate_type(modes, honor_certificates_enabled=self._honor)
        if isinstance(certificate_type, rules.Skip):
            return EffectResult(
                command=command.name,
                status="skipped",
                reason=certificate_type.reason,
                detail=certificate_type.detail,
                course_run=command.course_run,
            )
        behavior, available, assumed = self._display_settings(command, request_id)
        decided = rules.certificate_available_date(
            pacing=command.pacing,
            end=command.end,
            display_behavior=behavior,
            available_date=available,
        )
        self._services.credentials.post_course_certificate_config(
            course_run=command.course_run,
            certificate_type=certificate_type,
            certificate_available_date=decided.value,
            request_id=request_id,
        )
        reason = assumed or decided.fallback
        if reason:
            log.warning(
                "display_behavior_assumed",
                course_run=command.course_run,
                reason=reason,
                assumed=decided.behavior,
            )
        return EffectResult(
            command=command.name,
            status="applied",
            reason=reason,
            course_run=command.course_run,
            certificate_type=certificate_type,
            certificate_available_date=iso_utc(decided.value),
            display_behavior=decided.behavior,
        )

    def _display_settings(
        self, command: SyncCertificateAvailableDate, request_id: str
    ) -> tuple[str | None, datetime | None, str | None]:
        """(display behaviour, CAD, why the behaviour is assumed) for an instructor-paced run.

        The command's own values win; else Studio's course details; else nothing, and the
        rules assume ``end``. Self-paced runs need neither (their date is always null).
        """
        if command.pacing == "self":
            return None, None, None
        if command.display_behavior is not None:
            return command.display_behavior, command.certificate_available_date, None
        studio = self._services.studio
        if studio is None:
            return None, None, "studio_not_configured"
        details = studio.course_details(course_run=command.course_run, request_id=request_id)
        return details.display_behavior, details.certificate_available_date, None
