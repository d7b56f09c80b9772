"""The seed's decisions, one table row a case; each id names the seed rule it checks."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumer import rules
from consumer.commands import CredentialStatus
from consumer.events import Pacing
from consumer.programs import PassingCertificate, Program, ProgramCourse, ProgramRun
from consumer.rules import ALL_PROGRAMS, AvailableDate, ProgramExclusion, Skip

# ---------------------------------------------------------------------------- values

P1 = "11111111-1111-4111-8111-111111111111"
P2 = "22222222-2222-4222-8222-222222222222"
P3 = "33333333-3333-4333-8333-333333333333"
RUN_A1 = "course-v1:OrgX+A+1T2024"
RUN_A2 = "course-v1:OrgX+A+2T2024"
RUN_B1 = "course-v1:OrgX+B+1T2024"
RUN_C1 = "course-v1:OrgX+C+1T2024"
END = datetime(2024, 6, 30, 12, 0, tzinfo=UTC)
CAD = datetime(2024, 7, 15, 9, 30, tzinfo=UTC)


def course(key: str, *runs: tuple[str, str | None]) -> ProgramCourse:
    return ProgramCourse(key=key, runs=tuple(ProgramRun(run, seat) for run, seat in runs))


def program(uuid_: str, *courses: ProgramCourse) -> Program:
    return Program(uuid=uuid_, courses=courses)


def certs(*pairs: tuple[str, str]) -> tuple[PassingCertificate, ...]:
    return tuple(PassingCertificate(course_run=run, mode=mode) for run, mode in pairs)


def reason(value: object) -> str | None:
    """Return the skip reason of a rule's answer, or None when it is not a skip."""
    return value.reason if isinstance(value, Skip) else None


# ============================================================================ course certificate

NO_DISABLED_ORGS: frozenset[str] = frozenset()


@pytest.mark.parametrize(
    ("org", "mode", "status", "honor_enabled", "disabled_orgs", "expected"),
    [
        pytest.param("OrgX", "verified", "downloadable", True, NO_DISABLED_ORGS, None,
                     id="tasks.award_course_certificate: verified passing cert is synced"),
        pytest.param("OrgX", "verified", "downloadable", True, frozenset({"OrgX"}),
                     "learner_records_disabled",
                     id="signals.handle_course_cert_changed: org with learner records off"),
        pytest.param("OrgX", "verified", "notpassing", True, frozenset({"OrgY"}), None,
                     id="signals.handle_course_cert_changed: another org's switch does not apply"),
        pytest.param("orgx", "verified", "downloadable", True, frozenset({"OrgX"}), None,
                     id="signals.handle_course_cert_changed: org match is exact, as site config"),
        pytest.param("OrgX", "audit", "audit_passing", True, NO_DISABLED_ORGS, "audit_certificate",
                     id="certificates.EligibleCertificateManager: audit_passing is invisible"),
        pytest.param("OrgX", "verified", "audit_notpassing", True, NO_DISABLED_ORGS,
                     "audit_certificate",
                     id="certificates.EligibleCertificateManager: audit_notpassing is invisible"),
        pytest.param("OrgX", "audit", "downloadable", True, NO_DISABLED_ORGS, "ineligible_mode",
                     id="course_modes.is_eligible_for_certificate: audit never"),
        pytest.param("OrgX", "honor", "downloadable", True, NO_DISABLED_ORGS, None,
                     id="course_modes.is_eligible_for_certificate: honor while enabled"),
        pytest.param("OrgX", "honor", "downloadable", False, NO_DISABLED_ORGS,
                     "honor_certificates_disabled",
                     id="course_modes.is_eligible_for_certificate: honor disabled, no status"),
        pytest.param("OrgX", "honor", "notpassing", False, NO_DISABLED_ORGS,
                     "honor_certificates_disabled",
                     id="course_modes.is_eligible_for_certificate: honor disabled, revocation"),
        pytest.param("OrgX", "unpaid-bootcamp", "downloadable", False, NO_DISABLED_ORGS, None,
                     id="course_modes.is_eligible_for_certificate: any non-audit mode"),
        pytest.param("OrgX", "", "downloadable", True, NO_DISABLED_ORGS, "missing_mode",
                     id="worker choice: an empty mode cannot be posted"),
        pytest.param("OrgX", "audit", "downloadable", True, frozenset({"OrgX"}),
                     "learner_records_disabled",
                     id="signals before tasks: the org gate is checked first"),
    ],
)  # fmt: skip
def test_course_certificate_skip(
    *,
    org: str,
    mode: str,
    status: str,
    honor_enabled: bool,
    disabled_orgs: frozenset[str],
    expected: str | None,
) -> None:
    """A course certificate is synced unless the seed's org, status or mode gate stops it."""
    result = rules.course_certificate_skip(
        org=org,
        mode=mode,
        status=status,
        honor_certificates_enabled=honor_enabled,
        learner_records_disabled_orgs=disabled_orgs,
    )
    assert reason(result) == expected


