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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from consumer.commands import CredentialStatus
from consumer.events import Pacing
from consumer.programs import (
    CompletionSource,
    LearnerCertificate,
    PassingCertificate,
    Program,
    ProgramRun,
)

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


def event_certificate(course_run: str, mode: str, status: str) -> PassingCertificate | None:
    """The certificate of a certificate event as completion counts it, or None if not passing.

    The event's mode is authoritative for its run (ADR 0007); only a passing status counts.
    """
    return (
        PassingCertificate(course_run=course_run, mode=mode) if is_passing_status(status) else None
    )


def completion_skip(
    certificate: LearnerCertificate | None, *, source: CompletionSource, held: bool
) -> Skip | None:
    """Why completion does not count the learner's LMS certificate in a run; None if it does.

    ``held``: Credentials holds an awarded ``course-run`` credential for the run. With the
    ``credentials`` source only held runs count (ADR 0007: which runs from Credentials, modes
    from the LMS); with ``lms`` only certificates the LMS *lists* (viewable ones). Either way
    the status must be passing (seed: ``PASSED_STATUSES``). The event's own certificate is
    not judged here (``counted_certificates`` adds it).
    """
    if certificate is None:
        return _NO_CERTIFICATE
    if not is_passing_status(certificate.status):
        return Skip(
            "certificate_not_passing",
            f"the certificate's status {certificate.status} is not passing",
        )
    if source == "credentials" and not held:
        return Skip(
            "not_in_credentials",
            "Credentials holds no awarded course-run credential for this run, and completion "
            "takes the learner's runs from there (CONSUMER_COMPLETION_SOURCE=credentials)",
        )
    if source == "lms" and not certificate.listed:
        return Skip(
            "certificate_not_viewable",
            "the LMS lists certificates only once viewable, and completion takes them from "
            "that list (CONSUMER_COMPLETION_SOURCE=lms)",
        )
    return None


_NO_CERTIFICATE: Final = Skip("no_certificate", "the learner has no certificate in this run")


def counted_certificates(
    certificates: Iterable[LearnerCertificate],
    *,
    source: CompletionSource,
    held_runs: frozenset[str],
    own: PassingCertificate | None = None,
) -> tuple[PassingCertificate, ...]:
    """The passing certificates completion counts, sorted by run and mode.

    Those ``completion_skip`` lets through, with the event's own certificate (``own``, from
    ``event_certificate``) replacing whatever the sources say of its run.
    """
    by_run = {
        cert.course_run: cert.as_passing()
        for cert in certificates
        if completion_skip(cert, source=source, held=cert.course_run in held_runs) is None
    }
    if own is not None:
        by_run[own.course_run] = own
    return tuple(sorted(by_run.values(), key=lambda cert: (cert.course_run, cert.mode)))


@dataclass(frozen=True, slots=True)
class RunCheck:
    """Whether one program run completes its course for the learner; ``reason`` says why not.

    ``mode`` is the counted certificate's mode as the learner holds it (None without one);
    ``seat_type`` is Discovery's, before translation.
    """

    key: str
    seat_type: str | None
    mode: str | None = None
    reason: str | None = None
    detail: str = ""

    @property
    def complete(self) -> bool:
        """The learner's certificate in this run completes the course."""
        return self.reason is None


@dataclass(frozen=True, slots=True)
class CourseCheck:
    """A program course: complete when any of its runs is."""

    key: str
    runs: tuple[RunCheck, ...]

    @property
    def complete(self) -> bool:
        """Any run completes the course."""
        return any(run.complete for run in self.runs)

    @property
    def reason(self) -> str | None:
        """``course_incomplete`` (each run says why), or None."""
        return None if self.complete else "course_incomplete"


@dataclass(frozen=True, slots=True)
class ProgramCheck:
    """Whether the learner completed a program, course by course; ``reason`` says why not.

    ``uuid`` is canonical (``canonical_uuid``).
    """

    uuid: str
    courses: tuple[CourseCheck, ...]
    reason: str | None = None
    detail: str = ""

    @property
    def complete(self) -> bool:
        """Every course is complete (and there is at least one)."""
        return self.reason is None


