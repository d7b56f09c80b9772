"""``explain``: each decision's reason in the trace, GETs only, and the worker's own verdicts.

The last tests check the trace against ``Effects``: what explain says to award is what the
worker awards.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest
from structlog.testing import capture_logs

from consumer.commands import AwardPrograms
from consumer.effects import Effects
from consumer.errors import ExplainError
from consumer.events import Learner
from consumer.explain import Judge, Question, Sources, Trace, explain, render
from consumer.handlers import Policy
from consumer.programs import (
    CompletionSource,
    LearnerCertificate,
    Program,
    ProgramCourse,
    ProgramRun,
)
from consumer.rules import ALL_PROGRAMS
from consumer.services.bundle import Services, build_services
from consumer.services.studio import CourseDetails
from tests.fakes.openedx import FakeOpenEdx
from tests.fakes.openedx.settings import service_settings

P = "11111111-1111-4111-8111-111111111111"
Q = "22222222-2222-4222-8222-222222222222"
A1 = "course-v1:OrgX+A+1T2026"
B1 = "course-v1:OrgX+B+1T2026"
C1 = "course-v1:OrgY+C+1T2026"
DLQ = "learning-certificate-lifecycle.dlq"
MODIFIED = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
END = datetime(2026, 6, 30, tzinfo=UTC)
CAD = datetime(2026, 7, 15, tzinfo=UTC)
ASK = Question(lms_user_id=42, username="alice")


def program(
    uuid: str, *courses: tuple[str, dict[str, str | None]], status: str = "active"
) -> Program:
    return Program(
        uuid=uuid,
        courses=tuple(
            ProgramCourse(key, tuple(ProgramRun(run, seat) for run, seat in runs.items()))
            for key, runs in courses
        ),
        status=status,
    )


AB = program(P, ("OrgX+A", {A1: "verified"}), ("OrgX+B", {B1: "verified"}))
B_ONLY = program(Q, ("OrgX+B", {B1: "verified"}))


def cert(
    run: str, mode: str = "verified", status: str = "downloadable", *, listed: bool = True
) -> LearnerCertificate:
    return LearnerCertificate(run, mode, status, listed=listed, modified=MODIFIED)


def sources(
    *certs: LearnerCertificate,
    held: tuple[str, ...] = (),
    awarded: tuple[str, ...] = (),
    programs: tuple[Program, ...] = (AB,),
    modes: tuple[str, ...] = ("audit", "verified"),
    details: CourseDetails | None = None,
    configured: bool = True,
) -> Sources:
    return Sources(
        certificates={item.course_run: item for item in certs},
        held_runs=frozenset(held),
        awarded_programs=frozenset(awarded),
        programs=programs if configured else (),
        programs_configured=configured,
        course_modes=modes,
        course_details=details,
    )


def judge(
    found: Sources,
    question: Question = ASK,
    *,
    policy: Policy | None = None,
    source: CompletionSource = "credentials",
) -> tuple[Trace, dict[str, Any], str]:
    chosen = dataclasses.replace(policy or Policy(), completion_source=source)
    trace = Judge.build(chosen, (DLQ,))(found, question)
    return trace, trace.to_json(), render(trace)


def details(
    *, self_paced: bool = False, behavior: str | None = "end", date: datetime | None = None
) -> CourseDetails:
    return CourseDetails(A1, behavior, date, self_paced, END)


# ---------------------------------------------------------------------------- program verdicts

BOTH = (cert(A1), cert(B1))
HELD = (A1, B1)


@pytest.mark.parametrize(
    ("found", "policy", "source", "verdict", "reason"),
    [
        pytest.param(sources(*BOTH, held=HELD), None, "credentials", "award", "program_completed",
                     id="complete and not awarded: award"),
        pytest.param(sources(*BOTH, held=HELD, awarded=(P,)), None, "credentials", "none",
                     "already_awarded", id="complete and awarded: nothing"),
        pytest.param(sources(*BOTH, held=HELD),
                     Policy(programs_without_certificates=frozenset({P})),
                     "credentials", "none", "program_excluded", id="excluded"),
        pytest.param(sources(*BOTH, held=HELD), Policy(programs_without_certificates=ALL_PROGRAMS),
                     "credentials", "none", "programs_without_certificates_all", id="ALL excluded"),
        pytest.param(sources(cert(A1), held=(A1,)), None, "credentials", "none",
                     "course_incomplete", id="a course without a certificate"),
        pytest.param(sources(cert(A1), cert(B1, "honor"), held=HELD), None, "credentials",
                     "none", "course_incomplete", id="mode mismatch"),
        pytest.param(sources(*BOTH, held=HELD, programs=(program(P),)), None, "credentials",
                     "none", "no_courses", id="no courses"),
        pytest.param(sources(*BOTH, held=HELD, programs=(program(P, ("OrgX+A", {A1: "verified"}),
                                                                 status="unpublished"),)),
                     None, "credentials", "none", "program_not_listed",
                     id="a program the worker's catalogue does not list"),
        pytest.param(sources(cert(A1), cert(B1, listed=False)), None, "lms", "none",
                     "course_incomplete", id="lms source: a certificate not yet viewable"),
        pytest.param(sources(cert(A1), cert(B1, listed=False), held=HELD), None, "credentials",
                     "award", "program_completed", id="credentials source reads it on its own"),
    ],
)  # fmt: skip
def test_program_verdicts(
    found: Sources, policy: Policy | None, source: CompletionSource, verdict: str, reason: str
) -> None:
    """Each program gets the worker's verdict with its reason, in the JSON and in the tree."""
    _, data, text = judge(found, policy=policy, source=source)
    (trace,) = data["programs"]
    assert (trace["verdict"], trace["reason"]) == (verdict, reason)
    assert f"{verdict.upper()} ({reason})" in text


