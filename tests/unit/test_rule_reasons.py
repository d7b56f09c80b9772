"""Every "no" of the seed's rules has a distinct, named reason: one table row a case.

``explain`` prints these reasons; the worker decides with the same functions, so a reason
here is the worker's own, not a re-telling of it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from consumer import rules
from consumer.events import (
    CertificateEvent,
    EventMeta,
    EventType,
    Learner,
    Pacing,
    parse_course_key,
)
from consumer.handlers import Policy, award_gate, make_handler, revoke_gate
from consumer.programs import (
    CompletionSource,
    LearnerCertificate,
    PassingCertificate,
    Program,
    ProgramCourse,
    ProgramRun,
)
from consumer.rules import ALL_PROGRAMS, Skip

P1 = "11111111-1111-4111-8111-111111111111"
P2 = "22222222-2222-4222-8222-222222222222"
A1 = "course-v1:OrgX+A+1T2024"
A2 = "course-v1:OrgX+A+2T2024"
B1 = "course-v1:OrgX+B+1T2024"
END = datetime(2024, 6, 30, tzinfo=UTC)
CAD = datetime(2024, 7, 15, tzinfo=UTC)


def course(key: str, *runs: tuple[str, str | None]) -> ProgramCourse:
    return ProgramCourse(key=key, runs=tuple(ProgramRun(run, seat) for run, seat in runs))


def cert(
    run: str, mode: str = "verified", status: str = "downloadable", *, listed: bool = True
) -> LearnerCertificate:
    return LearnerCertificate(course_run=run, mode=mode, status=status, listed=listed)


def passing(run: str, mode: str = "verified") -> PassingCertificate:
    return PassingCertificate(course_run=run, mode=mode)


ONE_COURSE = Program(uuid=P1, courses=(course("A", (A1, "verified")),))


# ====================================================================== which certificates count


@pytest.mark.parametrize(
    ("certificate", "source", "held", "expected"),
    [
        pytest.param(None, "credentials", True, "no_certificate",
                     id="ProgramProgressMeter: no certificate in the run"),
        pytest.param(cert(A1, status="notpassing"), "credentials", True, "certificate_not_passing",
                     id="PASSED_STATUSES: notpassing does not count"),
        pytest.param(cert(A1, status="unavailable"), "lms", False, "certificate_not_passing",
                     id="PASSED_STATUSES: a revoked (unavailable) certificate does not count"),
        pytest.param(cert(A1), "credentials", False, "not_in_credentials",
                     id="ADR 0007: credentials source counts only runs Credentials holds"),
        pytest.param(cert(A1, listed=False), "lms", True, "certificate_not_viewable",
                     id="lms source: the list shows viewable certificates only"),
        pytest.param(cert(A1, listed=False), "credentials", True, None,
                     id="ADR 0007: credentials source reads a run the list leaves out"),
        pytest.param(cert(A1, status="generating"), "lms", False, None,
                     id="PASSED_STATUSES: generating counts"),
        pytest.param(cert(A1), "lms", False, None,
                     id="lms source: Credentials' copy does not matter"),
    ],
)  # fmt: skip
def test_completion_skip(
    certificate: LearnerCertificate | None,
    source: CompletionSource,
    held: bool,
    expected: str | None,
) -> None:
    """Whether completion counts a learner's LMS certificate, and if not, why."""
    skip = rules.completion_skip(certificate, source=source, held=held)
    assert (skip.reason if skip else None) == expected


def test_counted_certificates_filter_by_source_and_the_event_replaces_its_run() -> None:
    """Only certificates completion_skip passes are counted; the event's own replaces its run."""
    found = (cert(A1, "honor"), cert(B1), cert(A2, status="notpassing"))
    by_credentials = rules.counted_certificates(
        found, source="credentials", held_runs=frozenset({A1}), own=passing(A1, "verified")
    )
    by_lms = rules.counted_certificates(found, source="lms", held_runs=frozenset())
    assert by_credentials == (passing(A1, "verified"),)
    assert by_lms == (passing(A1, "honor"), passing(B1))


