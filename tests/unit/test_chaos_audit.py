"""The soak's audit judges right: its model, its ordering rule, its dead-letter matching.

``make chaos`` is only as good as its audit, so each check is shown to flag what it must
(a step back below the committed offset, two requests of one key at once, a missing or
unexpected dead letter, a wrong final state, a leaked secret) and to let through what is
legitimate (a redelivery from an uncommitted offset, a dead letter written twice, an
injected timeout's tail). The workload's rule for program runs is checked too: a learner's
story re-applied from any uncommitted point ends in the state of the log applied once.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from consumer.events import Event, EventMeta, EventType, build_event
from consumer.programs import Program, ProgramCourse, ProgramRun
from tests.chaos.audit import (
    CommittedHistory,
    ExpectedDeadLetter,
    KeyedRequest,
    check_dead_letters,
    check_ordering,
    compare_states,
    find_leaks,
    world_of,
)
from tests.chaos.model import Config, CredentialsModel, World
from tests.chaos.workload import Planner, add_programs, make_catalogue
from tests.support.lms import catalog_data, certificate_data

CREATED = EventType.CERTIFICATE_CREATED
CHANGED = EventType.CERTIFICATE_CHANGED
REVOKED = EventType.CERTIFICATE_REVOKED
RUN_A = "course-v1:Org+A+2026_T1"
RUN_B = "course-v1:Org+B+2026_T1"
RUN_C = "course-v1:Org+C+2026_T1"
PROGRAM = "6c5d1b4e-0000-4000-8000-000000000001"
UNCONFIGURED = "6c5d1b4e-0000-4000-8000-000000000002"
EXCLUDED = "6c5d1b4e-0000-4000-8000-000000000003"


def world(**changes: Any) -> World:
    values: dict[str, Any] = {
        "modes": dict.fromkeys((RUN_A, RUN_B, RUN_C), ("audit", "verified")),
        "studio": {
            RUN_A: ("end", None),
            RUN_B: ("end_with_date", datetime(2026, 9, 1, tzinfo=UTC)),
            RUN_C: ("early_no_info", None),
        },
        "programs": (
            Program(
                PROGRAM,
                (
                    ProgramCourse("Org+A", (ProgramRun(RUN_A, "verified"),)),
                    ProgramCourse("Org+B", (ProgramRun(RUN_B, "verified"),)),
                ),
            ),
            Program(UNCONFIGURED, (ProgramCourse("Org+C", (ProgramRun(RUN_C, "verified"),)),)),
        ),
        "configured": frozenset({PROGRAM}),
        "excluded": frozenset({EXCLUDED}),
        "lms_certificates": {("ann", RUN_A): "verified", ("ann", RUN_B): "verified"},
        "failing": frozenset({"bob"}),
    }
    values.update(changes)
    return World(**values)


def cert(kind: EventType, run: str, status: str = "downloadable", user: str = "ann") -> Event:
    data = certificate_data(user_id=7 if user == "ann" else 8, username=user, course_key=run)
    data["certificate"]["current_status"] = status
    return build_event(EventMeta(id=f"{kind}-{run}-{status}", type=kind), data)


def catalog(run: str, *, pacing: str = "instructor", end: str | None = None) -> Event:
    data = catalog_data(course_key=run, pacing=pacing, end=end)
    return build_event(EventMeta(id=f"catalog-{run}", type=EventType.CATALOG_INFO_CHANGED), data)


# ---------------------------------------------------------------------------- the model


def test_a_program_is_awarded_when_the_last_course_is_passed_and_revoked_with_a_run() -> None:
    """Created A (incomplete), created B (complete: awarded), revoked A (revoked)."""
    model = CredentialsModel(world())
    first = model.apply(cert(CREATED, RUN_A))
    second = model.apply(cert(CREATED, RUN_B))
    assert first.writes == (("course-run", "ann", RUN_A),)
    assert second.writes == (("course-run", "ann", RUN_B), ("program", "ann", PROGRAM))
    assert second.certain == ("course-run", "ann", RUN_B)
    third = model.apply(cert(REVOKED, RUN_A, "unavailable"))
    assert third.writes == (("course-run", "ann", RUN_A), ("program", "ann", PROGRAM))
    assert model.programs == {("ann", PROGRAM): "revoked"}
    assert model.course_runs == {("ann", RUN_A): "revoked", ("ann", RUN_B): "awarded"}


def test_an_unconfigured_or_excluded_program_is_never_awarded() -> None:
    """A program Credentials has not configured is a skip; an excluded one is not a candidate."""
    model = CredentialsModel(world(excluded=frozenset({PROGRAM})))
    model.apply(cert(CREATED, RUN_A))
    model.apply(cert(CREATED, RUN_B))
    outcome = model.apply(cert(CREATED, RUN_C))
    assert outcome.outcome == "written"
    assert model.programs == {}


def test_a_failing_learners_event_is_a_dead_letter_and_changes_nothing() -> None:
    """Every Credentials request about the learner fails: dead letter, no state."""
    model = CredentialsModel(world())
    outcome = model.apply(cert(CREATED, RUN_A, user="bob"))
    assert outcome.outcome == "dead_letter"
    assert (model.course_runs, model.programs) == ({}, {})


def test_an_audit_certificate_changed_is_a_skip() -> None:
    """The rules skip an audit-mode change: nothing to write, nothing expected."""
    data = certificate_data(user_id=7, username="ann", course_key=RUN_A, mode="audit")
    event = build_event(EventMeta(id="audit", type=CHANGED), data)
    assert CredentialsModel(world()).apply(event).outcome == "skipped"


def test_the_available_date_follows_pacing_end_and_studio() -> None:
    """End → the event's end; end_with_date → Studio's date; self-paced or early → none."""
    model = CredentialsModel(world())
    model.apply(catalog(RUN_A, end="2026-06-30T00:00:00+00:00"))
    model.apply(catalog(RUN_B, end="2026-06-30T00:00:00+00:00"))
    model.apply(catalog(RUN_C, end="2026-06-30T00:00:00+00:00"))
    assert model.configs == {
        RUN_A: Config("verified", "2026-06-30T00:00:00Z"),
        RUN_B: Config("verified", "2026-09-01T00:00:00Z"),
        RUN_C: Config("verified", None),
    }
    model.apply(catalog(RUN_A, pacing="self", end="2026-06-30T00:00:00+00:00"))
    assert model.configs[RUN_A] == Config("verified", None)


def test_a_configuration_of_another_type_is_a_dead_letter() -> None:
    """A run configured by an honor certificate refuses a verified date sync (500)."""
    model = CredentialsModel(world())
    data = certificate_data(user_id=7, username="ann", course_key=RUN_A, mode="honor")
    model.apply(build_event(EventMeta(id="honor", type=CHANGED), data))
    assert model.apply(catalog(RUN_A)).outcome == "dead_letter"


def test_stories_reapplied_from_any_uncommitted_point_end_in_the_same_state() -> None:
    """A story applied up to j, committed at i <= j, then re-applied from i ends as applied once.

    That is the workload's rule for program runs (``workload``'s docstring): it makes every
    redelivery end in the state of the log applied once, so the audit can compare with that.
    """
    rng = random.Random(3)
    catalogue = make_catalogue("t", 16, rng)
    partition_of = {key: index % 3 for index, key in enumerate(catalogue.runs)}
    add_programs(catalogue, partition_of, rng)
    planner = Planner(catalogue, partition_of, rng)
    plan: dict[str, Any] = {
        "catalogue": {
            "runs": [
                {
                    "key": run.key,
                    "mode": run.mode,
                    "display_behavior": run.display_behavior,
                    "certificate_available_date": run.certificate_available_date,
                }
                for run in catalogue.runs.values()
            ],
            "programs": [
                {"uuid": p.uuid, "courses": p.courses, "in_credentials": p.in_credentials}
                for p in catalogue.programs.values()
            ],
            "excluded": sorted(catalogue.excluded),
        },
        "learners": [],
    }
    checked = 0
    for number in range(150):
        learner, story = planner.learner_story(number)
        plan["learners"] = [{"username": learner.username, "runs": learner.runs, "failing": False}]
        events = [
            build_event(EventMeta(id=str(index), type=item.event_type), item.data)
            for index, item in enumerate(story)
        ]
        once = CredentialsModel(world_of(plan))
        for event in events:
            once.apply(event)
        expected = _awarded(once)
        for done in range(len(events) + 1):
            for committed in range(done + 1):
                again = CredentialsModel(world_of(plan))
                for event in events[:done] + events[committed:]:
                    again.apply(event)
                assert _awarded(again) == expected, (learner.username, done, committed)
                checked += 1
    assert checked > 1000


def _awarded(model: CredentialsModel) -> tuple[dict[tuple[str, str], str], set[tuple[str, str]]]:
    programs = {key for key, status in model.programs.items() if status == "awarded"}
    return dict(model.course_runs), programs


def test_final_states_compare_programs_by_holding_and_runs_by_status() -> None:
    """A revoked program equals one never awarded; a course run's status must match exactly."""
    model = CredentialsModel(world())
    model.course_runs[("ann", RUN_A)] = "awarded"
    model.programs[("ann", PROGRAM)] = "revoked"
    state: dict[str, Any] = {
        "credentials": [
            {"username": "ann", "type": "course-run", "key": RUN_A, "status": "awarded"}
        ],
        "configs": {},
    }
    assert compare_states(model, state) == []
    state["credentials"][0]["status"] = "revoked"
    state["credentials"].append(
        {"username": "ann", "type": "program", "key": PROGRAM, "status": "awarded"}
    )
    wrong = compare_states(model, state)
    assert len(wrong) == 2
    assert "expected awarded" in wrong[0]