@pytest.mark.parametrize(
    ("found", "source", "reason"),
    [
        pytest.param(sources(cert(A1), held=(A1,)), "credentials", "no_certificate",
                     id="no certificate"),
        pytest.param(sources(cert(A1), cert(B1, status="notpassing"), held=HELD), "credentials",
                     "certificate_not_passing", id="a certificate that is not passing"),
        pytest.param(sources(cert(A1), cert(B1), held=(A1,)), "credentials", "not_in_credentials",
                     id="passing in the LMS, not held by Credentials"),
        pytest.param(sources(cert(A1), cert(B1, listed=False)), "lms", "certificate_not_viewable",
                     id="not yet viewable, lms source"),
        pytest.param(sources(cert(A1), cert(B1, "honor"), held=HELD), "credentials",
                     "mode_mismatch", id="honor certificate, verified run"),
        pytest.param(sources(*BOTH, held=HELD,
                             programs=(program(P, ("OrgX+A", {A1: "verified"}),
                                               ("OrgX+B", {B1: None})),)),
                     "credentials", "run_without_seat_type", id="run without seats"),
    ],
)  # fmt: skip
def test_run_reasons_reach_the_trace(found: Sources, source: CompletionSource, reason: str) -> None:
    """Why course B's run does not count is named in the JSON and in the tree."""
    _, data, text = judge(found, source=source)
    course_b = data["programs"][0]["courses"][1]
    assert course_b["reason"] == "course_incomplete"
    assert course_b["runs"][0]["reason"] == reason
    assert f"✗ {reason}: " in text


def test_a_revoked_run_revokes_the_awarded_programs_containing_it() -> None:
    """With --course-run whose certificate is not passing, awarded programs with it are revoked."""
    found = sources(cert(A1), cert(B1, status="unavailable"), held=HELD, awarded=(P,))
    _, data, _ = judge(found, Question(42, "alice", course_run=B1))
    (trace,) = data["programs"]
    assert (trace["verdict"], trace["reason"]) == ("revoke", "run_certificate_revoked")