@pytest.mark.parametrize(
    ("status", "expected"),
    [("downloadable", passing(A1)), ("generating", passing(A1)), ("notpassing", None)],
)
def test_event_certificate(status: str, expected: PassingCertificate | None) -> None:
    """The event's own certificate counts only with a passing status."""
    assert rules.event_certificate(A1, "verified", status) == expected


# ============================================================================ run, course, program


@pytest.mark.parametrize(
    ("runs", "held", "expected", "detail"),
    [
        pytest.param(((A1, "verified"),), (), "no_certificate", "no certificate",
                     id="ProgramProgressMeter: no passing certificate in the run"),
        pytest.param(((A1, "verified"),), (passing(A1, "honor"),), "mode_mismatch",
                     "certificate mode honor does not match seat type verified",
                     id="ProgramProgressMeter: the learner's mode differs from the seat type"),
        pytest.param(((A1, "credit"),), (passing(A1, "credit"),), "mode_mismatch",
                     "(translated: credit vs verified)",
                     id="_course_run_mode_translation: the detail shows the translation"),
        pytest.param(((A1, None),), (passing(A1),), "run_without_seat_type", "no seat type",
                     id="Discovery: a run without seats never matches"),
        pytest.param(((A1, "credit"),), (passing(A1),), None, "",
                     id="_course_run_mode_translation: credit run, verified certificate"),
        pytest.param(((A1, "professional"),), (passing(A1, "no-id-professional"),), None, "",
                     id="_certificate_mode_translation: no-id-professional certificate"),
    ],
)  # fmt: skip
def test_run_reasons(
    runs: tuple[tuple[str, str | None], ...],
    held: tuple[PassingCertificate, ...],
    expected: str | None,
    detail: str,
) -> None:
    """Each run of a program says whether it completes its course, and if not, why."""
    check = rules.check_program(Program(uuid=P1, courses=(course("A", *runs),)), held)
    (run,) = check.courses[0].runs
    assert run.reason == expected
    assert detail in run.detail


def test_a_run_skip_replaces_the_plain_no_certificate() -> None:
    """Given why no certificate counts in a run, the run check reports that reason instead."""
    skip = Skip("not_in_credentials", "Credentials holds no awarded course-run credential")
    check = rules.check_program(ONE_COURSE, (), skips={A1: skip})
    assert (check.courses[0].runs[0].reason, check.reason) == (
        "not_in_credentials",
        "course_incomplete",
    )


@pytest.mark.parametrize(
    ("definition", "held", "expected", "detail"),
    [
        pytest.param(Program(uuid=P1, courses=()), (passing(A1),), "no_courses", "no courses",
                     id="_available_date_for_program: a program without courses"),
        pytest.param(Program(uuid=P1, courses=(course("A", (A1, "verified")),
                                               course("B", (B1, "verified")))),
                     (passing(A1),), "course_incomplete", "incomplete courses: B",
                     id="_available_date_for_program: every course is needed"),
        pytest.param(Program(uuid=P1, courses=(course("A"),)), (passing(A1),),
                     "course_incomplete", "incomplete courses: A",
                     id="_is_course_complete: a course without runs"),
        pytest.param(Program(uuid=P1.upper(), courses=(course("A", (A1, "verified"),
                                                              (A2, "verified")),)),
                     (passing(A2),), None, "",
                     id="_is_course_complete: any run completes the course"),
    ],
)  # fmt: skip
def test_program_reasons(
    definition: Program, held: tuple[PassingCertificate, ...], expected: str | None, detail: str
) -> None:
    """A program says whether it is complete, and if not, why; its UUID comes back canonical."""
    check = rules.check_program(definition, held)
    assert (check.reason, check.complete, check.uuid) == (expected, expected is None, P1)
    assert detail in check.detail


# ============================================================================ award, revoke


