"""Effects: each command becomes the right requests, and its result says what happened."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from structlog.testing import capture_logs

from consumer import rules
from consumer.commands import (
    AwardPrograms,
    CredentialStatus,
    RevokePrograms,
    SyncCertificateAvailableDate,
    SyncCourseCertificate,
)
from consumer.effects import Effects, ProgramResult
from consumer.errors import (
    CircuitOpenError,
    MalformedAnswerError,
    PermanentError,
    ServiceUnavailableError,
    TransientError,
)
from consumer.events import Learner
from consumer.handlers import Policy
from consumer.services.bundle import Services, build_services
from consumer.services.credentials import CredentialsClient, ProgramWrite
from tests.fakes.openedx import FakeOpenEdx
from tests.fakes.openedx.settings import service_settings

ALICE = Learner(user_id=42, username="alice")
A1 = "course-v1:edX+A+1T2026"
B1 = "course-v1:edX+B+1T2026"
C1 = "course-v1:edX+C+1T2026"
P = "11111111-1111-4111-8111-111111111111"  # A and B
Q = "22222222-2222-4222-8222-222222222222"  # B only
R = "33333333-3333-4333-8333-333333333333"  # C only, not configured in Credentials
END = datetime(2026, 6, 1, tzinfo=UTC)
LMS_SOURCE = Policy(completion_source="lms")


@pytest.fixture
def fake() -> Iterator[FakeOpenEdx]:
    fake = FakeOpenEdx.start()
    fake.add_user("alice", 42)
    fake.add_course_run(A1, modes=("audit", "verified"), end=END)
    fake.add_course_run(B1, modes=("audit", "verified"))
    fake.add_course_run(C1, modes=("audit", "verified"))
    fake.add_program(P, {"edX+A": {A1: "verified"}, "edX+B": {B1: "verified"}})
    fake.add_program(Q, {"edX+B": {B1: "verified"}})
    fake.add_program(R, {"edX+C": {C1: "verified"}}, in_credentials=False)
    yield fake
    fake.stop()


@pytest.fixture
def effects(services: Services) -> Effects:
    return Effects(services)


def passed(fake: FakeOpenEdx, *runs: str, mode: str = "verified") -> None:
    """Alice passed ``runs`` in ``mode``: the LMS has her certificates, Credentials their copies."""
    for run in runs:
        fake.add_lms_certificate("alice", run, mode=mode)
        fake.add_credential("alice", course_run=run, mode=mode)


def award(run: str, mode: str = "verified", status: str = "downloadable") -> AwardPrograms:
    """The award a certificate-created event of alice in ``run`` asks for."""
    return AwardPrograms(learner=ALICE, course_run=run, mode=mode, status=status)


def program_writes(fake: FakeOpenEdx) -> list[tuple[str | None, Any]]:
    return [
        (write.program_uuid, write.payload.get("status", "awarded"))
        for write in fake.writes(endpoint="credentials_post")
        if write.program_uuid
    ]


# ---------------------------------------------------------------------------- course certificate


def test_course_certificate_sync_posts_the_credential(fake: FakeOpenEdx, effects: Effects) -> None:
    """A course-certificate sync posts the run credential; the result names the LMS user id."""
    result = effects.apply(
        SyncCourseCertificate(
            learner=ALICE,
            course_run=A1,
            mode="verified",
            status="awarded",
            date_override=datetime(2026, 5, 1, tzinfo=UTC),
        ),
        "event-1",
    )
    (write,) = fake.writes()
    assert (result.status, result.lms_user_id, result.course_run) == ("applied", 42, A1)
    assert write.payload["date_override"] == {"date": "2026-05-01T00:00:00Z"}
    assert write.request_id == "event-1"
    assert "alice" not in str(result.log_fields())


# ---------------------------------------------------------------------------- award


def test_award_posts_every_completed_program_not_yet_awarded(
    fake: FakeOpenEdx, effects: Effects
) -> None:
    """Programs completed through any passed run are awarded, one POST each, in UUID order."""
    passed(fake, A1, B1)
    result = effects.apply(award(B1), "e")
    assert program_writes(fake) == [(P, "awarded"), (Q, "awarded")]
    assert result.status == "applied"
    assert result.programs == (ProgramResult(P, "awarded"), ProgramResult(Q, "awarded"))


def test_award_includes_programs_of_earlier_runs(fake: FakeOpenEdx, effects: Effects) -> None:
    """A program completed earlier but never awarded is awarded on the next certificate."""
    passed(fake, B1, C1)
    effects.apply(award(C1), "e")
    assert program_writes(fake)[0] == (Q, "awarded")


def test_award_with_nothing_completed_writes_nothing(fake: FakeOpenEdx, effects: Effects) -> None:
    """Without a completed program nothing is written and the result says why."""
    passed(fake, A1)
    result = effects.apply(award(A1), "e")
    assert (result.status, result.reason) == ("skipped", "no_completed_programs")
    assert fake.writes() == []


def test_already_awarded_programs_are_not_posted_again(fake: FakeOpenEdx, effects: Effects) -> None:
    """Programs the learner already holds are left alone."""
    passed(fake, B1)
    fake.add_credential("alice", program_uuid=Q)
    result = effects.apply(award(B1), "e")
    assert (result.status, result.reason) == ("skipped", "already_awarded")
    assert fake.writes() == []


def test_excluded_programs_are_not_awarded(fake: FakeOpenEdx, services: Services) -> None:
    """PROGRAMS_WITHOUT_CERTIFICATES keeps a program from being awarded; ALL turns awards off."""
    passed(fake, A1, B1)
    some = Effects(services, Policy(programs_without_certificates=frozenset({Q})))
    none = Effects(services, Policy(programs_without_certificates=rules.ALL_PROGRAMS))
    skipped = none.apply(award(B1), "e")
    some.apply(award(B1), "e")
    assert skipped.reason == "programs_without_certificates_all"
    assert program_writes(fake) == [(P, "awarded")]


def test_unconfigured_program_is_a_skip_beside_the_awards(
    fake: FakeOpenEdx, effects: Effects
) -> None:
    """A program Credentials has not configured is skipped with a reason; the others are awarded."""
    passed(fake, B1, C1)
    result = effects.apply(award(C1), "e")
    assert result.status == "applied"
    assert result.reason == "program_not_configured"
    assert result.programs == (
        ProgramResult(Q, "awarded"),
        ProgramResult(R, "skipped", "program_not_configured"),
    )


def test_only_unconfigured_programs_make_a_skipped_result(
    fake: FakeOpenEdx, effects: Effects
) -> None:
    """When every program to award is unconfigured, the command is a skip, not an error."""
    passed(fake, C1)
    result = effects.apply(award(C1), "e")
    assert (result.status, result.reason) == ("skipped", "program_not_configured")


def test_one_failed_program_does_not_undo_the_others(fake: FakeOpenEdx, effects: Effects) -> None:
    """A 500 on one program is raised after the others were awarded, naming the failed program."""
    passed(fake, A1, B1)
    fake.set_error("credentials", 500, endpoint="credentials_post", times=1)
    with pytest.raises(TransientError) as caught:
        effects.apply(award(B1), "e")
    awarded = {item.key for item in fake.credentials("alice") if item.type == "program"}
    assert awarded == {Q}
    assert f"programs failed: {P}" in str(caught.value)
    assert caught.value.status == 500


def test_retry_after_a_partial_failure_only_posts_what_is_missing(
    fake: FakeOpenEdx, effects: Effects
) -> None:
    """Applying the command again re-reads the awards and posts only the program that failed."""
    passed(fake, A1, B1)
    fake.set_error("credentials", 500, endpoint="credentials_post", times=1)
    with pytest.raises(TransientError):
        effects.apply(award(B1), "e")
    result = effects.apply(award(B1), "e")
    assert result.programs == (ProgramResult(P, "awarded"),)
    assert program_writes(fake) == [(P, "awarded"), (Q, "awarded"), (P, "awarded")]


def test_an_outage_stops_the_loop_early(fake: FakeOpenEdx, effects: Effects) -> None:
    """When Credentials is down for writes, the first failed POST ends the loop (outage)."""
    passed(fake, A1, B1)
    fake.set_error("credentials", 503, endpoint="credentials_post")
    with pytest.raises(ServiceUnavailableError):
        effects.apply(award(B1), "e")
    assert len(fake.writes()) == 1


class ScriptedCredentials(CredentialsClient):
    """Answers program writes from a script: an error to raise, or a ProgramWrite."""

    def __init__(
        self, inner: CredentialsClient, script: dict[str, Exception | ProgramWrite]
    ) -> None:
        self._inner = inner
        self._script = script
        self.posted: list[str] = []

    def awarded_program_uuids(self, *, username: str, request_id: str) -> frozenset[str]:
        return self._inner.awarded_program_uuids(username=username, request_id=request_id)

    def awarded_course_runs(self, *, username: str, request_id: str) -> frozenset[str]:
        return self._inner.awarded_course_runs(username=username, request_id=request_id)

    def post_program_credential(
        self,
        *,
        username: str,
        lms_user_id: int,
        program_uuid: str,
        status: CredentialStatus,
        request_id: str,
    ) -> ProgramWrite:
        del username, lms_user_id, status, request_id
        self.posted.append(program_uuid)
        outcome = self._script[program_uuid]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def test_the_worst_failure_is_raised_transient_before_permanent(
    fake: FakeOpenEdx, services: Services
) -> None:
    """Of a permanent and a transient failure the transient is raised, naming both programs."""
    passed(fake, A1, B1)
    scripted = ScriptedCredentials(
        services.credentials,
        {
            P: PermanentError("rejected", service="credentials", status=403),
            Q: TransientError("busy", service="credentials", status=500, retry_after=3),
        },
    )
    effects = Effects(dataclasses.replace(services, credentials=scripted))
    with pytest.raises(TransientError) as caught:
        effects.apply(award(B1), "e")
    assert scripted.posted == [P, Q]
    assert (caught.value.status, caught.value.retry_after) == (500, 3)
    assert f"programs failed: {P}, {Q}" in str(caught.value)


def test_an_open_circuit_stops_the_loop_and_is_raised_as_such(
    fake: FakeOpenEdx, services: Services
) -> None:
    """An open circuit on the first program ends the loop and surfaces as CircuitOpenError."""
    passed(fake, A1, B1)
    scripted = ScriptedCredentials(
        services.credentials,
        {
            P: CircuitOpenError("open", service="credentials"),
            Q: ProgramWrite.APPLIED,
        },
    )
    effects = Effects(dataclasses.replace(services, credentials=scripted))
    with pytest.raises(CircuitOpenError):
        effects.apply(award(B1), "e")
    assert scripted.posted == [P]


def test_a_permanent_failure_alone_is_raised_as_permanent(
    fake: FakeOpenEdx, services: Services
) -> None:
    """When every failure is permanent, the command fails permanently (dead letter)."""
    passed(fake, B1)
    scripted = ScriptedCredentials(
        services.credentials, {Q: PermanentError("rejected", service="credentials", status=403)}
    )
    effects = Effects(dataclasses.replace(services, credentials=scripted))
    with pytest.raises(PermanentError) as caught:
        effects.apply(award(B1), "e")
    assert caught.value.reason == "http_403"


def test_a_malformed_program_write_answer_is_raised_as_malformed_with_its_reason(
    fake: FakeOpenEdx, services: Services
) -> None:
    """A program POST answered with garbage is retried as MalformedAnswerError, not a crash."""
    passed(fake, B1)
    scripted = ScriptedCredentials(
        services.credentials,
        {
            Q: MalformedAnswerError(
                "credentials: answer is not JSON",
                service="credentials",
                reason="invalid_json_response",
            )
        },
    )
    effects = Effects(dataclasses.replace(services, credentials=scripted))
    with pytest.raises(MalformedAnswerError) as caught:
        effects.apply(award(B1), "e")
    assert caught.value.reason == "invalid_json_response"
    assert f"programs failed: {Q}" in str(caught.value)


# ------------------------------------------------- completion never reads modes from Credentials


def test_an_honor_certificate_in_a_verified_run_completes_no_verified_program(
    fake: FakeOpenEdx, services: Services
) -> None:
    """Regression: Credentials reads alice's honor credential in a verified run back as verified.

    Program Q needs B1 as verified; the seed's ProgramProgressMeter compares the learner's
    own mode (honor) with the run's type, so nothing is awarded.
    """
    fake.add_course_certificate_config(B1, "verified")
    passed(fake, B1, mode="honor")
    (read,) = services.credentials.list_credentials(username="alice", request_id="e")
    assert read.mode == "verified"  # what Credentials answers: the run's config type
    result = Effects(services).apply(award(B1, mode="honor"), "e")
    assert (result.status, result.reason) == ("skipped", "no_completed_programs")
    assert program_writes(fake) == []


def test_the_modes_of_the_other_runs_come_from_the_lms(fake: FakeOpenEdx, effects: Effects) -> None:
    """An earlier honor certificate in a verified run does not complete P; the event's does Q."""
    fake.add_course_certificate_config(A1, "verified")
    passed(fake, A1, mode="honor")
    passed(fake, B1)
    result = effects.apply(award(B1), "e")
    assert result.programs == (ProgramResult(Q, "awarded"),)
    assert [record.status for record in fake.requests(endpoint="certificates_list")] == [200]