@pytest.mark.parametrize("mode", sorted(rules.CERTIFICATE_RELEVANT_MODES))
def test_every_certificate_relevant_mode_is_synced(mode: str) -> None:
    """Seed course_modes.CERTIFICATE_RELEVANT_MODES: each relevant mode passes the mode gate."""
    result = rules.course_certificate_skip(
        org="OrgX",
        mode=mode,
        status="downloadable",
        honor_certificates_enabled=False,
        learner_records_disabled_orgs=NO_DISABLED_ORGS,
    )
    assert result is None


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        pytest.param("downloadable", "awarded", id="GeneratedCertificate.is_valid: downloadable"),
        pytest.param("notpassing", "revoked", id="is_valid false: notpassing (mark_notpassing)"),
        pytest.param("unavailable", "revoked", id="is_valid false: unavailable (invalidate)"),
        pytest.param("unverified", "revoked", id="is_valid false: unverified (mark_unverified)"),
        pytest.param("error", "revoked", id="is_valid false: error"),
        pytest.param("restricted", "revoked", id="is_valid false: restricted"),
    ],
)
def test_course_certificate_status(status: str, expected: CredentialStatus) -> None:
    """Credentials gets awarded only for a downloadable certificate, revoked otherwise."""
    assert rules.course_certificate_status(status) == expected


def test_generating_certificate_is_a_skip() -> None:
    """Worker choice over is_valid: a generating certificate is neither awarded nor revoked."""
    assert reason(rules.course_certificate_status("generating")) == "certificate_generating"


@pytest.mark.parametrize(
    ("mode", "honor_enabled", "expected"),
    [
        pytest.param("audit", True, False, id="is_eligible_for_certificate: audit never"),
        pytest.param("honor", True, True, id="is_eligible_for_certificate: honor enabled"),
        pytest.param("honor", False, False, id="is_eligible_for_certificate: honor disabled"),
        pytest.param("verified", False, True, id="is_eligible_for_certificate: verified"),
        pytest.param("masters", False, True, id="is_eligible_for_certificate: masters"),
    ],
)
def test_is_mode_eligible(mode: str, honor_enabled: bool, expected: bool) -> None:
    """Every mode but audit earns a certificate; honor only while honor is enabled."""
    assert rules.is_mode_eligible(mode, honor_certificates_enabled=honor_enabled) is expected


# ============================================================================ mode translations


@pytest.mark.parametrize(
    ("seat_type", "expected"),
    [
        pytest.param("credit", "verified", id="_course_run_mode_translation: credit->verified"),
        pytest.param("verified", "verified", id="_course_run_mode_translation: verified as is"),
        pytest.param("professional", "professional", id="_course_run_mode_translation: as is"),
        pytest.param("no-id-professional", "no-id-professional",
                     id="_course_run_mode_translation: no-id-professional not on the run side"),
        pytest.param(None, None, id="Discovery: run without seats stays None"),
    ],
)  # fmt: skip
def test_run_seat_type(seat_type: str | None, expected: str | None) -> None:
    """Only credit is translated on the run side."""
    assert rules.run_seat_type(seat_type) == expected


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        pytest.param("no-id-professional", "professional",
                     id="_certificate_mode_translation: no-id-professional->professional"),
        pytest.param("credit", "credit", id="_certificate_mode_translation: credit not here"),
        pytest.param("verified", "verified", id="_certificate_mode_translation: as is"),
    ],
)  # fmt: skip
def test_certificate_mode(mode: str, expected: str) -> None:
    """Only no-id-professional is translated on the certificate side."""
    assert rules.certificate_mode(mode) == expected


# ============================================================================ completion

TWO_COURSES = program(P1, course("A", (RUN_A1, "verified")), course("B", (RUN_B1, "verified")))


