"""Events in, commands and stated skips out: DESIGN's event table, one row a case."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumer.commands import (
    AwardPrograms,
    Command,
    RevokePrograms,
    SyncCertificateAvailableDate,
    SyncCourseCertificate,
)
from consumer.errors import InvalidEventError
from consumer.events import (
    CatalogInfoChanged,
    CertificateEvent,
    Event,
    EventMeta,
    EventType,
    Learner,
    Pacing,
    parse_course_key,
)
from consumer.handlers import Handled, Policy, handle, make_handler
from consumer.rules import ALL_PROGRAMS, Skip

CREATED = EventType.CERTIFICATE_CREATED
CHANGED = EventType.CERTIFICATE_CHANGED
REVOKED = EventType.CERTIFICATE_REVOKED
RUN = "course-v1:OrgX+DemoX+1T2024"
USERNAME = "pii-learner-name"
LEARNER = Learner(user_id=42, username=USERNAME)
START = datetime(2024, 1, 8, tzinfo=UTC)
END = datetime(2024, 6, 30, tzinfo=UTC)


def certificate_event(
    kind: EventType, *, mode: str = "verified", status: str = "downloadable", run: str = RUN
) -> CertificateEvent:
    return CertificateEvent(
        meta=EventMeta(id="ce-1", type=kind),
        learner=LEARNER,
        course_key=parse_course_key(run),
        mode=mode,
        status=status,
    )


def catalog_event(pacing: Pacing = "instructor") -> CatalogInfoChanged:
    return CatalogInfoChanged(
        meta=EventMeta(id="ce-2", type=EventType.CATALOG_INFO_CHANGED),
        course_key=parse_course_key(RUN),
        name="Demo",
        pacing=pacing,
        start=START,
        end=END,
    )


def summary(command: Command) -> str:
    """Return a short label for a command: its name, and its status for course syncs."""
    if isinstance(command, SyncCourseCertificate):
        return f"sync:{command.status}"
    return command.name


DEFAULT = Policy()
NO_SYNC = Policy(sync_course_certificates=False)
NO_PROGRAMS = Policy(programs_enabled=False)
NO_HONOR = Policy(honor_certificates_enabled=False)
ORG_OFF = Policy(learner_records_disabled_orgs=frozenset({"OrgX"}))
ALL_EXCLUDED = Policy(programs_without_certificates=ALL_PROGRAMS)
SOME_EXCLUDED = Policy(
    programs_without_certificates=frozenset({"11111111-1111-4111-8111-111111111111"})
)
NOTHING = Policy(sync_course_certificates=False, programs_enabled=False)


@pytest.mark.parametrize(
    ("event", "policy", "commands", "skips"),
    [
        # --- certificate.created: COURSE_CERT_CHANGED + COURSE_CERT_AWARDED
        pytest.param(certificate_event(CREATED), DEFAULT, ["sync:awarded", "award_programs"], [],
                     id="created: award_course_certificate + award_program_certificates"),
        pytest.param(certificate_event(CREATED, status="generating"), DEFAULT,
                     ["award_programs"], ["certificate_generating"],
                     id="created: generating is passing for programs, not valid for the course"),
        pytest.param(certificate_event(CREATED, mode="audit"), DEFAULT,
                     ["award_programs"], ["ineligible_mode"],
                     id="created: is_eligible_for_certificate audit skips the course sync only"),
        pytest.param(certificate_event(CREATED, mode="honor"), NO_HONOR,
                     ["award_programs"], ["honor_certificates_disabled"],
                     id="created: DISABLE_HONOR_CERTIFICATES skips the honor course sync"),
        pytest.param(certificate_event(CREATED, mode="honor"), DEFAULT,
                     ["sync:awarded", "award_programs"], [],
                     id="created: honor synced while honor certificates are enabled"),
        pytest.param(certificate_event(CREATED), ORG_OFF,
                     ["award_programs"], ["learner_records_disabled"],
                     id="created: learner records off gates the course sync, not programs"),
        pytest.param(certificate_event(CREATED), NO_SYNC,
                     ["award_programs"], ["course_certificate_sync_disabled"],
                     id="created: CONSUMER_SYNC_COURSE_CERTIFICATES=false"),
        pytest.param(certificate_event(CREATED), NO_PROGRAMS,
                     ["sync:awarded"], ["programs_not_configured"],
                     id="created: no Discovery, no program awards"),
        pytest.param(certificate_event(CREATED), ALL_EXCLUDED,
                     ["sync:awarded"], ["programs_without_certificates_all"],
                     id="created: award_program_certificates returns early on ALL"),
        pytest.param(certificate_event(CREATED), SOME_EXCLUDED,
                     ["sync:awarded", "award_programs"], [],
                     id="created: a UUID list still awards (the list applies per program)"),
        pytest.param(certificate_event(CREATED), NOTHING,
                     [], ["course_certificate_sync_disabled", "programs_not_configured"],
                     id="created: a fully skipped event says why, twice"),
        # --- certificate.changed: COURSE_CERT_CHANGED
        pytest.param(certificate_event(CHANGED), DEFAULT, ["sync:awarded"], [],
                     id="changed: award_course_certificate posts awarded for downloadable"),
        pytest.param(certificate_event(CHANGED, status="notpassing"), DEFAULT,
                     ["sync:revoked"], [],
                     id="changed: post_course_certificate posts revoked when not is_valid"),
        pytest.param(certificate_event(CHANGED, status="generating"), DEFAULT,
                     [], ["certificate_generating"],
                     id="changed: generating is a stated skip"),
        pytest.param(certificate_event(CHANGED, mode="audit", status="audit_passing"), DEFAULT,
                     [], ["audit_certificate"],
                     id="changed: EligibleCertificateManager hides audit statuses"),
        pytest.param(certificate_event(CHANGED), ORG_OFF, [], ["learner_records_disabled"],
                     id="changed: handle_course_cert_changed org gate"),
        pytest.param(certificate_event(CHANGED), NO_SYNC, [], ["course_certificate_sync_disabled"],
                     id="changed: course sync switched off"),
        pytest.param(certificate_event(CHANGED), NO_PROGRAMS, ["sync:awarded"], [],
                     id="changed: never touches programs, so no program skip"),
        # --- certificate.revoked: COURSE_CERT_CHANGED + COURSE_CERT_REVOKED
        pytest.param(certificate_event(REVOKED, status="notpassing"), DEFAULT,
                     ["sync:revoked", "revoke_programs"], [],
                     id="revoked: course revoked + revoke_program_certificates"),
        pytest.param(certificate_event(REVOKED, status="downloadable"), DEFAULT,
                     ["sync:revoked", "revoke_programs"], [],
                     id="revoked: the event type decides the status"),
        pytest.param(certificate_event(REVOKED, status="unavailable"), ALL_EXCLUDED,
                     ["sync:revoked", "revoke_programs"], [],
                     id="revoked: revoke_program_certificates ignores the ALL list"),
        pytest.param(certificate_event(REVOKED, status="unavailable"), NO_PROGRAMS,
                     ["sync:revoked"], ["programs_not_configured"],
                     id="revoked: no Discovery, no program revocations"),
        pytest.param(certificate_event(REVOKED, status="unverified"), ORG_OFF,
                     ["revoke_programs"], ["learner_records_disabled"],
                     id="revoked: handle_course_cert_revoked has no org gate"),
        pytest.param(certificate_event(REVOKED, mode="audit", status="notpassing"), DEFAULT,
                     ["revoke_programs"], ["ineligible_mode"],
                     id="revoked: audit course sync skipped, programs still revoked"),
        pytest.param(certificate_event(REVOKED, mode="honor", status="notpassing"), NO_HONOR,
                     ["revoke_programs"], ["honor_certificates_disabled"],
                     id="revoked: honor disabled skips the course sync"),
        # --- catalog_info.changed: COURSE_CERT_DATE_CHANGE / COURSE_PACING_CHANGED
        pytest.param(catalog_event(), DEFAULT, ["sync_certificate_available_date"], [],
                     id="catalog: update_certificate_available_date_on_course_update"),
        pytest.param(catalog_event("self"), NOTHING, ["sync_certificate_available_date"], [],
                     id="catalog: CAD sync does not depend on course or program switches"),
    ],
)  # fmt: skip
def test_handle(event: Event, policy: Policy, commands: list[str], skips: list[str]) -> None:
    """Each event yields DESIGN's commands, and every command left out is a stated skip."""
    handled = handle(event, policy)
    assert [summary(command) for command in handled.commands] == commands
    assert [skip.reason for skip in handled.skipped] == skips
    assert handled.commands or handled.skipped
    assert handled.is_skipped is (not commands)
    assert make_handler(policy)(event) == handled


