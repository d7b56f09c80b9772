"""``Effects``: one command in, its service calls made, an ``EffectResult`` out."""

from __future__ import annotations

from typing import assert_never

from consumer.commands import (
    AwardPrograms,
    Command,
    RevokePrograms,
    SyncCertificateAvailableDate,
    SyncCourseCertificate,
)
from consumer.effects.available_date import AvailableDateEffect
from consumer.effects.programs import ProgramEffects
from consumer.effects.results import EffectResult
from consumer.handlers import Policy
from consumer.services.bundle import Services


class Effects:
    """Applies commands with the service clients. Thread-safe; blocks on HTTP.

    ``policy`` is the handler's own ``Policy``: effects read the part they need from it —
    the program gates (``programs_enabled``, ``PROGRAMS_WITHOUT_CERTIFICATES``), the program
    exclusions, the completion source, and whether honor certificates are enabled (the CAD's
    certificate type) — and decide none of it again. Raises ``ValueError`` when the policy
    handles programs but ``services`` has no Discovery (see ``ProgramEffects``).
    """

    def __init__(self, services: Services, policy: Policy | None = None) -> None:
        policy = policy if policy is not None else Policy()
        self._services = services
        self._programs = ProgramEffects(services, policy)
        self._available_date = AvailableDateEffect(
            services, honor_certificates_enabled=policy.honor_certificates_enabled
        )

    def apply(self, command: Command, request_id: str) -> EffectResult:
        """Apply ``command``; ``request_id`` (the event id) goes into every request.

        Idempotent. Raises ``TransientError``/``ServiceUnavailableError`` (retry) or
        ``PermanentError`` (dead letter); a skip is a result, never an error.
        """
        match command:
            case SyncCourseCertificate():
                return self._sync_course_certificate(command, request_id)
            case AwardPrograms():
                return self._programs.award(command, request_id)
            case RevokePrograms():
                return self._programs.revoke(command, request_id)
            case SyncCertificateAvailableDate():
                return self._available_date.apply(command, request_id)
            case unknown:
                assert_never(unknown)

    def _sync_course_certificate(
        self, command: SyncCourseCertificate, request_id: str
    ) -> EffectResult:
        """Upsert the course-run credential (seed: ``post_course_certificate``)."""
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