@pytest.mark.parametrize(
    ("definition", "held", "expected"),
    [
        pytest.param(program(P1, course("A", (RUN_A1, "verified"))),
                     certs((RUN_A1, "verified")), True,
                     id="_available_date_for_program: matching mode completes"),
        pytest.param(program(P1, course("A", (RUN_A1, "verified"))),
                     certs((RUN_A1, "honor")), False,
                     id="_available_date_for_program: modes must match"),
        pytest.param(program(P1, course("A", (RUN_A1, "credit"))),
                     certs((RUN_A1, "verified")), True,
                     id="_course_run_mode_translation: credit run, verified cert"),
        pytest.param(program(P1, course("A", (RUN_A1, "credit"))),
                     certs((RUN_A1, "credit")), False,
                     id="_course_run_mode_translation: credit cert is not translated"),
        pytest.param(program(P1, course("A", (RUN_A1, "professional"))),
                     certs((RUN_A1, "no-id-professional")), True,
                     id="_certificate_mode_translation: no-id-professional cert, professional run"),
        pytest.param(program(P1, course("A", (RUN_A1, "no-id-professional"))),
                     certs((RUN_A1, "no-id-professional")), False,
                     id="_certificate_mode_translation: run side is not translated"),
        pytest.param(program(P1, course("A", (RUN_A1, "verified"), (RUN_A2, "verified"))),
                     certs((RUN_A2, "verified")), True,
                     id="_is_course_complete: any run completes the course"),
        pytest.param(TWO_COURSES,
                     certs((RUN_A1, "verified")), False,
                     id="_available_date_for_program: every course is needed"),
        pytest.param(TWO_COURSES,
                     certs((RUN_A1, "verified"), (RUN_B1, "verified")), True,
                     id="_available_date_for_program: all courses complete the program"),
        pytest.param(program(P1), certs((RUN_A1, "verified")), False,
                     id="_available_date_for_program: no courses is never complete"),
        pytest.param(program(P1, course("A")), certs((RUN_A1, "verified")), False,
                     id="_is_course_complete: a course without runs is never complete"),
        pytest.param(program(P1, course("A", (RUN_A1, None))), certs((RUN_A1, "verified")), False,
                     id="Discovery: a run with seat type None never matches"),
        pytest.param(program(P1, course("A", (RUN_A1, "verified"))),
                     certs((RUN_C1, "verified")), False,
                     id="_available_date_for_program: a cert in another run does not count"),
        pytest.param(program(P1, course("A", (RUN_A1, "verified"))), certs(), False,
                     id="_available_date_for_program: no certificates"),
    ],
)  # fmt: skip
def test_is_program_complete(
    definition: Program, held: tuple[PassingCertificate, ...], expected: bool
) -> None:
    """A program is complete when each course has a run whose translated modes match."""
    assert rules.is_program_complete(definition, held) is expected


def test_completed_programs_sorted_and_deduplicated() -> None:
    """ProgramProgressMeter.completed_programs: every complete program once, UUIDs sorted."""
    definitions = [
        program(P3, course("A", (RUN_A1, "verified"))),
        program(P2, course("B", (RUN_B1, "verified"))),
        program(P1, course("A", (RUN_A2, "verified"), (RUN_A1, "verified"))),
        program(P3, course("A", (RUN_A1, "verified"))),
    ]
    held = certs((RUN_A1, "verified"))
    assert rules.completed_programs(definitions, held) == (P1, P3)


# ============================================================================ award / revoke


def _spelled(value: str) -> str:
    return value.upper().replace("-", "")


@pytest.mark.parametrize(
    ("completed", "awarded", "excluded", "expected"),
    [
        pytest.param([P1, P2], [P1], frozenset(), (P2,),
                     id="award_program_certificates: already awarded is not re-awarded"),
        pytest.param([P1, P2], [], frozenset({P2}), (P1,),
                     id="award_program_certificates: programs_without_certificates excluded"),
        pytest.param([P1, P2], [], ALL_PROGRAMS, (),
                     id="award_program_certificates: ALL disables awarding"),
        pytest.param([P1, P2], [], frozenset({"all"}), (),
                     id="award_program_certificates: 'all' in any case, as a list item"),
        pytest.param([], [P1], frozenset(), (),
                     id="award_program_certificates: nothing completed"),
        pytest.param([P3, P1, P2], [], frozenset(), (P1, P2, P3),
                     id="award_program_certificates: sorted for determinism"),
        pytest.param([P1, P1], [], frozenset(), (P1,),
                     id="award_program_certificates: a set difference, no duplicates"),
        pytest.param([P1, P2], [], frozenset({_spelled(P1)}), (P2,),
                     id="worker choice: excluded UUIDs compare by value, not spelling"),
        pytest.param([P1, P2], [_spelled(P2)], frozenset(), (P1,),
                     id="worker choice: awarded UUIDs compare by value, not spelling"),
    ],
)  # fmt: skip
def test_programs_to_award(
    completed: list[str],
    awarded: list[str],
    excluded: ProgramExclusion,
    expected: tuple[str, ...],
) -> None:
    """Programs to award are completed minus awarded minus excluded, sorted."""
    assert rules.programs_to_award(completed, awarded, excluded) == expected