# ---------------------------------------------------------------------------- ordering


def request(
    offset: int,
    started: float,
    ended: float,
    *,
    key: str = "user:1",
    event: str | None = None,
    reached: bool = True,
) -> KeyedRequest:
    return KeyedRequest(
        key=key,
        partition="t:0",
        offset=offset,
        event_id=event or f"e{offset}",
        started=started,
        ended=ended,
        reached_service=reached,
    )


def history(*points: tuple[float, int]) -> CommittedHistory:
    return CommittedHistory([{"monotonic": when, "committed": {"t:0": at}} for when, at in points])


def test_a_redelivery_back_to_an_uncommitted_offset_is_allowed() -> None:
    """5, 6, 7 applied; committed 6; after a crash 6, 7 again: one redelivery, no violation."""
    requests = [
        request(5, 1, 2),
        request(6, 2, 3),
        request(7, 3, 4),
        request(6, 10, 11),
        request(7, 11, 12),
    ]
    result = check_ordering(requests, history((5, 6)))
    assert (result.redeliveries, result.violations) == (1, 0)


def test_a_step_back_below_the_committed_offset_is_a_violation() -> None:
    """Offset 5 applied again after the group committed 7: out of order for certain."""
    requests = [request(5, 1, 2), request(7, 3, 4), request(5, 10, 11)]
    result = check_ordering(requests, history((5, 8)))
    assert len(result.backward_steps) == 1
    assert "committed 8 already" in result.backward_steps[0]