def test_the_asked_runs_certificate_counts_as_its_event_would() -> None:
    """--course-run judges as that run's event: its certificate counts before Credentials has it."""
    found = sources(*BOTH, held=(A1,))
    plain, _, _ = judge(found)
    asked, data, text = judge(found, Question(42, "alice", course_run=B1))
    assert plain.programs[0].verdict.reason == "course_incomplete"
    assert asked.programs[0].verdict.action == "award"
    assert B1 in data["judged_as"]
    assert "judged as the worker would on a certificate event of" in text


def test_without_discovery_the_trace_says_programs_are_not_handled() -> None:
    """Without COURSE_CATALOG_API_URL the programs gate is the handler's own skip."""
    _, data, text = judge(sources(configured=False), policy=Policy(programs_enabled=False))
    assert data["programs_gate"]["reason"] == "programs_not_configured"
    assert "programs_not_configured" in text


# ---------------------------------------------------------------------------- the course run


@pytest.mark.parametrize(
    ("found", "policy", "action", "reason"),
    [
        pytest.param(sources(cert(A1)), Policy(), "award", "certificate_downloadable",
                     id="downloadable: awarded"),
        pytest.param(sources(cert(A1, status="notpassing")), Policy(), "revoke",
                     "certificate_notpassing", id="notpassing: revoked"),
        pytest.param(sources(cert(A1, status="generating")), Policy(), "none",
                     "certificate_generating", id="generating: wait for downloadable"),
        pytest.param(sources(), Policy(), "none", "no_certificate", id="no certificate"),
        pytest.param(sources(cert(A1, "audit", "audit_passing")), Policy(), "none",
                     "audit_certificate", id="audit"),
        pytest.param(sources(cert(A1, "honor")), Policy(honor_certificates_enabled=False),
                     "none", "honor_certificates_disabled", id="honor disabled"),
        pytest.param(sources(cert(A1)), Policy(learner_records_disabled_orgs=frozenset({"OrgX"})),
                     "none", "learner_records_disabled", id="org disabled"),
        pytest.param(sources(cert(A1)), Policy(sync_course_certificates=False), "none",
                     "course_certificate_sync_disabled", id="course sync off"),
    ],
)  # fmt: skip
def test_course_certificate_sync(found: Sources, policy: Policy, action: str, reason: str) -> None:
    """With --course-run, the worker's handler says whether the certificate is synced, and why."""
    _, data, text = judge(found, Question(42, "alice", course_run=A1), policy=policy)
    sync = data["course_run"]["course_certificate"]
    assert (sync["action"], sync["reason"]) == (action, reason)
    assert f"{action.upper()} ({reason})" in text


@pytest.mark.parametrize(
    ("modes", "studio", "action", "reason", "date"),
    [
        pytest.param(("audit", "verified"), details(), "set", "end", "2026-06-30T00:00:00Z",
                     id="end: the course end"),
        pytest.param(("audit", "verified"), details(behavior="end_with_date", date=CAD), "set",
                     "end_with_date", "2026-07-15T00:00:00Z", id="end_with_date: Studio's date"),
        pytest.param(("audit", "verified"), details(behavior="early_no_info"), "set",
                     "early_no_info", None, id="early_no_info: null"),
        pytest.param(("audit", "verified"), details(self_paced=True), "set", "self_paced", None,
                     id="self-paced: null"),
        pytest.param(("audit", "verified"), None, "set", "studio_not_configured", None,
                     id="no Studio: behaviour assumed end"),
        pytest.param(("audit",), details(), "none", "no_certificate_mode", None,
                     id="no certificate mode"),
        pytest.param(("verified", "professional"), details(), "none",
                     "multiple_certificate_modes", None, id="several certificate modes"),
    ],
)  # fmt: skip
def test_certificate_available_date(
    modes: tuple[str, ...], studio: CourseDetails | None, action: str, reason: str, date: str | None
) -> None:
    """With --course-run, the CAD a catalog event would set, and why."""
    _, data, text = judge(
        sources(modes=modes, details=studio), Question(42, "alice", course_run=A1)
    )
    cad = data["course_run"]["certificate_available_date"]
    assert (cad["action"], cad["reason"], cad["certificate_available_date"]) == (
        action,
        reason,
        date,
    )
    assert reason in text


