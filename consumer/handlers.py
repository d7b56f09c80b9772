"""What each event asks of Credentials: ``event -> Handled``, pure, given a ``Policy``.

=================================  ===============================================
event (``ce_type``)                commands (seed counterpart)
=================================  ===============================================
``certificate.created.v1``         SyncCourseCertificate + AwardPrograms
                                   (COURSE_CERT_CHANGED + COURSE_CERT_AWARDED)
``certificate.changed.v1``         SyncCourseCertificate (COURSE_CERT_CHANGED)
``certificate.revoked.v1``         SyncCourseCertificate(revoked) + RevokePrograms
                                   (COURSE_CERT_CHANGED + COURSE_CERT_REVOKED)
``course.catalog_info.changed.v1`` SyncCertificateAvailableDate
                                   (COURSE_CERT_DATE_CHANGE / COURSE_PACING_CHANGED)
=================================  ===============================================

A command the policy or the rules rule out becomes a ``Skip`` in ``Handled.skipped``, so an
event never vanishes silently: ``Handled(commands=(), skipped=(...))`` is a skipped event.

``make_handler(policy)`` makes every configuration choice once and returns the specialised
callable the engine calls per event; ``handle(event, policy)`` is the same, in one call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import assert_never

from consumer import rules
from consumer.commands import (
    AwardPrograms,
    Command,
    CredentialStatus,
    RevokePrograms,
    SyncCertificateAvailableDate,
    SyncCourseCertificate,
)
from consumer.errors import InvalidEventError
from consumer.events import CatalogInfoChanged, CertificateEvent, Event, EventType
from consumer.programs import CompletionSource
from consumer.rules import ProgramExclusion, Skip

__all__ = [
    "Handled",
    "Handler",
    "Policy",
    "Skip",
    "award_gate",
    "handle",
    "make_handler",
    "revoke_gate",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """The settings the decisions depend on, built once from configuration.

    Defaults are the platform's defaults, so ``Policy()`` behaves like a stock Open edX.
    """

    honor_certificates_enabled: bool = True
    """False mirrors the LMS's ``FEATURES['DISABLE_HONOR_CERTIFICATES']``: honor is ineligible."""

    learner_records_disabled_orgs: frozenset[str] = frozenset()
    """Orgs (course-key org, exact) whose course certificates are not synced.

    ``LEARNER_RECORDS_DISABLED_ORGS``; the seed's per-org ``ENABLE_LEARNER_RECORDS``.
    """

    programs_without_certificates: ProgramExclusion = frozenset()
    """Program UUIDs never awarded, or ``rules.ALL_PROGRAMS`` to award none.

    ``PROGRAMS_WITHOUT_CERTIFICATES``.
    """

    sync_course_certificates: bool = True
    """Send course-certificate awards and revocations (``CONSUMER_SYNC_COURSE_CERTIFICATES``)."""

    programs_enabled: bool = True
    """Handle program awards *and* revocations; False when ``COURSE_CATALOG_API_URL`` is unset."""

    completion_source: CompletionSource = "credentials"
    """Where program completion learns the learner's runs (``CONSUMER_COMPLETION_SOURCE``).

    Not a handler decision: ``effects`` and ``explain`` read it, with the rest of this value.
    """


@dataclass(frozen=True, slots=True)
class Handled:
    """The outcome of one event: the commands to apply and what was skipped, and why."""

    commands: tuple[Command, ...]
    skipped: tuple[Skip, ...] = ()

    @property
    def is_skipped(self) -> bool:
        """True when nothing is to be done; ``skipped`` then says why."""
        return not self.commands


Handler = Callable[[Event], Handled]
_Step = Callable[[CertificateEvent], Command | Skip]


def _handled(*outcomes: Command | Skip) -> Handled:
    return Handled(
        commands=tuple(item for item in outcomes if not isinstance(item, Skip)),
        skipped=tuple(item for item in outcomes if isinstance(item, Skip)),
    )


# ---------------------------------------------------------------------------- steps


