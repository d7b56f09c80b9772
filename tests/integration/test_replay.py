"""``replay`` on the real broker and registry, run as a process against the fake Open edX.

Each test reads what the fake received (which events were applied, when), the replay's own
log lines, the dead-letter topic and the groups' committed offsets.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from consumer.deadletter.records import context_of
from tests.fakes.openedx import FakeOpenEdx
from tests.integration.conftest import Stack
from tests.integration.test_engine import (
    Sent,
    applied_event_ids,
    make_learners,
    publish_rounds,
    start_worker,
)
from tests.support.kafka import produce_raw, read_records
from tests.support.lms import LmsProducer
from tests.support.worker import WorkerProcess, committed_offsets, wait_for, worker_env

pytestmark = pytest.mark.integration

PARTITIONS = 3


def replay_process(
    stack: Stack,
    fake: FakeOpenEdx | None,
    tmp_path: Path,
    name: str,
    topic: str,
    live_group: str,
    *args: str,
    **env: str,
) -> WorkerProcess:
    environment = worker_env(
        stack.bootstrap_servers, stack.registry_url, fake, topics=[topic], group=live_group, **env
    )
    return WorkerProcess(environment, ["replay", *args], tmp_path, name)


def finished(process: WorkerProcess) -> dict[str, Any]:
    lines = process.events("replay_finished")
    assert lines, process.tail()
    return lines[-1]


def ids(sent: list[Sent]) -> set[str]:
    return {item.event_id for item in sent}


def event_ids_by_position(stack: Stack, topic: str, count: int) -> dict[tuple[int, int], str]:
    return {
        (record.partition, record.offset): record.header("ce_id")[0].decode()
        for record in read_records(stack.bootstrap_servers, topic, count)
    }


# ----------------------------------------------------------------------------- ranges


def test_replay_from_a_datetime_applies_exactly_the_planned_range(
    stack: Stack, lms: LmsProducer, fake: FakeOpenEdx, topic: str, group: str, tmp_path: Path
) -> None:
    """Only records from the time on, and none produced after the replay began, are applied.

    The live group's committed offsets are untouched; a poison record in the range goes to
    the dead-letter topic with the replay's group in its headers; progress lines are logged.
    """
    learners = make_learners(fake, 12)
    before = publish_rounds(lms, topic, learners, rounds=2)
    live = start_worker(stack, fake, tmp_path, "live", topic, group, "--stop-when-idle", "2")
    assert live.wait(timeout=120) == 0, live.tail()
    live_committed = committed_offsets(stack.bootstrap_servers, group, topic, PARTITIONS)
    assert ids(before) <= applied_event_ids(fake)
    fake.clear_records()
    time.sleep(0.05)
    since = datetime.now(UTC)
    time.sleep(0.05)
    in_range = publish_rounds(lms, topic, learners, rounds=3)
    produce_raw(stack.bootstrap_servers, topic, b"not an event", partition=1)
    fake.set_latency("credentials", 0.3, endpoint="credentials_post")  # still running below

    replayer = replay_process(
        stack,
        fake,
        tmp_path,
        "replay",
        topic,
        group,
        "--from-datetime",
        since.isoformat(),
        "--progress-interval",
        "0.3",
    )
    wait_for(lambda: bool(replayer.events("replay_starting")), timeout=60, what="the replay")
    after = publish_rounds(lms, topic, learners, rounds=1)  # produced after the plan was fixed
    assert replayer.process.poll() is None  # ...while the replay was still running

    assert replayer.wait(timeout=120) == 0, replayer.tail()
    assert applied_event_ids(fake) == ids(in_range)
    assert not applied_event_ids(fake) & (ids(before) | ids(after))
    assert committed_offsets(stack.bootstrap_servers, group, topic, PARTITIONS) == live_committed
    summary = finished(replayer)
    replay_group = summary["group"]
    assert replay_group.startswith(f"{group}.replay.")
    assert summary["completed"] is True
    assert summary["events"]["applied"] == len(in_range)
    assert summary["dead_letters"] == 1
    assert summary["planned"] == summary["done"] == len(in_range) + 1
    assert summary["commands"] == {"sync_course_certificate": {"applied": len(in_range)}}
    dead = read_records(stack.bootstrap_servers, f"{topic}.dlq", 1)
    assert context_of(dead[0].headers)["group"] == replay_group
    progress = replayer.events("replay_progress")
    assert progress[-1]["done"] == progress[-1]["total"] == len(in_range) + 1
    assert progress[-1]["topics"][topic]["total"] == len(in_range) + 1
    assert "rate" in progress[-1]
    assert "eta_seconds" in progress[-1]
    plan = replayer.out_path.read_text()
    assert "replay plan" in plan
    assert "replay complete" in plan


def test_replay_from_offsets_applies_only_those_partitions_from_those_offsets(
    stack: Stack, lms: LmsProducer, fake: FakeOpenEdx, topic: str, group: str, tmp_path: Path
) -> None:
    """``--from-offset`` replays the listed partitions from the listed offsets, nothing else."""
    learners = make_learners(fake, 12)
    sent = publish_rounds(lms, topic, learners, rounds=2)
    positions = event_ids_by_position(stack, topic, len(sent))
    expected = {
        event_id
        for (partition, offset), event_id in positions.items()
        if (partition == 0 and offset >= 3) or (partition == 2 and offset >= 1)
    }

    replayer = replay_process(
        stack, fake, tmp_path, "replay", topic, group, "--from-offset", f"{topic}:0:3,{topic}:2:1"
    )

    assert replayer.wait(timeout=120) == 0, replayer.tail()
    assert applied_event_ids(fake) == expected
    assert finished(replayer)["events"]["applied"] == len(expected)


def test_plan_only_prints_the_plan_and_consumes_nothing(
    stack: Stack, lms: LmsProducer, fake: FakeOpenEdx, topic: str, group: str, tmp_path: Path
) -> None:
    """``--plan --json`` needs Kafka settings only, prints the ranges, and commits nothing."""
    sent = publish_rounds(lms, topic, make_learners(fake, 6), rounds=1)
    replay_group = f"{group}.replay.plan"
    planner = replay_process(
        stack, None, tmp_path, "plan", topic, group, "--from-beginning", "--plan", "--json",
        "--group-id", replay_group, CONSUMER_DRY_RUN="false",  # no service variable is set
    )  # fmt: skip

    assert planner.wait(timeout=60) == 0, planner.tail()
    plan = json.loads(planner.out_path.read_text())
    assert plan["group"] == replay_group
    assert plan["total"] == len(sent)
    assert sum(item["count"] for item in plan["partitions"]) == len(sent)
    assert {item["partition"] for item in plan["partitions"]} == set(range(PARTITIONS))
    assert all(
        offset < 0
        for offset in committed_offsets(
            stack.bootstrap_servers, replay_group, topic, PARTITIONS
        ).values()
    )


# ----------------------------------------------------------------------------- dry run


def test_dry_run_output_equals_what_a_live_replay_sends(
    stack: Stack, lms: LmsProducer, fake: FakeOpenEdx, topic: str, group: str, tmp_path: Path
) -> None:
    """The dry run's commands are exactly the writes the live replay of the range makes."""
    learners = make_learners(fake, 10)
    publish_rounds(lms, topic, learners, rounds=3)
    output = tmp_path / "commands.jsonl"

    dry = replay_process(
        stack, fake, tmp_path, "dry", topic, group, "--from-beginning", "--dry-run",
        "--output", str(output),
    )  # fmt: skip
    assert dry.wait(timeout=120) == 0, dry.tail()
    assert fake.writes() == []
    live = replay_process(stack, fake, tmp_path, "live", topic, group, "--from-beginning")
    assert live.wait(timeout=120) == 0, live.tail()
    planned = {
        (line["event_id"], line["lms_user_id"], line["course_run"], line["status"])
        for line in map(json.loads, output.read_text().splitlines())
    }
    sent = {
        (
            write.request_id,
            write.lms_user_id,
            write.course_run,
            write.payload["status"],
        )
        for write in fake.writes(endpoint="credentials_post", successful=True)
    }
    assert planned == sent
    assert len(planned) == 30
    assert finished(dry)["commands"] == {"sync_course_certificate": {"dry_run": 30}}