def test_a_commit_sampled_after_the_step_does_not_count() -> None:
    """The sample must precede the step: a commit seen later is no evidence."""
    requests = [request(5, 1, 2), request(7, 3, 4), request(5, 10, 11)]
    assert check_ordering(requests, history((10.5, 8))).violations == 0


def test_two_requests_of_one_key_in_flight_at_once_are_a_violation() -> None:
    """Event 6 starts while event 5's request is being served: an overlap."""
    result = check_ordering([request(5, 1, 3), request(6, 2, 4)], history())
    assert len(result.overlaps) == 1


def test_an_injected_timeouts_tail_and_other_keys_do_not_overlap() -> None:
    """A request that never reached the service, or one of another key, is no overlap."""
    requests = [
        request(5, 1, 3, reached=False),
        request(6, 2, 4),
        request(9, 2, 5, key="user:2"),
    ]
    assert check_ordering(requests, history()).violations == 0


def test_one_event_delivered_twice_at_once_is_a_violation() -> None:
    """Two deliveries of the same event in flight together (two owners) overlap too."""
    result = check_ordering([request(5, 1, 3), request(5, 2, 4)], history())
    assert len(result.overlaps) == 1


def test_a_replay_is_a_stream_of_its_own_that_never_steps_back() -> None:
    """Re-applying committed offsets in order is the replay's job; stepping back in it is not."""
    live = [request(5, 1, 2), request(6, 2, 3)]
    committed = history((4, 7))
    in_order = [request(5, 10, 11), request(6, 11, 12)]
    assert check_ordering(live, committed, replayed=in_order).violations == 0
    backwards = [request(6, 10, 11), request(5, 11, 12)]
    assert len(check_ordering(live, committed, replayed=backwards).backward_steps) == 1


