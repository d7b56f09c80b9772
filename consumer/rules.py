"""Every decision of the seed tasks, as pure functions: values in, values out.

The seed is edx-platform's ``openedx/core/djangoapps/programs/tasks.py`` and ``signals.py``,
with the helpers they call (``course_modes/models.py``, ``certificates/models.py`` and
``data.py``, ``programs/utils.py``). Each function here names the seed rule it reproduces;
where the seed is ambiguous or wrong the choice is written next to the code.

No I/O, no clock, no configuration reads, no logging: the caller passes every setting as an
argument and logs or counts what comes back. A decision not to act is a ``Skip`` value with
a snake_case ``reason`` (a metric label) and a ``detail`` for people; neither ever holds a
username, e-mail or full name.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from consumer.commands import CredentialStatus
from consumer.events import Pacing
from consumer.programs import PassingCertificate, Program, ProgramCourse

# ---------------------------------------------------------------------------- modes

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

# ---------------------------------------------------------------------------- statuses

DOWNLOADABLE: Final = "downloadable"
GENERATING: Final = "generating"
AUDIT_STATUSES: Final = frozenset({"audit_passing", "audit_notpassing"})
"""Seed: ``EligibleCertificateManager`` hides these, so ``award_course_certificate`` finds no
certificate and does nothing."""

# ---------------------------------------------------------------------------- programs

ALL_PROGRAMS: Final = "ALL"
ProgramExclusion = frozenset[str] | Literal["ALL"]
"""``PROGRAMS_WITHOUT_CERTIFICATES``: program UUIDs never awarded, or ``"ALL"`` (no awards)."""

# ---------------------------------------------------------------------------- CAD

END: Final = "end"
END_WITH_DATE: Final = "end_with_date"
EARLY_NO_INFO: Final = "early_no_info"


@dataclass(frozen=True, slots=True)
class Skip:
    """A decision not to act, with why: ``reason`` is a snake_case metric label.

    ``detail`` is for a log line or a person; it names modes, orgs and settings, never the
    learner (who is already in the log context by LMS user id).
    """

    reason: str
    detail: str

    def to_json(self) -> dict[str, str]:
        """Return the dry-run form of this skip."""
        return {"skip": self.reason, "detail": self.detail}


# ============================================================================ course certificate


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


def _is_certificate_mode(mode: str, *, honor_certificates_enabled: bool) -> bool:
    """Seed test of both tasks: relevant mode *or* eligible mode."""
    return mode in CERTIFICATE_RELEVANT_MODES or is_mode_eligible(
        mode, honor_certificates_enabled=honor_certificates_enabled
    )


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
    if not _is_certificate_mode(mode, honor_certificates_enabled=honor_certificates_enabled):
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


# ============================================================================ programs


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


def _earned(certificates: Iterable[PassingCertificate]) -> frozenset[tuple[str, str]]:
    return frozenset((cert.course_run, certificate_mode(cert.mode)) for cert in certificates)


def _is_course_complete(course: ProgramCourse, earned: frozenset[tuple[str, str]]) -> bool:
    # A run with no seat type (None) is never in ``earned``: certificate modes are strings.
    return any((run.key, run_seat_type(run.seat_type)) in earned for run in course.runs)


def _is_complete(program: Program, earned: frozenset[tuple[str, str]]) -> bool:
    # ``all`` of nothing is True, so a program without courses is excluded explicitly
    # (the seed's available date stays None for it).
    return bool(program.courses) and all(
        _is_course_complete(course, earned) for course in program.courses
    )


def is_program_complete(program: Program, certificates: Iterable[PassingCertificate]) -> bool:
    """Whether the certificates complete the program (seed: ``_available_date_for_program``).

    Every course needs one run whose translated seat type equals the translated mode of a
    passing certificate in that run; a program with no courses is never complete.
    ``certificates`` must already be passing ones (the caller's source filters them).
    """
    return _is_complete(program, _earned(certificates))


def is_passing_status(status: str) -> bool:
    """Whether a certificate status counts towards programs: ``downloadable`` or ``generating``.

    Seed: ``CertificateStatuses.PASSED_STATUSES``, which ``ProgramProgressMeter`` reads.
    """
    return status in (DOWNLOADABLE, GENERATING)


def completable_programs(
    programs: Iterable[Program], held_runs: Iterable[str]
) -> tuple[Program, ...]:
    """The programs every course of which has a run in ``held_runs`` (modes not yet checked).

    Only these can be complete, so only their runs' certificate modes need to be looked up;
    a program without courses is never complete and is left out.
    """
    held = frozenset(held_runs)
    return tuple(
        program
        for program in programs
        if program.courses
        and all(any(run.key in held for run in course.runs) for course in program.courses)
    )


def completed_programs(
    programs: Iterable[Program], certificates: Iterable[PassingCertificate]
) -> tuple[str, ...]:
    """Return the UUIDs of the programs the certificates complete, sorted and canonical.

    Evaluated over every program, which equals the DESIGN's "programs containing any
    completed run": a program with no completed run cannot be complete.
    """
    earned = _earned(certificates)
    return tuple(sorted({canonical_uuid(p.uuid) for p in programs if _is_complete(p, earned)}))


def canonical_uuid(value: str) -> str:
    """Spell a program UUID one way, so UUIDs compare by value (case, hyphens, braces).

    The seed compares raw strings; Discovery and Credentials agree on the spelling, but an
    operator's ``PROGRAMS_WITHOUT_CERTIFICATES`` may not, and a silent miss there awards a
    program that should never be. Text that is not a UUID is compared as given, lowercased.
    """
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        return value.strip().lower()


def awarding_disabled(excluded: ProgramExclusion) -> bool:
    """Whether ``PROGRAMS_WITHOUT_CERTIFICATES`` turns program awards off (seed: early return).

    ``ALL`` in any case, given as the value or as a member of the set: the seed compares the
    list's first item lowercased; a set has no first item, and no program UUID is "all".
    """
    if isinstance(excluded, str):
        return excluded.strip().lower() == "all"
    return any(value.strip().lower() == "all" for value in excluded)


def programs_to_award(
    completed: Iterable[str], awarded: Iterable[str], excluded: ProgramExclusion
) -> tuple[str, ...]:
    """Return completed minus awarded minus excluded, sorted (seed: ``award_program_certificates``).

    Nothing when ``excluded`` is ``ALL``. UUIDs come back in canonical spelling, so the
    answer does not depend on which spelling of a program was seen first.
    """
    if awarding_disabled(excluded):
        return ()
    skip = {canonical_uuid(value) for value in (*awarded, *excluded)}
    return tuple(sorted({canonical_uuid(value) for value in completed} - skip))


def programs_to_revoke(
    programs: Iterable[Program], course_run: str, awarded: Iterable[str]
) -> tuple[str, ...]:
    """Return the awarded programs that contain the run, sorted, in canonical spelling.

    Seed: ``revoke_program_certificates`` (programs containing the run ∩ awarded programs).
    Completion through another run of the same course is not re-checked: that is the seed's
    behaviour, kept on purpose.
    """
    containing = {canonical_uuid(p.uuid) for p in programs if course_run in p.run_keys()}
    return tuple(sorted(containing & {canonical_uuid(value) for value in awarded}))


# ============================================================================ CAD


@dataclass(frozen=True, slots=True)
class AvailableDate:
    """The certificate available date to send, and how it was decided.

    ``behavior`` is the display behaviour applied (None for self-paced runs, where it does
    not matter). ``fallback`` is a snake_case reason when the behaviour was *assumed* to be
    ``end`` (missing, unknown, or ``end_with_date`` without a date), so the caller can log
    and count it; None when the data was used as given.
    """

    value: datetime | None
    behavior: str | None
    fallback: str | None = None


def certificate_available_date(
    *,
    pacing: Pacing,
    end: datetime | None,
    display_behavior: str | None,
    available_date: datetime | None,
) -> AvailableDate:
    """Decide the CAD to send to Credentials.

    Seed: ``update_certificate_available_date_on_course_update``.

    Self-paced → None. Instructor-paced: ``end_with_date`` → the course's CAD; ``end`` → the
    course end; ``early_no_info`` → None. A missing or unknown behaviour is taken as ``end``
    (the platform default; the seed would crash on it). ``end_with_date`` without a date is
    also taken as ``end``: Studio normalises it that way, while the seed would send the
    string ``"None"``. A None result is sent as JSON null, never as text.
    """
    if pacing == "self":
        return AvailableDate(None, None)
    if display_behavior == EARLY_NO_INFO:
        return AvailableDate(None, EARLY_NO_INFO)
    if display_behavior == END_WITH_DATE and available_date is not None:
        return AvailableDate(available_date, END_WITH_DATE)
    if display_behavior == END:
        return AvailableDate(end, END)
    return AvailableDate(end, END, fallback=_behavior_fallback(display_behavior))


def _behavior_fallback(display_behavior: str | None) -> str:
    if display_behavior is None:
        return "display_behavior_missing"
    if display_behavior == END_WITH_DATE:
        return "end_with_date_without_date"
    return "display_behavior_unknown"


def certificate_type(modes: Iterable[str], *, honor_certificates_enabled: bool) -> str | Skip:
    """Choose the ``certificate_type`` of a run's Credentials config from its LMS course modes.

    Seed (``update_credentials_course_certificate_configuration_available_date``): keep the
    modes that are certificate-relevant or eligible (all but audit; honor only while honor
    certificates are enabled — the seed asks without a status); exactly one must remain,
    else skip. Two departures, both deliberate:

    - Slugs are de-duplicated first: the LMS lists a mode once per currency, and a verified
      seat priced in two currencies is still one certificate type (the seed would skip).
    - A type Credentials does not accept (credit, executive-education, paid-bootcamp, ...)
      is a skip, not a request: Credentials answers 400 for it every time, so a request
      would only dead-letter an event that no retry or redrive can fix.
    """
    kept = sorted(
        {
            mode
            for mode in modes
            if _is_certificate_mode(mode, honor_certificates_enabled=honor_certificates_enabled)
        }
    )
    if not kept:
        return Skip("no_certificate_mode", "the course run has no certificate-earning mode")
    if len(kept) > 1:
        return Skip(
            "multiple_certificate_modes",
            f"the course run has several certificate modes: {', '.join(kept)}",
        )
    if kept[0] not in CREDENTIALS_CERTIFICATE_TYPES:
        return Skip(
            "certificate_type_not_accepted",
            f"Credentials does not accept certificate type {kept[0]}",
        )
    return kept[0]