def test_an_assumed_display_behaviour_is_named() -> None:
    """A missing display behaviour is taken as end, and the trace says it was assumed."""
    _, data, _ = judge(
        sources(details=details(behavior=None)), Question(42, "alice", course_run=A1)
    )
    assert data["course_run"]["certificate_available_date"]["assumed"] == "display_behavior_missing"


# ---------------------------------------------------------------------------- disagreements


def test_an_lms_certificate_credentials_lacks_points_to_dead_letters_and_replay() -> None:
    """A downloadable certificate Credentials lacks: a lost event; dlq and replay are suggested."""
    _, data, text = judge(sources(cert(A1), cert(B1), held=(A1,)))
    (finding,) = [item for item in data["findings"] if item["kind"] == "course_certificate_missing"]
    assert B1 in finding["detail"]
    assert any(f"dlq inspect {DLQ}" in fix and B1 in fix for fix in finding["fixes"])
    assert any("replay --from-datetime 2026-03-04T04:06:07Z" in fix for fix in finding["fixes"])
    assert "sources disagree" in text


def test_a_course_certificate_the_lms_revoked_but_credentials_holds_is_stale() -> None:
    """Credentials holding a certificate the LMS has as notpassing: a lost revocation."""
    _, data, _ = judge(sources(cert(A1, status="notpassing"), held=(A1,)))
    assert [item["kind"] for item in data["findings"]] == ["course_certificate_stale"]


def test_a_completed_program_credentials_lacks_is_a_finding() -> None:
    """The award verdict comes with its finding: dead letter, unconsumed event or not configured."""
    _, data, _ = judge(sources(*BOTH, held=HELD))
    assert [item["kind"] for item in data["findings"]] == ["program_award_missing"]


def test_an_awarded_program_no_longer_complete_is_explained() -> None:
    """An awarded program the sources no longer complete: the worker never revokes on that alone."""
    _, data, _ = judge(sources(cert(A1), held=(A1,), awarded=(P,)))
    assert [item["kind"] for item in data["findings"]] == ["program_awarded_not_complete"]


def test_an_org_with_learner_records_disabled_is_hidden_from_credentials_completion() -> None:
    """A run whose org is not synced never counts with the credentials source: the trace says so."""
    policy = Policy(learner_records_disabled_orgs=frozenset({"OrgX"}))
    _, data, _ = judge(sources(cert(A1), held=()), policy=policy)
    kinds = [item["kind"] for item in data["findings"]]
    assert kinds == ["run_hidden_from_completion"]


def test_agreeing_sources_have_no_finding() -> None:
    """When the LMS and Credentials agree and nothing is owed, the trace says so."""
    _, data, text = judge(sources(*BOTH, held=HELD, awarded=(P,)))
    assert data["findings"] == []
    assert "sources agree" in text


# ---------------------------------------------------------------------------- against the fake


@pytest.fixture
def world(fake: FakeOpenEdx) -> FakeOpenEdx:
    fake.add_user("alice", 42)
    for run in (A1, B1, C1):
        fake.add_course_run(run, modes=("audit", "verified"), end=END)
    fake.add_program(P, {"OrgX+A": {A1: "verified"}, "OrgX+B": {B1: "verified"}})
    fake.add_program(Q, {"OrgX+B": {B1: "verified"}})
    return fake


