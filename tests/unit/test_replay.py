"""A replay's pure parts: its range kept in commit metadata, the plan, progress, the summary."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest
from structlog.testing import capture_logs

from consumer.observability import Metrics
from consumer.progress import Progress, Reporter, render_bar
from consumer.replay import (
    PartitionRange,
    Plan,
    ReplayBounds,
    Summary,
    commands_by_kind,
    default_group,
    range_from_metadata,
)
from tests.support.clock import FakeClock

TOPIC = "learning-certificate-lifecycle"


def make_plan(positions: dict[tuple[str, int], int] | None = None) -> Plan:
    ranges = (
        PartitionRange(TOPIC, 0, 10, 50),
        PartitionRange(TOPIC, 1, 0, 0),
        PartitionRange("course-catalog-info-changed", 0, 5, 25),
    )
    return Plan(
        group="credentials-consumer.replay.20260301T100000Z",
        ranges=ranges,
        positions=positions or {item.tp: item.start for item in ranges},
        resumed=positions is not None,
        start_text="2026-03-01T10:00:00.000Z",
        end_text="the end of each partition at 2026-03-02T00:00:00Z",
    )


def test_the_default_group_is_the_live_group_plus_replay_and_utc_time() -> None:
    """``<group>.replay.<UTC timestamp>``, whatever the local zone of ``now``."""
    now = datetime(2026, 3, 1, 11, 30, 5, tzinfo=UTC)
    assert (
        default_group("credentials-consumer", now) == "credentials-consumer.replay.20260301T113005Z"
    )


def test_a_range_survives_the_commit_metadata_round_trip() -> None:
    """What a replay commits with an offset reads back as the same range, and stays small."""
    item = PartitionRange(TOPIC, 2, 123, 456_789)
    text = item.metadata()
    assert range_from_metadata((TOPIC, 2), text) == item
    assert len(text.encode()) < 100


@pytest.mark.parametrize(
    "metadata",
    [
        "",
        "not json",
        "[1, 2]",
        '{"start": 1, "end": 2}',
        '{"credentials_consumer_replay": 2, "start": 1, "end": 2}',
        '{"credentials_consumer_replay": 1, "start": "x", "end": 2}',
    ],
)
def test_metadata_that_is_not_a_replays_is_not_a_range(metadata: str) -> None:
    """Another tool's metadata (or none) never passes for a replay's range."""
    assert range_from_metadata((TOPIC, 0), metadata) is None


def test_a_new_plan_counts_every_record_of_the_range() -> None:
    """Total and remaining of a new plan are the sum of end - start."""
    plan = make_plan()
    assert plan.total == 40 + 0 + 20
    assert plan.remaining == plan.total


def test_a_resumed_plan_starts_where_the_last_run_stopped() -> None:
    """Remaining counts from the committed positions; positions outside a range are clamped."""
    plan = make_plan({(TOPIC, 0): 30, (TOPIC, 1): 0, ("course-catalog-info-changed", 0): 99})
    assert plan.remaining == 20
    assert [plan.position(item) for item in plan.ranges] == [30, 0, 25]


def test_the_plan_prints_start_end_and_count_per_partition() -> None:
    """The text plan has one line per partition with start, end and count; JSON has the same."""
    plan = make_plan()
    text = plan.render()
    assert "credentials-consumer.replay.20260301T100000Z" in text
    row = next(line for line in text.splitlines() if line.strip().startswith(TOPIC))
    assert row.split()[1:5] == ["0", "10", "50", "40"]
    machine = json.loads(json.dumps(plan.to_json()))
    assert machine["partitions"][0] == {
        "topic": TOPIC,
        "partition": 0,
        "start": 10,
        "end": 50,
        "count": 40,
        "position": 10,
    }
    assert machine["total"] == 60


def test_bounds_assign_only_what_is_left_and_keep_the_range() -> None:
    """The engine is given the unfinished partitions at their positions; ends and metadata."""
    plan = make_plan({(TOPIC, 0): 30, (TOPIC, 1): 0, ("course-catalog-info-changed", 0): 25})
    bounds = ReplayBounds(plan, Progress([], {}, Metrics()))
    assert [(tp.topic, tp.partition, tp.offset) for tp in bounds.assignment()] == [(TOPIC, 0, 30)]
    assert bounds.end((TOPIC, 0)) == 50
    assert bounds.end(("another-topic", 0)) == 0  # outside the plan: nothing is taken
    metadata = bounds.commit_metadata((TOPIC, 0))
    assert metadata is not None
    assert range_from_metadata((TOPIC, 0), metadata) == plan.ranges[0]


def test_progress_counts_the_committed_watermark_with_rate_and_eta() -> None:
    """Done is the watermark minus the start, per topic; rate and ETA are this run's."""
    clock = FakeClock()
    metrics = Metrics()
    progress = Progress(
        [((TOPIC, 0), 10, 50), ((TOPIC, 1), 0, 20)],
        {(TOPIC, 0): 20, (TOPIC, 1): 0},  # an earlier run did 10
        metrics,
        clock=clock,
        wall=lambda: 1_700_000_000.0,
    )
    clock.advance(10)
    progress.committed((TOPIC, 0), 40)
    progress.committed((TOPIC, 1), 10)
    progress.committed((TOPIC, 1), 5)  # a stale commit never moves progress back
    overall = progress.overall()
    assert (overall.done, overall.total) == (40, 60)
    assert overall.rate == pytest.approx(3.0)  # 30 records by this run in 10 s
    assert overall.eta_seconds == pytest.approx(20 / 3.0)
    assert (
        metrics.registry.get_sample_value(
            "credentials_consumer_replay_done_records", {"topic": TOPIC}
        )
        == 40
    )
    assert (
        metrics.registry.get_sample_value(
            "credentials_consumer_replay_planned_records", {"topic": TOPIC}
        )
        == 60
    )
    assert (
        metrics.registry.get_sample_value(
            "credentials_consumer_replay_last_progress_timestamp_seconds"
        )
        == 1_700_000_000.0
    )
    progress.complete()
    assert progress.overall().done == 60
    assert "100%" in render_bar(progress.overall())