@pytest.mark.parametrize(
    ("awarded", "excluded", "expected"),
    [
        pytest.param((), ALL_PROGRAMS, "programs_without_certificates_all",
                     id="award_program_certificates: ALL returns early"),
        pytest.param((P1,), frozenset(), "already_awarded",
                     id="award_program_certificates: existing programs are dropped"),
        pytest.param((), frozenset({P1.upper()}), "program_excluded",
                     id="award_program_certificates: programs_without_certificates"),
        pytest.param((P1,), frozenset({P1}), "already_awarded",
                     id="award_program_certificates: awarded is checked before the list"),
        pytest.param((P2,), frozenset({P2}), None,
                     id="award_program_certificates: other programs do not matter"),
    ],
)  # fmt: skip
def test_award_skip(
    awarded: tuple[str, ...], excluded: rules.ProgramExclusion, expected: str | None
) -> None:
    """Why a completed program is not awarded, in the seed's order; programs_to_award agrees."""
    skip = rules.award_skip(P1, awarded=awarded, excluded=excluded)
    assert (skip.reason if skip else None) == expected
    assert rules.programs_to_award([P1], awarded, excluded) == (() if skip else (P1,))


@pytest.mark.parametrize(
    ("run", "awarded", "expected"),
    [
        pytest.param(B1, (P1,), "run_not_in_program",
                     id="revoke_program_certificates: only programs containing the run"),
        pytest.param(A1, (P2,), "program_not_awarded",
                     id="get_revokable_program_uuids: only programs the learner holds"),
        pytest.param(A1, (P1.upper(),), None,
                     id="revoke_program_certificates: awarded and containing the run"),
    ],
)  # fmt: skip
def test_revoke_skip(run: str, awarded: tuple[str, ...], expected: str | None) -> None:
    """Why a revoked run does not revoke a program; programs_to_revoke agrees."""
    skip = rules.revoke_skip(ONE_COURSE, run, awarded)
    assert (skip.reason if skip else None) == expected
    assert rules.programs_to_revoke([ONE_COURSE], run, awarded) == (() if skip else (P1,))


# ============================================================================ CAD


@pytest.mark.parametrize(
    ("pacing", "behavior", "date", "expected", "detail"),
    [
        pytest.param("self", "end", CAD, "self_paced", "no date",
                     id="update_certificate_available_date: self-paced"),
        pytest.param("instructor", "end", CAD, "end", "the course end",
                     id="update_certificate_available_date: end"),
        pytest.param("instructor", "end_with_date", CAD, "end_with_date",
                     "certificate available date",
                     id="update_certificate_available_date: end_with_date"),
        pytest.param("instructor", "early_no_info", CAD, "early_no_info", "no date",
                     id="update_certificate_available_date: early_no_info"),
        pytest.param("instructor", None, None, "end", "assumed end: display behavior missing",
                     id="worker choice: a missing behaviour is assumed end, and says so"),
    ],
)  # fmt: skip
def test_available_date_reasons(
    pacing: Pacing, behavior: str | None, date: datetime | None, expected: str, detail: str
) -> None:
    """The CAD says why it is what it is: self-paced, or the display behaviour applied."""
    decided = rules.certificate_available_date(
        pacing=pacing, end=END, display_behavior=behavior, available_date=date
    )
    assert decided.reason == expected
    assert detail in decided.detail


# ============================================================================ the vocabulary

NO_ORGS: frozenset[str] = frozenset()


def _course_skip(**overrides: object) -> Callable[[], Skip | None]:
    values: dict[str, object] = {
        "org": "OrgX",
        "mode": "verified",
        "status": "downloadable",
        "honor_certificates_enabled": True,
        "learner_records_disabled_orgs": NO_ORGS,
    }
    values.update(overrides)
    return lambda: rules.course_certificate_skip(**values)  # type: ignore[arg-type]


def _reason(answer: object) -> str | None:
    if isinstance(answer, Skip):
        return answer.reason
    return getattr(answer, "reason", None)