def test_a_run_not_yet_viewable_is_read_from_the_lms_on_its_own(
    fake: FakeOpenEdx, effects: Effects
) -> None:
    """The LMS list leaves out runs not yet viewable: their certificate is read one by one."""
    fake.add_course_run(A1, certificates_viewable=False)
    passed(fake, A1, B1)
    result = effects.apply(award(B1), "e")
    assert result.programs == (ProgramResult(P, "awarded"), ProgramResult(Q, "awarded"))
    assert [record.course_run for record in fake.requests(endpoint="certificate_detail")] == [A1]


def test_a_run_held_in_credentials_but_not_passing_in_the_lms_does_not_count(
    fake: FakeOpenEdx, effects: Effects
) -> None:
    """Credentials still holding a run the LMS no longer has as passing: the LMS decides."""
    passed(fake, A1, B1)
    fake.add_lms_certificate("alice", A1, mode="verified", status="notpassing")
    result = effects.apply(award(B1), "e")
    assert result.programs == (ProgramResult(Q, "awarded"),)


def test_only_the_events_run_needed_asks_the_lms_nothing(
    fake: FakeOpenEdx, effects: Effects
) -> None:
    """When the event's run alone completes the program, no LMS request is made."""
    passed(fake, B1)
    result = effects.apply(award(B1), "e")
    assert result.programs == (ProgramResult(Q, "awarded"),)
    assert fake.requests(service="lms") == []