# ----------------------------------------------------------------------------- resume


def test_a_replay_killed_halfway_resumes_with_the_same_group_and_range(
    stack: Stack, lms: LmsProducer, fake: FakeOpenEdx, topic: str, group: str, tmp_path: Path
) -> None:
    """SIGKILL halfway, rerun with ``--group-id``: every event of the range, nothing after it."""
    learners = make_learners(fake, 24)
    in_range = publish_rounds(lms, topic, learners, rounds=8)
    fake.set_latency("credentials", 0.1, endpoint="credentials_post")
    replay_group = f"{group}.replay.resumable"

    first = replay_process(
        stack, fake, tmp_path, "first", topic, group, "--from-beginning",
        "--group-id", replay_group,
    )  # fmt: skip
    wait_for(
        lambda: len(applied_event_ids(fake)) >= len(in_range) // 3,
        timeout=90,
        what="a third applied",
    )
    first.kill()
    applied_first = applied_event_ids(fake)
    assert len(applied_first) < len(in_range)  # it really died halfway
    later = publish_rounds(lms, topic, learners, rounds=2)  # after the range was fixed
    fake.set_latency("credentials", 0.0, endpoint="credentials_post")

    second = replay_process(
        stack, fake, tmp_path, "second", topic, group, "--group-id", replay_group
    )

    assert second.wait(timeout=120) == 0, second.tail()
    assert applied_event_ids(fake) == ids(in_range)
    assert "(resumed)" in second.out_path.read_text()
    summary = finished(second)
    assert summary["completed"] is True
    assert summary["planned"] == summary["done"] == len(in_range)
    assert ids(later).isdisjoint(applied_event_ids(fake))
    # The group kept the range: its committed offsets are the ends, with the range attached.
    committed = committed_offsets(stack.bootstrap_servers, replay_group, topic, PARTITIONS)
    assert sum(max(0, offset) for offset in committed.values()) == len(in_range)