SEED_NOES: dict[str, Callable[[], object]] = {
    "course sync: org with learner records disabled": _course_skip(
        learner_records_disabled_orgs=frozenset({"OrgX"})
    ),
    "course sync: audit status": _course_skip(status="audit_passing"),
    "course sync: audit mode": _course_skip(mode="audit"),
    "course sync: honor disabled": _course_skip(mode="honor", honor_certificates_enabled=False),
    "course sync: no mode": _course_skip(mode=""),
    "course sync: generating": lambda: rules.course_certificate_status("generating"),
    "course sync: switched off": lambda: _handler_skip(Policy(sync_course_certificates=False)),
    "programs: not configured": lambda: award_gate(Policy(programs_enabled=False)),
    "programs: ALL excluded": lambda: rules.award_skip(P1, awarded=(), excluded=ALL_PROGRAMS),
    "programs: excluded": lambda: rules.award_skip(P1, awarded=(), excluded=frozenset({P1})),
    "programs: already awarded": lambda: rules.award_skip(P1, awarded=(P1,), excluded=frozenset()),
    "completion: no certificate": lambda: rules.completion_skip(None, source="lms", held=False),
    "completion: not passing": lambda: rules.completion_skip(
        cert(A1, status="notpassing"), source="lms", held=False
    ),
    "completion: not in Credentials": lambda: rules.completion_skip(
        cert(A1), source="credentials", held=False
    ),
    "completion: not viewable": lambda: rules.completion_skip(
        cert(A1, listed=False), source="lms", held=False
    ),
    "run: mode mismatch": lambda: (
        rules.check_program(ONE_COURSE, (passing(A1, "honor"),)).courses[0].runs[0]
    ),
    "run: no seat type": lambda: (
        rules.check_program(Program(uuid=P1, courses=(course("A", (A1, None)),)), ())
        .courses[0]
        .runs[0]
    ),
    "course: incomplete": lambda: rules.check_program(ONE_COURSE, ()).courses[0],
    "program: no courses": lambda: rules.check_program(Program(uuid=P1, courses=()), ()),
    "revoke: run not in program": lambda: rules.revoke_skip(ONE_COURSE, B1, (P1,)),
    "revoke: not awarded": lambda: rules.revoke_skip(ONE_COURSE, A1, ()),
    "CAD: no certificate mode": lambda: rules.certificate_type(
        ["audit"], honor_certificates_enabled=True
    ),
    "CAD: several certificate modes": lambda: rules.certificate_type(
        ["verified", "professional"], honor_certificates_enabled=True
    ),
    "CAD: type Credentials refuses": lambda: rules.certificate_type(
        ["audit", "credit"], honor_certificates_enabled=True
    ),
}


def _handler_skip(policy: Policy) -> Skip:
    event = CertificateEvent(
        meta=EventMeta(id="e", type=EventType.CERTIFICATE_CHANGED),
        learner=Learner(user_id=1, username="u"),
        course_key=parse_course_key(A1),
        mode="verified",
        status="downloadable",
    )
    (skip,) = make_handler(policy)(event).skipped
    return skip


def test_every_seed_no_has_its_own_named_reason() -> None:
    """Each way a rule says no gives a snake_case reason, and no two share one."""
    reasons = {name: _reason(answer()) for name, answer in SEED_NOES.items()}
    assert all(
        reason and reason.isidentifier() and reason.islower() for reason in reasons.values()
    ), reasons
    assert len(set(reasons.values())) == len(reasons), reasons


@pytest.mark.parametrize(
    ("policy", "award", "revoke"),
    [
        pytest.param(Policy(), None, None, id="stock policy: both on"),
        pytest.param(Policy(programs_enabled=False), "programs_not_configured",
                     "programs_not_configured", id="no Discovery: both off"),
        pytest.param(Policy(programs_without_certificates=ALL_PROGRAMS),
                     "programs_without_certificates_all", None,
                     id="award_program_certificates: ALL stops awards, not revocations"),
    ],
)  # fmt: skip
def test_program_gates(policy: Policy, award: str | None, revoke: str | None) -> None:
    """The handler's gates say why a policy turns program awards or revocations off."""
    assert (_reason(award_gate(policy)), _reason(revoke_gate(policy))) == (award, revoke)