def test_the_events_own_run_counts_before_credentials_holds_it(effects: Effects) -> None:
    """The event's certificate counts with its own mode even if Credentials has no copy yet."""
    result = effects.apply(award(B1), "e")
    assert result.programs == (ProgramResult(Q, "awarded"),)


def test_an_event_certificate_that_is_not_passing_does_not_count(effects: Effects) -> None:
    """Only a passing status (downloadable, generating) makes the event's run count."""
    result = effects.apply(award(B1, status="notpassing"), "e")
    generating = effects.apply(award(B1, status="generating"), "e")
    assert (result.status, result.reason) == ("skipped", "no_completed_programs")
    assert generating.programs == (ProgramResult(Q, "awarded"),)


def test_completion_from_the_lms_takes_the_events_mode_for_its_run(fake: FakeOpenEdx) -> None:
    """With completion_source=lms an honor event in B1 completes no verified program either."""
    fake.add_lms_certificate("alice", A1, mode="verified")
    services = build_services(service_settings(fake))
    try:
        honor = Effects(services, LMS_SOURCE).apply(award(B1, mode="honor"), "e")
    finally:
        services.close()
    assert (honor.status, honor.reason) == ("skipped", "no_completed_programs")


def test_completion_from_the_lms_certificates_list(fake: FakeOpenEdx) -> None:
    """With completion_source=lms, passing certificates come from the LMS, not from Credentials."""
    fake.add_lms_certificate("alice", B1, mode="verified")
    services = build_services(service_settings(fake))
    try:
        result = Effects(services, LMS_SOURCE).apply(award(B1), "e")
    finally:
        services.close()
    assert result.programs == (ProgramResult(Q, "awarded"),)
    assert fake.requests(endpoint="certificates_list")[0].status == 200