def test_created_commands_carry_the_event_fields() -> None:
    """The created event's commands name the learner, the run and the certificate's mode.

    The award carries the event's mode and status: completion takes the learner's mode of
    this run from the event, never from Credentials' reads (ADR 0007).
    """
    handled = handle(certificate_event(CREATED, mode="professional"), DEFAULT)
    assert handled == Handled(
        commands=(
            SyncCourseCertificate(
                learner=LEARNER, course_run=RUN, mode="professional", status="awarded"
            ),
            AwardPrograms(
                learner=LEARNER, course_run=RUN, mode="professional", status="downloadable"
            ),
        )
    )


def test_revoked_commands_carry_the_event_fields() -> None:
    """The revoked event's commands name the learner and the revoked run."""
    handled = handle(certificate_event(REVOKED, status="notpassing"), DEFAULT)
    assert handled.commands == (
        SyncCourseCertificate(learner=LEARNER, course_run=RUN, mode="verified", status="revoked"),
        RevokePrograms(learner=LEARNER, course_run=RUN),
    )


def test_catalog_command_carries_pacing_and_end() -> None:
    """The catalog command carries pacing and end, and leaves behaviour and CAD to Studio."""
    handled = handle(catalog_event(), DEFAULT)
    assert handled.commands == (
        SyncCertificateAvailableDate(course_run=RUN, pacing="instructor", end=END),
    )
    assert handled.commands[0].to_json()["display_behavior"] is None