def test_the_summary_names_outcomes_commands_dead_letters_and_how_to_resume() -> None:
    """An unfinished replay's summary says so and how to resume; JSON carries the same."""
    metrics = Metrics()
    metrics.commands.labels("sync_course_certificate", "applied").inc(7)
    metrics.commands.labels("award_programs", "skipped").inc(2)
    summary = Summary(
        group="g.replay.x",
        completed=False,
        dry_run=False,
        elapsed_seconds=4.0,
        planned=20,
        done=9,
        events={"applied": 7, "skipped": 1, "dead_lettered": 1, "held": 0},
        commands=commands_by_kind(metrics),
        dead_letters=1,
    )
    text = summary.render()
    assert "NOT complete" in text
    assert "replay --group-id g.replay.x" in text
    assert "sync_course_certificate applied 7" in text
    machine = summary.to_json()
    assert machine["commands"] == {
        "sync_course_certificate": {"applied": 7},
        "award_programs": {"skipped": 2},
    }
    assert machine["rate"] == 2.25


def test_on_a_terminal_the_reporter_draws_a_bar() -> None:
    """The reporter redraws one line (carriage return) and ends it when stopped."""
    progress = Progress([((TOPIC, 0), 0, 4)], {}, Metrics())
    terminal = io.StringIO()
    reporter = Reporter(progress, terminal=terminal, interval=10.0)
    reporter.start()
    progress.committed((TOPIC, 0), 4)
    reporter.stop()
    drawn = terminal.getvalue()
    assert drawn.startswith("\r[")
    assert "100%  4/4" in drawn
    assert drawn.endswith("\n")


def test_without_a_terminal_the_reporter_logs_json_progress() -> None:
    """Each report is a ``replay_progress`` event with done, total, rate and ETA per topic."""
    progress = Progress([((TOPIC, 0), 0, 4)], {}, Metrics())
    reporter = Reporter(progress, terminal=None, interval=10.0)
    with capture_logs() as logs:
        reporter.start()
        reporter.stop()
    assert logs[-1]["event"] == "replay_progress"
    assert logs[-1]["topics"][TOPIC].keys() == {"done", "total", "rate", "eta_seconds"}
    assert (logs[-1]["done"], logs[-1]["total"]) == (0, 4)