def passed(fake: FakeOpenEdx, run: str, mode: str = "verified", *, synced: bool = True) -> None:
    fake.add_lms_certificate("alice", run, mode=mode)
    if synced:
        fake.add_credential("alice", course_run=run, mode=mode)


def explained(services: Services, question: Question = ASK, **judge_args: Any) -> Trace:
    args: dict[str, Any] = {"policy": Policy(), "source": "credentials"} | judge_args
    policy = dataclasses.replace(args["policy"], completion_source=args["source"])
    return explain(services, Judge.build(policy, (DLQ,)), question)


def test_explain_only_reads(world: FakeOpenEdx, services: Services) -> None:
    """Every request explain sends is a GET (besides the client-credentials token request)."""
    passed(world, A1)
    passed(world, B1, synced=False)
    explained(services, Question(42, "alice", course_run=B1))
    requests = world.requests()
    assert world.writes() == []
    assert {record.method for record in requests if record.service != "oauth"} == {"GET"}
    assert {record.endpoint for record in requests} >= {
        "certificates_list",
        "credentials_list",
        "programs_list",
        "program_detail",
        "course_modes",
        "course_details",
    }


def test_a_run_the_list_leaves_out_is_read_on_its_own(
    world: FakeOpenEdx, services: Services
) -> None:
    """A certificate not yet viewable is read by run, and shown as not listed."""
    world.add_course_run(B1, certificates_viewable=False)
    passed(world, A1)
    passed(world, B1)
    trace = explained(services)
    assert trace.sources.certificates[B1].listed is False
    assert trace.programs[0].verdict.action == "award"


@pytest.mark.usefixtures("world")
def test_an_unknown_program_is_an_error(services: Services) -> None:
    """--program with a UUID Discovery does not know is an ExplainError, not an empty trace."""
    unknown = "99999999-9999-4999-8999-999999999999"
    with pytest.raises(ExplainError, match=unknown):
        explained(services, Question(42, "alice", program=unknown))


def test_explain_logs_no_username(world: FakeOpenEdx, services: Services) -> None:
    """Log lines name the learner by LMS user id, never by username, even when a read fails."""
    passed(world, A1)
    with capture_logs() as logs:
        explained(services)
        world.set_error("lms", 500, endpoint="certificates_list")
        with pytest.raises(Exception, match="500"):
            explained(services)
    assert [line["lms_user_id"] for line in logs if line["event"] == "explain_done"] == [42]
    assert "alice" not in str(logs)


# ---------------------------------------------------------------------------- agrees with effects


WORLDS: dict[str, list[tuple[str, str, bool]]] = {
    "both runs, synced": [(A1, "verified", True), (B1, "verified", True)],
    "B not synced": [(A1, "verified", True), (B1, "verified", False)],
    "honor in B": [(A1, "verified", True), (B1, "honor", True)],
    "only B": [(B1, "verified", True)],
    "nothing": [],
}


@pytest.mark.parametrize("source", ["credentials", "lms"])
@pytest.mark.parametrize("name", list(WORLDS))
def test_explain_awards_exactly_what_the_worker_awards(
    world: FakeOpenEdx, name: str, source: CompletionSource
) -> None:
    """For each world, the programs explain says 'award' are the ones Effects then awards.

    The award runs as an event of run C1 whose certificate is not passing, so it adds no
    certificate of its own: the worker decides from the sources alone, as explain does.
    """
    for run, mode, synced in WORLDS[name]:
        passed(world, run, mode, synced=synced)
    services = build_services(service_settings(world))
    try:
        trace = explained(services, source=source)
        result = Effects(services, Policy(completion_source=source)).apply(
            AwardPrograms(
                learner=Learner(42, "alice"), course_run=C1, mode="verified", status="notpassing"
            ),
            "e",
        )
    finally:
        services.close()
    said = {item.check.uuid for item in trace.programs if item.verdict.action == "award"}
    done = {item.program_uuid for item in result.programs if item.action == "awarded"}
    assert said == done
