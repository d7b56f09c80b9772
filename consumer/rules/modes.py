"""The vocabulary of modes and certificate statuses every seed area shares.

Seed: ``course_modes/models.py`` (modes, eligibility), ``certificates/data.py`` (statuses)
and ``programs/utils.py`` (the mode translations of ``ProgramProgressMeter``).
"""

from __future__ import annotations

from typing import Final

AUDIT: Final = "audit"
HONOR: Final = "honor"

CERTIFICATE_RELEVANT_MODES: Final = frozenset(
    {
        "credit",
        "verified",
        "professional",
        "no-id-professional",
        "executive-education",
        "paid-executive-education",
        "paid-bootcamp",
        "masters",
    }
)
"""Seed: ``CourseMode.CERTIFICATE_RELEVANT_MODES`` (credit + credit-eligible + masters)."""

CREDENTIALS_CERTIFICATE_TYPES: Final = frozenset(
    {"honor", "verified", "professional", "no-id-professional", "masters"}
)
"""The ``certificate_type`` values Credentials' ``course_certificates`` endpoint accepts."""

DOWNLOADABLE: Final = "downloadable"
GENERATING: Final = "generating"
AUDIT_STATUSES: Final = frozenset({"audit_passing", "audit_notpassing"})
"""Seed: ``EligibleCertificateManager`` hides these, so ``award_course_certificate`` finds no
certificate and does nothing."""


def is_mode_eligible(mode: str, *, honor_certificates_enabled: bool) -> bool:
    """Whether a mode earns a certificate (seed: ``CourseMode.is_eligible_for_certificate``).

    Every mode but ``audit``; ``honor`` only while honor certificates are enabled (the
    platform's ``FEATURES['DISABLE_HONOR_CERTIFICATES']``, inverted). The seed's exception
    for an honor certificate that is already ``downloadable`` applies only when a status is
    passed, and neither seed task that matters here passes one, so it is not reproduced.
    """
    if mode == AUDIT:
        return False
    return honor_certificates_enabled or mode != HONOR


def is_certificate_mode(mode: str, *, honor_certificates_enabled: bool) -> bool:
    """Seed test of both tasks (course sync and CAD config): relevant mode *or* eligible mode."""
    return mode in CERTIFICATE_RELEVANT_MODES or is_mode_eligible(
        mode, honor_certificates_enabled=honor_certificates_enabled
    )


def is_passing_status(status: str) -> bool:
    """Whether a certificate status counts towards programs: ``downloadable`` or ``generating``.

    Seed: ``CertificateStatuses.PASSED_STATUSES``, which ``ProgramProgressMeter`` reads.
    """
    return status in (DOWNLOADABLE, GENERATING)


def run_seat_type(seat_type: str | None) -> str | None:
    """Translate a program run's seat type: credit → verified.

    Seed: ``ProgramProgressMeter._course_run_mode_translation``.
    """
    return "verified" if seat_type == "credit" else seat_type


def certificate_mode(mode: str) -> str:
    """Translate a certificate's mode (seed: ``_certificate_mode_translation``).

    no-id-professional → professional. Only the certificate side is translated: a run whose
    Discovery type were ``no-id-professional`` would never match (Discovery reports such
    runs as ``professional``), exactly as in the seed.
    """
    return "professional" if mode == "no-id-professional" else mode