def test_award_without_discovery_is_a_skip(fake: FakeOpenEdx) -> None:
    """Without Discovery there are no program awards: the command is skipped with a reason."""
    services = build_services(service_settings(fake, discovery_url=None))
    try:
        result = Effects(services, Policy(programs_enabled=False)).apply(award(B1), "e")
    finally:
        services.close()
    assert (result.status, result.reason) == ("skipped", "programs_not_configured")


def test_effects_refuse_a_policy_with_programs_but_no_discovery(fake: FakeOpenEdx) -> None:
    """A policy handling programs with no Discovery to read them is a wiring error at start."""
    services = build_services(service_settings(fake, discovery_url=None))
    try:
        with pytest.raises(ValueError, match="Discovery is not configured"):
            Effects(services, Policy(programs_enabled=True))
    finally:
        services.close()


def test_award_logs_carry_the_lms_user_id_never_the_username(
    fake: FakeOpenEdx, effects: Effects
) -> None:
    """Log lines of an award name the learner by LMS user id only."""
    passed(fake, B1)
    with capture_logs() as logs:
        effects.apply(award(B1), "e")
    awarded = [entry for entry in logs if entry["event"] == "program_awarded"]
    assert [entry["lms_user_id"] for entry in awarded] == [42]
    assert "alice" not in str(logs)


# ---------------------------------------------------------------------------- revoke


def test_revoke_targets_awarded_programs_containing_the_run(
    fake: FakeOpenEdx, effects: Effects
) -> None:
    """Only the awarded programs that contain the revoked run are revoked."""
    fake.add_credential("alice", program_uuid=P)
    fake.add_credential("alice", program_uuid=Q)
    result = effects.apply(RevokePrograms(learner=ALICE, course_run=A1), "e")
    assert program_writes(fake) == [(P, "revoked")]
    assert result.programs == (ProgramResult(P, "revoked"),)


