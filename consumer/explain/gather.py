"""Step 1 of ``explain``: read what the worker reads, and decide nothing.

The learner's LMS certificates (the list, then the per-run endpoint for every other run of
the programs in question), Credentials' awarded course-run and program credentials,
Discovery's programs (the worker's own ``ProgramCache``); with ``--course-run`` also the
run's LMS course modes and Studio's course details. Only GETs (and the client-credentials
token request every client makes).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from consumer import rules
from consumer.errors import ExplainError, RejectedError
from consumer.programs import LearnerCertificate, Program
from consumer.services.bundle import Services
from consumer.services.studio import CourseDetails

REQUEST_ID = "explain"
"""The ``X-Request-ID`` of explain's requests: they belong to no event."""


@dataclass(frozen=True, slots=True)
class Question:
    """What the operator asked: the learner, and optionally one program or one course run."""

    lms_user_id: int
    username: str = field(repr=False)
    program: str | None = None
    course_run: str | None = None


@dataclass(frozen=True, slots=True)
class Sources:
    """What the services answered: facts only, no decision.

    ``certificates`` holds every LMS certificate read, by run: the list's (``listed``) and
    the per-run answers for the other runs of the programs in question. ``awarded_programs``
    are canonical UUIDs. ``course_modes``/``course_details`` only with a course run asked
    (``course_details`` None when Studio is not configured).
    """

    certificates: Mapping[str, LearnerCertificate]
    held_runs: frozenset[str]
    awarded_programs: frozenset[str]
    programs: tuple[Program, ...]
    programs_configured: bool = True
    programs_missing: tuple[str, ...] = ()
    course_modes: tuple[str, ...] = ()
    course_details: CourseDetails | None = None


def gather(services: Services, question: Question) -> Sources:
    """Read everything the trace needs; raises the services' errors (nothing is written)."""
    username = question.username
    lms, credentials = services.lms, services.credentials
    certificates = {
        cert.course_id: cert.as_learner(listed=True)
        for cert in lms.certificates(username=username, request_id=REQUEST_ID)
    }
    held = credentials.awarded_course_runs(username=username, request_id=REQUEST_ID)
    awarded = frozenset(
        rules.canonical_uuid(uuid)
        for uuid in credentials.awarded_program_uuids(username=username, request_id=REQUEST_ID)
    )
    asked_run = frozenset({question.course_run}) if question.course_run else frozenset[str]()
    programs, missing = _programs(
        services, question, certificates.keys() | held | asked_run, awarded
    )
    wanted = {run for program in programs for run in program.run_keys()} | asked_run
    for run in sorted(wanted - certificates.keys()):
        cert = lms.certificate(username=username, course_run=run, request_id=REQUEST_ID)
        if cert is not None:
            certificates[run] = cert.as_learner(listed=False)
    modes: tuple[str, ...] = ()
    details = None
    if question.course_run:
        modes = lms.course_modes(course_run=question.course_run, request_id=REQUEST_ID)
        if services.studio is not None:
            details = services.studio.course_details(
                course_run=question.course_run, request_id=REQUEST_ID
            )
    return Sources(
        certificates=certificates,
        held_runs=held,
        awarded_programs=awarded,
        programs=programs,
        programs_configured=services.programs is not None,
        programs_missing=missing,
        course_modes=modes,
        course_details=details,
    )


def _programs(
    services: Services, question: Question, runs: Iterable[str], awarded: frozenset[str]
) -> tuple[tuple[Program, ...], tuple[str, ...]]:
    """The programs in question, and the UUIDs Discovery failed to describe.

    The one asked for, or every program containing one of the learner's runs or held as
    awarded — from the worker's own program catalogue (``ProgramCache``), loaded once.
    """
    if services.discovery is None or services.programs is None:
        return (), ()
    if question.program:
        try:
            return (services.discovery.program(question.program, request_id=REQUEST_ID),), ()
        except RejectedError as error:
            if error.status == 404:
                raise ExplainError(
                    f"Discovery has no program {question.program}", reason="program_not_found"
                ) from None
            raise
    index = services.programs.index()
    found = {program.uuid: program for program in index.for_runs(runs)}
    for program in index.programs.values():
        if rules.canonical_uuid(program.uuid) in awarded:
            found.setdefault(program.uuid, program)
    return tuple(found[uuid] for uuid in sorted(found)), index.missing