def test_skip_detail_is_human_text() -> None:
    """A skip carries a readable detail beside its metric reason."""
    (skip,) = handle(certificate_event(CHANGED), ORG_OFF).skipped
    assert skip == Skip("learner_records_disabled", "learner records are disabled for org OrgX")


def test_certificate_event_with_a_catalog_type_is_invalid() -> None:
    """A certificate event whose ce_type is not a certificate type is a dead letter, not a guess."""
    event = replace(
        certificate_event(CREATED), meta=EventMeta(id="ce-3", type=EventType.CATALOG_INFO_CHANGED)
    )
    with pytest.raises(InvalidEventError, match="cannot have ce_type"):
        handle(event, DEFAULT)


policies = st.builds(
    Policy,
    honor_certificates_enabled=st.booleans(),
    learner_records_disabled_orgs=st.sampled_from([frozenset(), frozenset({"OrgX"})]),
    programs_without_certificates=st.sampled_from([frozenset(), ALL_PROGRAMS]),
    sync_course_certificates=st.booleans(),
    programs_enabled=st.booleans(),
)


@given(
    kind=st.sampled_from([CREATED, CHANGED, REVOKED]),
    mode=st.sampled_from(["", "audit", "honor", "verified", "credit", "masters"]),
    status=st.sampled_from(["downloadable", "generating", "notpassing", "audit_passing"]),
    policy=policies,
)
def test_no_event_is_silent_and_none_leaks_the_username(
    kind: EventType, mode: str, status: str, policy: Policy
) -> None:
    """Property: every certificate event yields work or a reason, and never the username."""
    handled = handle(certificate_event(kind, mode=mode, status=status), policy)
    assert handled.commands or handled.skipped
    assert all(skip.reason and skip.detail for skip in handled.skipped)
    assert USERNAME not in repr(handled)
    assert all(USERNAME not in str(command.to_json()) for command in handled.commands)
    assert all(USERNAME not in str(skip.to_json()) for skip in handled.skipped)
