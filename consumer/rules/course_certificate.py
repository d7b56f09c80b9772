"""Course-certificate sync: whether to post a learner's course-run credential, and as what.

Seed: ``award_course_certificate`` and ``handle_course_cert_changed``.
"""

from __future__ import annotations

from consumer.commands import CredentialStatus
from consumer.rules.modes import (
    AUDIT_STATUSES,
    DOWNLOADABLE,
    GENERATING,
    HONOR,
    is_certificate_mode,
)
from consumer.rules.skip import Skip


def course_certificate_skip(
    *,
    org: str,
    mode: str,
    status: str,
    honor_certificates_enabled: bool,
    learner_records_disabled_orgs: frozenset[str],
) -> Skip | None:
    """Why a course certificate must not be synced to Credentials, or None to sync it.

    Checked in the seed's order: the org gate of ``handle_course_cert_changed`` (learner
    records disabled), then ``award_course_certificate``'s certificate lookup (audit statuses
    are invisible) and mode test (audit; honor when honor certificates are disabled).
    """
    if org in learner_records_disabled_orgs:
        return Skip("learner_records_disabled", f"learner records are disabled for org {org}")
    if status in AUDIT_STATUSES:
        return Skip("audit_certificate", f"certificate status {status} is never synced")
    if not mode:
        # Not in the seed (the LMS always has a mode); an empty mode cannot be posted.
        return Skip("missing_mode", "the certificate has no mode")
    if mode == HONOR and not honor_certificates_enabled:
        return Skip("honor_certificates_disabled", "honor certificates are disabled")
    if not is_certificate_mode(mode, honor_certificates_enabled=honor_certificates_enabled):
        return Skip("ineligible_mode", f"mode {mode} does not earn a certificate")
    return None


def course_certificate_status(status: str) -> CredentialStatus | Skip:
    """Map an LMS certificate status to a Credentials status (seed: ``post_course_certificate``).

    ``awarded`` only for ``downloadable``: the seed posts ``certificate.is_valid()``, which is
    ``status == downloadable``. ``generating`` is a passing status for the LMS (it fires
    ``CERTIFICATE_CREATED`` and counts towards programs) but not a valid certificate; the
    seed re-read the certificate at task time, usually after it had become
    ``downloadable``, while this worker uses the event's status. Posting ``revoked`` for a
    certificate that is being generated would flap an awarded credential, and posting
    ``awarded`` would contradict ``is_valid``, so it is a skip: the ``downloadable`` event
    that follows does the award. Every other status (notpassing, unavailable, unverified,
    error, ...) is ``revoked``, as in the seed.
    """
    if status == DOWNLOADABLE:
        return "awarded"
    if status == GENERATING:
        return Skip("certificate_generating", "certificate is still generating")
    return "revoked"
