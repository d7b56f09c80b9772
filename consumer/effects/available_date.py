"""A run's certificate available date: course modes from the LMS, display settings from Studio.

The catalog event carries pacing and end only; the display behaviour and the CAD come from
the command when it has them, else from Studio's course details, else nothing — and then
``rules`` assume ``end`` and the effect says so (``display_behavior_assumed``).
"""

from __future__ import annotations

from datetime import datetime

import structlog

from consumer import rules
from consumer.commands import SyncCertificateAvailableDate, iso_utc
from consumer.effects.results import EffectResult
from consumer.services.bundle import Services

log = structlog.get_logger("consumer.effects")


class AvailableDateEffect:
    """Upserts a run's course-certificate config with its CAD. Thread-safe; blocks on HTTP."""

    def __init__(self, services: Services, *, honor_certificates_enabled: bool) -> None:
        self._services = services
        self._honor = honor_certificates_enabled

    def apply(self, command: SyncCertificateAvailableDate, request_id: str) -> EffectResult:
        """Decide the certificate type and date, then post the config (idempotent)."""
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