@pytest.mark.parametrize(
    ("excluded", "expected"),
    [
        pytest.param(ALL_PROGRAMS, True, id="award_program_certificates: ALL"),
        pytest.param(frozenset({"ALL", P1}), True, id="award_program_certificates: ALL in list"),
        pytest.param(frozenset({P1}), False, id="award_program_certificates: UUID list"),
        pytest.param(frozenset(), False, id="award_program_certificates: empty list"),
    ],
)
def test_awarding_disabled(excluded: ProgramExclusion, expected: bool) -> None:
    """Only ALL turns program awards off."""
    assert rules.awarding_disabled(excluded) is expected


PROGRAMS_FOR_REVOKE = (
    program(P1, course("A", (RUN_A1, "verified"))),
    program(P2, course("A", (RUN_A1, "verified")), course("B", (RUN_B1, "verified"))),
    program(P3, course("B", (RUN_B1, "verified"))),
)


@pytest.mark.parametrize(
    ("run", "awarded", "expected"),
    [
        pytest.param(RUN_A1, [P1, P2, P3], (P1, P2),
                     id="revoke_program_certificates: awarded programs containing the run"),
        pytest.param(RUN_A1, [P2], (P2,),
                     id="get_revokable_program_uuids: only programs the learner holds"),
        pytest.param(RUN_C1, [P1, P2, P3], (),
                     id="revoke_program_certificates: run in no program, nothing to revoke"),
        pytest.param(RUN_B1, [P1], (),
                     id="get_revokable_program_uuids: awarded program without the run is kept"),
        pytest.param(RUN_A1, [_spelled(P1)], (P1,),
                     id="worker choice: awarded UUIDs compare by value, not spelling"),
    ],
)  # fmt: skip
def test_programs_to_revoke(run: str, awarded: list[str], expected: tuple[str, ...]) -> None:
    """Programs to revoke are those containing the run that the learner holds, sorted."""
    assert rules.programs_to_revoke(PROGRAMS_FOR_REVOKE, run, awarded) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(P1.upper(), P1, id="worker choice: case-insensitive UUID"),
        pytest.param(P1.replace("-", ""), P1, id="worker choice: hyphen-free UUID"),
        pytest.param(" {" + P1 + "} ", P1, id="worker choice: braces and spaces"),
        pytest.param(" Not-A-UUID ", "not-a-uuid", id="worker choice: other text lowercased"),
    ],
)
def test_canonical_uuid(value: str, expected: str) -> None:
    """Program UUIDs are spelled one way before they are compared."""
    assert rules.canonical_uuid(value) == expected


# ============================================================================ CAD

SEED_CAD = "tasks.update_certificate_available_date_on_course_update"


@pytest.mark.parametrize(
    ("pacing", "behavior", "cad", "expected"),
    [
        pytest.param("self", "end_with_date", CAD, AvailableDate(None, None),
                     id=f"{SEED_CAD}: self-paced is always null"),
        pytest.param("instructor", "end_with_date", CAD, AvailableDate(CAD, "end_with_date"),
                     id=f"{SEED_CAD}: END_WITH_DATE sends the CAD"),
        pytest.param("instructor", "end", CAD, AvailableDate(END, "end"),
                     id=f"{SEED_CAD}: END sends the course end"),
        pytest.param("instructor", "early_no_info", CAD, AvailableDate(None, "early_no_info"),
                     id=f"{SEED_CAD}: EARLY_NO_INFO sends null"),
        pytest.param("instructor", None, None,
                     AvailableDate(END, "end", fallback="display_behavior_missing"),
                     id="DESIGN: behaviour unknown without Studio is taken as end, visibly"),
        pytest.param("instructor", "sometime", CAD,
                     AvailableDate(END, "end", fallback="display_behavior_unknown"),
                     id="worker choice: an unknown behaviour is taken as end, visibly"),
        pytest.param("instructor", "end_with_date", None,
                     AvailableDate(END, "end", fallback="end_with_date_without_date"),
                     id="Studio normalisation: end_with_date without a date is end"),
    ],
)  # fmt: skip
def test_certificate_available_date(
    pacing: Pacing, behavior: str | None, cad: datetime | None, expected: AvailableDate
) -> None:
    """The CAD follows pacing and the display behaviour, and says when it assumed ``end``."""
    result = rules.certificate_available_date(
        pacing=pacing, end=END, display_behavior=behavior, available_date=cad
    )
    assert result == expected