def test_sigterm_stops_a_replay_with_exit_1_and_a_resumable_summary(
    stack: Stack, lms: LmsProducer, fake: FakeOpenEdx, topic: str, group: str, tmp_path: Path
) -> None:
    """A replay stopped before the end says it could not finish (exit 1) and how to resume."""
    learners = make_learners(fake, 12)
    publish_rounds(lms, topic, learners, rounds=8)
    fake.set_latency("credentials", 0.2, endpoint="credentials_post")
    replayer = replay_process(stack, fake, tmp_path, "replay", topic, group, "--from-beginning")
    wait_for(lambda: len(applied_event_ids(fake)) >= 12, timeout=60, what="work under way")
    replayer.terminate()

    assert replayer.wait(timeout=60) == 1, replayer.tail()
    summary = finished(replayer)
    assert summary["completed"] is False
    assert summary["done"] < summary["planned"]
    assert f"replay --group-id {summary['group']}" in replayer.out_path.read_text()


# ----------------------------------------------------------------------------- rate


def test_max_rate_holds_the_start_rate_within_ten_percent(
    stack: Stack, lms: LmsProducer, fake: FakeOpenEdx, topic: str, group: str, tmp_path: Path
) -> None:
    """With ``--max-rate 20``, events start at 20 per second (measured at the fake), +-10%."""
    learners = make_learners(fake, 40)
    sent = publish_rounds(lms, topic, learners, rounds=2)

    replayer = replay_process(
        stack, fake, tmp_path, "replay", topic, group, "--from-beginning", "--max-rate", "20"
    )

    assert replayer.wait(timeout=120) == 0, replayer.tail()
    first_write: dict[str, float] = {}
    for write in fake.writes(endpoint="credentials_post"):
        if write.request_id and write.request_id not in first_write:
            first_write[write.request_id] = write.started
    assert set(first_write) == ids(sent)
    starts = sorted(first_write.values())
    rate = (len(starts) - 1) / (starts[-1] - starts[0])
    assert 18.0 <= rate <= 22.0, rate


def test_a_rate_capped_replay_stops_at_once_on_sigterm_and_resumes_without_gaps(
    stack: Stack, lms: LmsProducer, fake: FakeOpenEdx, topic: str, group: str, tmp_path: Path
) -> None:
    """Events waiting for a rate token are abandoned on SIGTERM (not run, not committed)."""
    learners = make_learners(fake, 30)
    sent = publish_rounds(lms, topic, learners, rounds=2)
    replay_group = f"{group}.replay.capped"
    first = replay_process(
        stack, fake, tmp_path, "first", topic, group, "--from-beginning", "--max-rate", "10",
        "--group-id", replay_group,
    )  # fmt: skip
    wait_for(lambda: len(applied_event_ids(fake)) >= 8, timeout=60, what="a few applied")
    first.terminate()
    assert first.wait(timeout=20) == 1, first.tail()
    assert len(applied_event_ids(fake)) < len(sent)
    assert first.events("event_abandoned")  # the throttled heads, handed back

    second = replay_process(
        stack, fake, tmp_path, "second", topic, group, "--group-id", replay_group
    )

    assert second.wait(timeout=120) == 0, second.tail()
    assert applied_event_ids(fake) == ids(sent)