def test_a_replay_request_overlapping_the_live_groups_is_a_violation() -> None:
    """The live group and the replay serving one key at once would race: an overlap."""
    result = check_ordering([request(6, 1, 3)], history(), replayed=[request(5, 2, 4)])
    assert len(result.overlaps) == 1


# ---------------------------------------------------------------------------- dead letters


def dead_letter(
    offset: int, stage: str = "decode", reason: str = "bad_magic_byte"
) -> dict[str, Any]:
    return {
        "context": {
            "topic": "t",
            "partition": "0",
            "offset": str(offset),
            "stage": stage,
            "reason": reason,
            "message": "m",
        }
    }


def test_dead_letters_match_record_by_record_and_twice_is_counted_not_wrong() -> None:
    """Each expected record once or twice, with its stage and reason: no difference."""
    expected = {
        ("t", 0, 1): ExpectedDeadLetter("decode", "bad_magic_byte"),
        ("t", 0, 2): ExpectedDeadLetter("apply", "http_500"),
    }
    found = [
        dead_letter(1),
        dead_letter(2, "apply", "http_500"),
        dead_letter(2, "apply", "http_500"),
    ]
    result = check_dead_letters(expected, found)
    assert (result.differences, result.found, result.records) == (0, 2, 3)


def test_missing_unexpected_and_misexplained_dead_letters_are_differences() -> None:
    """A missing one, an extra one and one with another reason: three differences."""
    expected = {
        ("t", 0, 1): ExpectedDeadLetter("decode", "bad_magic_byte"),
        ("t", 0, 2): ExpectedDeadLetter("apply", "http_500"),
    }
    result = check_dead_letters(expected, [dead_letter(1, reason="bad_framing"), dead_letter(3)])
    assert (len(result.missing), len(result.unexpected), len(result.wrong_reason)) == (1, 1, 1)


# ---------------------------------------------------------------------------- leaks


def test_a_planted_secret_is_found_and_short_needles_are_ignored(tmp_path: Path) -> None:
    """The grep finds a secret anywhere in a file; needles under 8 characters never match."""
    (tmp_path / "a.log").write_text('{"event": "x", "detail": "token s3cr3t-Value-123 here"}')
    (tmp_path / "b.log").write_text("nothing to see")
    paths = sorted(tmp_path.iterdir())
    assert find_leaks(paths, {"secret": ["s3cr3t-Value-123"], "short": ["x"]}) == {
        "secret": ["a.log"]
    }


@pytest.mark.parametrize("offset", [0, 3])
def test_committed_history_is_a_lower_bound_in_time(offset: int) -> None:
    """Before the first sample nothing is known to be committed (0); after it, its value."""
    committed = history((5, 3))
    assert committed.at("t:0", 4) == 0
    assert committed.at("t:0", 6) == 3
    assert committed.at("t:1", 6) == 0 * offset