def test_end_behaviour_without_course_end_is_null() -> None:
    """Seed sent str(None) for a run without an end; the rule answers None (JSON null)."""
    result = rules.certificate_available_date(
        pacing="instructor", end=None, display_behavior="end", available_date=None
    )
    assert result == AvailableDate(None, "end")


SEED_TYPE = "tasks.update_credentials_course_certificate_configuration_available_date"


@pytest.mark.parametrize(
    ("modes", "honor_enabled", "expected"),
    [
        pytest.param(["audit", "verified"], True, "verified",
                     id=f"{SEED_TYPE}: audit ignored, one relevant mode"),
        pytest.param(["audit"], True, "no_certificate_mode",
                     id=f"{SEED_TYPE}: no certificate mode is a skip"),
        pytest.param([], True, "no_certificate_mode",
                     id=f"{SEED_TYPE}: no modes at all is a skip"),
        pytest.param(["honor"], True, "honor",
                     id=f"{SEED_TYPE}: honor counts while enabled"),
        pytest.param(["audit", "honor"], False, "no_certificate_mode",
                     id=f"{SEED_TYPE}: honor ignored while disabled"),
        pytest.param(["audit", "honor", "verified"], True, "multiple_certificate_modes",
                     id=f"{SEED_TYPE}: honor and verified are two modes, a skip"),
        pytest.param(["audit", "honor", "verified"], False, "verified",
                     id=f"{SEED_TYPE}: honor disabled leaves verified alone"),
        pytest.param(["verified", "credit"], True, "multiple_certificate_modes",
                     id=f"{SEED_TYPE}: verified and credit are two relevant modes"),
        pytest.param(["verified", "verified"], True, "verified",
                     id="worker choice: one mode in two currencies is one type"),
        pytest.param(["professional"], False, "professional",
                     id="Credentials course_certificates: professional accepted"),
        pytest.param(["no-id-professional"], False, "no-id-professional",
                     id="Credentials course_certificates: no-id-professional accepted"),
        pytest.param(["masters"], False, "masters",
                     id="Credentials course_certificates: masters accepted"),
        pytest.param(["credit"], True, "certificate_type_not_accepted",
                     id="Credentials course_certificates: credit rejected, a skip"),
        pytest.param(["executive-education"], True, "certificate_type_not_accepted",
                     id="Credentials course_certificates: executive-education rejected"),
        pytest.param(["paid-executive-education"], True, "certificate_type_not_accepted",
                     id="Credentials course_certificates: paid-executive-education rejected"),
        pytest.param(["paid-bootcamp"], True, "certificate_type_not_accepted",
                     id="Credentials course_certificates: paid-bootcamp rejected"),
        pytest.param(["audit", "unpaid-bootcamp"], True, "certificate_type_not_accepted",
                     id=f"{SEED_TYPE}: an eligible non-relevant mode counts, then is rejected"),
    ],
)  # fmt: skip
def test_certificate_type(modes: list[str], honor_enabled: bool, expected: str) -> None:
    """A run's CAD config takes its one certificate mode, else a skip whose reason says why."""
    result = rules.certificate_type(modes, honor_certificates_enabled=honor_enabled)
    assert (reason(result) or result) == expected


def test_skip_to_json() -> None:
    """A skip has a stable dry-run form: reason and detail."""
    skip = Skip("no_certificate_mode", "the course run has no certificate-earning mode")
    assert skip.to_json() == {
        "skip": "no_certificate_mode",
        "detail": "the course run has no certificate-earning mode",
    }


# ============================================================================ properties