def _modes_by_run(certificates: Iterable[PassingCertificate]) -> dict[str, list[str]]:
    modes: dict[str, list[str]] = {}
    for cert in certificates:
        modes.setdefault(cert.course_run, []).append(cert.mode)
    return modes


def _translation(mode: str, seat_type: str) -> str:
    translated, required = certificate_mode(mode), run_seat_type(seat_type)
    if (translated, required) == (mode, seat_type):
        return ""
    return f" (translated: {translated} vs {required})"


def _check_run(
    run: ProgramRun, modes: Mapping[str, list[str]], skips: Mapping[str, Skip]
) -> RunCheck:
    held = modes.get(run.key, ())
    required = run_seat_type(run.seat_type)
    if run.seat_type is None or required is None:
        return RunCheck(
            run.key,
            None,
            held[0] if held else None,
            "run_without_seat_type",
            "the run has no seat type in Discovery: no certificate can match it",
        )
    if not held:
        skip = skips.get(run.key, _NO_CERTIFICATE)
        return RunCheck(run.key, run.seat_type, None, skip.reason, skip.detail)
    for mode in held:
        if certificate_mode(mode) == required:
            return RunCheck(run.key, run.seat_type, mode)
    mode = held[0]
    return RunCheck(
        run.key,
        run.seat_type,
        mode,
        "mode_mismatch",
        f"certificate mode {mode} does not match seat type {run.seat_type}"
        + _translation(mode, run.seat_type),
    )


def _check(
    program: Program, modes: Mapping[str, list[str]], skips: Mapping[str, Skip]
) -> ProgramCheck:
    courses = tuple(
        CourseCheck(course.key, tuple(_check_run(run, modes, skips) for run in course.runs))
        for course in program.courses
    )
    uuid_ = canonical_uuid(program.uuid)
    if not courses:
        # ``all`` of nothing is True: the seed's available date stays None for such a program.
        return ProgramCheck(uuid_, courses, "no_courses", "the program has no courses")
    missing = [course.key or "(no key)" for course in courses if not course.complete]
    if missing:
        return ProgramCheck(
            uuid_, courses, "course_incomplete", f"incomplete courses: {', '.join(missing)}"
        )
    return ProgramCheck(uuid_, courses)


def check_program(
    program: Program,
    certificates: Iterable[PassingCertificate],
    *,
    skips: Mapping[str, Skip] | None = None,
) -> ProgramCheck:
    """Judge the program against the counted certificates, with a reason at every level.

    Seed: ``ProgramProgressMeter`` / ``_available_date_for_program``. A run completes its
    course when a certificate in it has a mode that, translated, equals the run's translated
    seat type (``run_without_seat_type``, ``no_certificate``, ``mode_mismatch`` otherwise); a
    course is complete when any run is; a program when every course is, and never without
    courses (``no_courses``, ``course_incomplete``). ``certificates`` are the counted ones
    (``counted_certificates``); ``skips`` may say, per run, why none counts there
    (``completion_skip``), instead of the plain ``no_certificate``.
    """
    return _check(program, _modes_by_run(certificates), skips or {})