def test_revoke_without_awarded_programs_writes_nothing(
    fake: FakeOpenEdx, effects: Effects
) -> None:
    """A revoked run in programs the learner never received needs no write."""
    result = effects.apply(RevokePrograms(learner=ALICE, course_run=A1), "e")
    assert (result.status, result.reason) == ("skipped", "no_awarded_program_contains_run")
    assert fake.writes() == []


def test_revoke_of_a_run_in_no_program_reads_nothing_from_credentials(
    fake: FakeOpenEdx, effects: Effects
) -> None:
    """A run that belongs to no program is a skip before any Credentials read."""
    result = effects.apply(RevokePrograms(learner=ALICE, course_run="course-v1:edX+Z+1"), "e")
    assert (result.status, result.reason) == ("skipped", "no_program_contains_run")
    assert fake.requests(service="credentials") == []


# ---------------------------------------------------------------- certificate available date


def cad_payloads(fake: FakeOpenEdx) -> list[Any]:
    return [write.payload for write in fake.writes(endpoint="course_certificates_post")]


def test_cad_uses_studio_end_with_date(fake: FakeOpenEdx, effects: Effects) -> None:
    """Instructor-paced end_with_date sends Studio's certificate available date."""
    fake.add_course_run(
        B1, display_behavior="end_with_date", certificate_available_date="2026-07-01T00:00:00Z"
    )
    result = effects.apply(
        SyncCertificateAvailableDate(course_run=B1, pacing="instructor", end=END), "e"
    )
    assert cad_payloads(fake) == [
        {
            "course_id": B1,
            "certificate_type": "verified",
            "certificate_available_date": "2026-07-01T00:00:00Z",
            "is_active": True,
        }
    ]
    assert (result.status, result.reason, result.display_behavior) == (
        "applied",
        None,
        "end_with_date",
    )


def test_cad_without_studio_assumes_end_and_says_so(fake: FakeOpenEdx) -> None:
    """Without Studio the behaviour is assumed end: the course end is sent, the result says why."""
    services = build_services(service_settings(fake, studio_url=None))
    try:
        result = Effects(services).apply(
            SyncCertificateAvailableDate(course_run=A1, pacing="instructor", end=END), "e"
        )
    finally:
        services.close()
    assert cad_payloads(fake)[0]["certificate_available_date"] == "2026-06-01T00:00:00Z"
    assert (result.reason, result.display_behavior) == ("studio_not_configured", "end")


def test_cad_of_a_self_paced_run_is_json_null(fake: FakeOpenEdx, effects: Effects) -> None:
    """A self-paced run gets JSON null (never "None") and Studio is not asked."""
    effects.apply(SyncCertificateAvailableDate(course_run=A1, pacing="self", end=END), "e")
    assert cad_payloads(fake)[0]["certificate_available_date"] is None
    assert fake.requests(service="studio") == []


def test_cad_early_no_info_is_json_null(fake: FakeOpenEdx, effects: Effects) -> None:
    """early_no_info sends no date: JSON null."""
    fake.add_course_run(A1, display_behavior="early_no_info", end=END)
    effects.apply(SyncCertificateAvailableDate(course_run=A1, pacing="instructor", end=END), "e")
    assert cad_payloads(fake)[0]["certificate_available_date"] is None


def test_cad_with_several_certificate_modes_is_skipped(fake: FakeOpenEdx, effects: Effects) -> None:
    """A run with two certificate modes cannot have one config: skipped with the rules' reason."""
    fake.add_course_run(A1, modes=("verified", "professional"))
    result = effects.apply(
        SyncCertificateAvailableDate(course_run=A1, pacing="instructor", end=END), "e"
    )
    assert (result.status, result.reason) == ("skipped", "multiple_certificate_modes")
    assert cad_payloads(fake) == []


def test_cad_values_given_in_the_command_win(fake: FakeOpenEdx, effects: Effects) -> None:
    """A command that already carries the behaviour and date does not ask Studio."""
    effects.apply(
        SyncCertificateAvailableDate(
            course_run=A1,
            pacing="instructor",
            end=END,
            display_behavior="end_with_date",
            certificate_available_date=datetime(2026, 8, 1, tzinfo=UTC),
        ),
        "e",
    )
    assert cad_payloads(fake)[0]["certificate_available_date"] == "2026-08-01T00:00:00Z"
    assert fake.requests(service="studio") == []