UUID_POOL = [str(uuid.UUID(int=n, version=4)) for n in range(1, 9)]
uuids = st.sampled_from(UUID_POOL)
spellings = st.sampled_from([str, str.upper, lambda value: value.replace("-", "")])
spelled_uuids = st.builds(lambda value, spell: spell(value), uuids, spellings)
exclusions: st.SearchStrategy[ProgramExclusion] = st.one_of(
    st.just(ALL_PROGRAMS), st.frozensets(spelled_uuids, max_size=4)
)
RUN_POOL = [RUN_A1, RUN_A2, RUN_B1, RUN_C1]
SEAT_POOL = [None, "verified", "credit", "professional", "honor", "audit"]
runs_st = st.builds(ProgramRun, st.sampled_from(RUN_POOL), st.sampled_from(SEAT_POOL))
courses_st = st.builds(
    ProgramCourse, st.sampled_from(["A", "B", "C"]), st.lists(runs_st, max_size=3).map(tuple)
)
programs_st = st.builds(Program, uuids, st.lists(courses_st, max_size=3).map(tuple))
certificates_st = st.builds(
    PassingCertificate,
    st.sampled_from(RUN_POOL),
    st.sampled_from(["verified", "credit", "professional", "no-id-professional", "honor"]),
)


def _canonical(values: Iterable[str]) -> set[str]:
    return {rules.canonical_uuid(value) for value in values}


@given(
    completed=st.lists(spelled_uuids, max_size=8),
    awarded=st.lists(spelled_uuids, max_size=8),
    excluded=exclusions,
)
def test_award_never_contains_awarded_or_excluded(
    completed: list[str], awarded: list[str], excluded: ProgramExclusion
) -> None:
    """Property: an award is a completed program neither awarded nor excluded."""
    result = rules.programs_to_award(completed, awarded, excluded)
    chosen = _canonical(result)
    assert chosen.isdisjoint(_canonical(awarded))
    assert chosen <= _canonical(completed)
    if excluded == ALL_PROGRAMS:
        assert result == ()
    else:
        assert chosen.isdisjoint(_canonical(excluded))


@given(
    completed=st.lists(spelled_uuids, max_size=8),
    awarded=st.lists(spelled_uuids, max_size=8),
    excluded=exclusions,
    data=st.data(),
)
def test_award_is_sorted_and_order_independent(
    completed: list[str], awarded: list[str], excluded: ProgramExclusion, data: st.DataObject
) -> None:
    """Property: the award list is sorted, unique, and the same for any input order."""
    result = rules.programs_to_award(completed, awarded, excluded)
    shuffled = rules.programs_to_award(
        data.draw(st.permutations(completed)), data.draw(st.permutations(awarded)), excluded
    )
    assert result == shuffled
    assert list(result) == sorted(set(result))


@given(
    definitions=st.lists(programs_st, max_size=5),
    run=st.sampled_from(RUN_POOL),
    awarded=st.lists(spelled_uuids, max_size=8),
    data=st.data(),
)
def test_revoke_is_a_sorted_subset_of_awarded(
    definitions: list[Program], run: str, awarded: list[str], data: st.DataObject
) -> None:
    """Property: revocations are awarded programs containing the run, sorted, order-free."""
    result = rules.programs_to_revoke(definitions, run, awarded)
    assert _canonical(result) <= _canonical(awarded)
    containing = _canonical(p.uuid for p in definitions if run in p.run_keys())
    assert set(result) <= containing
    assert list(result) == sorted(set(result))
    shuffled = rules.programs_to_revoke(
        data.draw(st.permutations(definitions)), run, data.draw(st.permutations(awarded))
    )
    assert shuffled == result


@given(
    definitions=st.lists(programs_st, max_size=5, unique_by=lambda p: p.uuid),
    held=st.lists(certificates_st, max_size=6),
    data=st.data(),
)
def test_completed_programs_agree_with_completion(
    definitions: list[Program], held: list[PassingCertificate], data: st.DataObject
) -> None:
    """Property: completed programs are exactly the complete ones, sorted, order-free."""
    result = rules.completed_programs(definitions, held)
    expected = {p.uuid for p in definitions if rules.is_program_complete(p, held)}
    assert result == tuple(sorted(expected))
    assert all(p.courses for p in definitions if p.uuid in result)
    shuffled = rules.completed_programs(
        data.draw(st.permutations(definitions)), data.draw(st.permutations(held))
    )
    assert shuffled == result


@given(value=spelled_uuids)
def test_canonical_uuid_is_idempotent(value: str) -> None:
    """Property: spelling a UUID canonically twice changes nothing."""
    once = rules.canonical_uuid(value)
    assert rules.canonical_uuid(once) == once