def is_program_complete(program: Program, certificates: Iterable[PassingCertificate]) -> bool:
    """Whether the certificates complete the program (``check_program(...).complete``)."""
    return check_program(program, certificates).complete


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

    ``check_program`` for each; evaluated over every program, which equals the DESIGN's
    "programs containing any completed run": a program with no completed run cannot be
    complete.
    """
    modes = _modes_by_run(certificates)
    return tuple(sorted({check.uuid for p in programs if (check := _check(p, modes, {})).complete}))


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


def award_skip(
    program_uuid: str, *, awarded: Iterable[str], excluded: ProgramExclusion
) -> Skip | None:
    """Why a completed program is not awarded, or None to award it.

    Seed order (``award_program_certificates``): ``ALL`` returns early
    (``programs_without_certificates_all``); then programs already awarded are dropped
    (``already_awarded``); then those in the list (``program_excluded``). UUIDs compare in
    canonical spelling.
    """
    return _award_skip(
        canonical_uuid(program_uuid),
        awarded=_canonical_set(awarded),
        excluded=_canonical_set(excluded) if not isinstance(excluded, str) else frozenset(),
        disabled=awarding_disabled(excluded),
    )


def _canonical_set(values: Iterable[str]) -> frozenset[str]:
    return frozenset(canonical_uuid(value) for value in values)


def _award_skip(
    program_uuid: str, *, awarded: frozenset[str], excluded: frozenset[str], disabled: bool
) -> Skip | None:
    if disabled:
        return Skip("programs_without_certificates_all", "PROGRAMS_WITHOUT_CERTIFICATES is ALL")
    if program_uuid in awarded:
        return Skip("already_awarded", "Credentials already holds this program credential")
    if program_uuid in excluded:
        return Skip("program_excluded", "the program is in PROGRAMS_WITHOUT_CERTIFICATES")
    return None


def programs_to_award(
    completed: Iterable[str], awarded: Iterable[str], excluded: ProgramExclusion
) -> tuple[str, ...]:
    """Return completed minus awarded minus excluded, sorted (seed: ``award_program_certificates``).

    The completed programs ``award_skip`` lets through. Nothing when ``excluded`` is ``ALL``.
    UUIDs come back in canonical spelling, so the answer does not depend on which spelling of
    a program was seen first.
    """
    if awarding_disabled(excluded):
        return ()
    held, skip = _canonical_set(awarded), _canonical_set(excluded)
    return tuple(
        sorted(
            uuid_
            for uuid_ in _canonical_set(completed)
            if _award_skip(uuid_, awarded=held, excluded=skip, disabled=False) is None
        )
    )


def revoke_skip(program: Program, course_run: str, awarded: Iterable[str]) -> Skip | None:
    """Why a revoked run's certificate does not revoke the program, or None to revoke it.

    Seed: ``revoke_program_certificates`` (programs containing the run ∩ awarded programs):
    ``run_not_in_program``, ``program_not_awarded``. Completion through another run of the
    same course is not re-checked: that is the seed's behaviour, kept on purpose.
    """
    return _revoke_skip(program, course_run, _canonical_set(awarded))


def _revoke_skip(program: Program, course_run: str, awarded: frozenset[str]) -> Skip | None:
    if course_run not in program.run_keys():
        return Skip("run_not_in_program", f"the program does not contain {course_run}")
    if canonical_uuid(program.uuid) not in awarded:
        return Skip("program_not_awarded", "Credentials holds no awarded credential of the program")
    return None


def programs_to_revoke(
    programs: Iterable[Program], course_run: str, awarded: Iterable[str]
) -> tuple[str, ...]:
    """Return the awarded programs that contain the run, sorted, in canonical spelling.

    The programs ``revoke_skip`` lets through.
    """
    held = _canonical_set(awarded)
    return tuple(
        sorted(
            {canonical_uuid(p.uuid) for p in programs if _revoke_skip(p, course_run, held) is None}
        )
    )


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

    @property
    def reason(self) -> str:
        """Why this date, snake_case: ``self_paced`` or the behaviour applied."""
        return self.behavior or "self_paced"

    @property
    def detail(self) -> str:
        """Why this date, for people (with the assumption, when one was made)."""
        why = _DATE_DETAIL[self.reason]
        if self.fallback:
            why += f" (behaviour assumed end: {self.fallback.replace('_', ' ')})"
        return why


_DATE_DETAIL: Final = {
    "self_paced": "self-paced: certificates are available at once, no date",
    EARLY_NO_INFO: "display behaviour early_no_info: no date",
    END_WITH_DATE: "display behaviour end_with_date: the course's certificate available date",
    END: "display behaviour end: the course end",
}


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