def _course_sync_step(policy: Policy, *, revoke: bool) -> _Step:
    """SyncCourseCertificate, or the reason not to (seed: ``award_course_certificate``).

    ``revoke`` forces status ``revoked`` (the revoked event); otherwise the status follows
    the certificate's (``rules.course_certificate_status``).
    """
    if not policy.sync_course_certificates:
        disabled = Skip(
            "course_certificate_sync_disabled", "CONSUMER_SYNC_COURSE_CERTIFICATES is false"
        )
        return lambda _event: disabled

    def step(event: CertificateEvent) -> Command | Skip:
        skip = rules.course_certificate_skip(
            org=event.course_key.org or "",
            mode=event.mode,
            status=event.status,
            honor_certificates_enabled=policy.honor_certificates_enabled,
            learner_records_disabled_orgs=policy.learner_records_disabled_orgs,
        )
        if skip is not None:
            return skip
        status: CredentialStatus | Skip = (
            "revoked" if revoke else rules.course_certificate_status(event.status)
        )
        if isinstance(status, Skip):
            return status
        return SyncCourseCertificate(
            learner=event.learner,
            course_run=str(event.course_key),
            mode=event.mode,
            status=status,
        )

    return step


_PROGRAMS_NOT_CONFIGURED = Skip(
    "programs_not_configured", "COURSE_CATALOG_API_URL is not set: programs are not handled"
)
_PROGRAMS_WITHOUT_CERTIFICATES_ALL = Skip(
    "programs_without_certificates_all", "PROGRAMS_WITHOUT_CERTIFICATES is ALL"
)


def award_gate(policy: Policy) -> Skip | None:
    """Why the policy turns program awards off, or None (seed: return on ALL)."""
    if not policy.programs_enabled:
        return _PROGRAMS_NOT_CONFIGURED
    if rules.awarding_disabled(policy.programs_without_certificates):
        return _PROGRAMS_WITHOUT_CERTIFICATES_ALL
    return None


def revoke_gate(policy: Policy) -> Skip | None:
    """Why the policy turns program revocations off, or None (the seed's ignore ALL)."""
    return None if policy.programs_enabled else _PROGRAMS_NOT_CONFIGURED


def _award_step(policy: Policy) -> _Step:
    """AwardPrograms, unless ``award_gate`` says why not."""
    gate = award_gate(policy)
    if gate is not None:
        return lambda _event: gate
    return lambda event: AwardPrograms(
        learner=event.learner,
        course_run=str(event.course_key),
        mode=event.mode,
        status=event.status,
    )


def _revoke_step(policy: Policy) -> _Step:
    """RevokePrograms, unless ``revoke_gate`` says why not."""
    gate = revoke_gate(policy)
    if gate is not None:
        return lambda _event: gate
    return lambda event: RevokePrograms(learner=event.learner, course_run=str(event.course_key))


def _catalog_changed(event: CatalogInfoChanged) -> Handled:
    """SyncCertificateAvailableDate: the date itself needs Studio, so effects decide it."""
    return Handled(
        commands=(
            SyncCertificateAvailableDate(
                course_run=str(event.course_key), pacing=event.pacing, end=event.end
            ),
        )
    )


# ---------------------------------------------------------------------------- routing


def make_handler(policy: Policy) -> Handler:
    """Build the per-event handler for this policy; call it once, at start-up.

    Every configuration branch is taken here, so the returned callable only routes on the
    event type. It raises ``InvalidEventError`` (dead letter) for a certificate event whose
    ``ce_type`` is not a certificate type, which ``events.build_event`` never produces.
    """
    sync = _course_sync_step(policy, revoke=False)
    sync_revoked = _course_sync_step(policy, revoke=True)
    award = _award_step(policy)
    revoke = _revoke_step(policy)

    def certificate(event: CertificateEvent) -> Handled:
        match event.meta.type:
            case EventType.CERTIFICATE_CREATED:
                return _handled(sync(event), award(event))
            case EventType.CERTIFICATE_CHANGED:
                return _handled(sync(event))
            case EventType.CERTIFICATE_REVOKED:
                return _handled(sync_revoked(event), revoke(event))
            case EventType.CATALOG_INFO_CHANGED:
                raise InvalidEventError(
                    f"a certificate event cannot have ce_type {event.meta.type}"
                )
            case unknown:
                assert_never(unknown)

    def handler(event: Event) -> Handled:
        match event:
            case CatalogInfoChanged():
                return _catalog_changed(event)
            case CertificateEvent():
                return certificate(event)
            case unknown:
                assert_never(unknown)

    return handler


def handle(event: Event, policy: Policy) -> Handled:
    """Return what ``event`` asks for under ``policy`` (use ``make_handler`` in a loop)."""
    return make_handler(policy)(event)
