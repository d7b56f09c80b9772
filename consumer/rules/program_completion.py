"""Program completion: which of a learner's certificates count, and which programs they complete.

Seed: ``ProgramProgressMeter`` (``programs/utils.py``) and ``_available_date_for_program``.
Completion never takes the learner's mode from Credentials (ADR 0007): the callers pass the
LMS's certificates and the event's own, and these rules judge them, with a reason at every
level (run, course, program) for ``explain``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from consumer.programs import (
    CompletionSource,
    LearnerCertificate,
    PassingCertificate,
    Program,
    ProgramRun,
)
from consumer.rules.modes import certificate_mode, is_passing_status, run_seat_type
from consumer.rules.program_awards import canonical_uuid
from consumer.rules.skip import Skip


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
