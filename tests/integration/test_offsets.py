"""``offsets show`` and ``offsets reset`` on the real broker, with a real worker in the group."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.fakes.openedx import FakeOpenEdx
from tests.integration.conftest import Stack
from tests.integration.test_engine import (
    applied_event_ids,
    make_learners,
    publish_rounds,
    start_worker,
)
from tests.support.lms import LmsProducer
from tests.support.worker import WorkerProcess, committed_offsets, end_offsets, wait_for, worker_env

pytestmark = pytest.mark.integration

PARTITIONS = 3


def offsets_command(
    stack: Stack, tmp_path: Path, name: str, topic: str, group: str, *args: str
) -> WorkerProcess:
    """``offsets ...`` with Kafka settings only (no service variable is set)."""
    env = worker_env(
        stack.bootstrap_servers,
        stack.registry_url,
        None,
        topics=[topic],
        group=group,
        CONSUMER_DRY_RUN="false",
    )
    return WorkerProcess(env, ["offsets", *args], tmp_path, name)


def test_reset_plans_refuses_while_a_worker_runs_and_resets_once_it_is_gone(
    stack: Stack, lms: LmsProducer, fake: FakeOpenEdx, topic: str, tmp_path: Path
) -> None:
    """Without --execute nothing moves; with it, refused while a member is in, done after."""
    group = f"it-reset-{uuid.uuid4().hex[:8]}"
    # 30 course runs, so each of the 3 partitions gets records (an empty one has no committed
    # offset to compare): with 6 runs, one partition in four stayed empty.
    sent = publish_rounds(lms, topic, make_learners(fake, 30, runs=30), rounds=2)
    assert all(end_offsets(stack.bootstrap_servers, topic, PARTITIONS).values())
    worker = start_worker(stack, fake, tmp_path, "worker", topic, group)
    wait_for(
        lambda: (
            applied_event_ids(fake) >= {item.event_id for item in sent}
            and committed_offsets(stack.bootstrap_servers, group, topic, PARTITIONS)
            == end_offsets(stack.bootstrap_servers, topic, PARTITIONS)
        ),
        timeout=90,
        what="everything applied and committed",
    )
    ends = end_offsets(stack.bootstrap_servers, topic, PARTITIONS)

    shown = offsets_command(stack, tmp_path, "show", topic, group, "show", "--json")
    assert shown.wait(timeout=60) == 0, shown.tail()
    state = json.loads(shown.out_path.read_text())
    assert state["state"] == "stable"
    assert len(state["members"]) == 1
    assert sorted(state["members"][0]["partitions"]) == [f"{topic}:{p}" for p in range(3)]
    assert {row["partition"]: row["committed"] for row in state["partitions"]} == ends
    assert state["lag"] == 0

    plan = offsets_command(stack, tmp_path, "plan", topic, group, "reset", "--to-earliest")
    assert plan.wait(timeout=60) == 0, plan.tail()
    assert "nothing changed" in plan.out_path.read_text()
    assert committed_offsets(stack.bootstrap_servers, group, topic, PARTITIONS) == ends

    refused = offsets_command(
        stack, tmp_path, "refused", topic, group, "reset", "--to-earliest", "--execute"
    )
    assert refused.wait(timeout=60) == 1, refused.tail()
    failure = refused.events("command_failed")
    assert failure
    assert failure[0]["reason"] == "group_active"
    assert committed_offsets(stack.bootstrap_servers, group, topic, PARTITIONS) == ends

    worker.terminate()
    assert worker.wait(timeout=60) == 0, worker.tail()
    done = offsets_command(
        stack, tmp_path, "done", topic, group, "reset", "--to-offset", "0:1", "--execute", "--json"
    )
    assert done.wait(timeout=60) == 0, done.tail()
    assert json.loads(done.out_path.read_text())["executed"] is True
    assert committed_offsets(stack.bootstrap_servers, group, topic, PARTITIONS) == {
        **ends,
        0: 1,
    }
    earliest = offsets_command(
        stack, tmp_path, "earliest", topic, group, "reset", "--to-earliest", "--execute"
    )
    assert earliest.wait(timeout=60) == 0, earliest.tail()
    assert committed_offsets(stack.bootstrap_servers, group, topic, PARTITIONS) == {
        0: 0,
        1: 0,
        2: 0,
    }


def test_offsets_show_of_a_missing_group_is_one_clear_line(
    stack: Stack, topic: str, tmp_path: Path
) -> None:
    """A group that does not exist: exit 1, one JSON line naming it, no traceback."""
    group = f"it-nobody-{uuid.uuid4().hex[:8]}"
    shown = offsets_command(stack, tmp_path, "show", topic, group, "show")
    assert shown.wait(timeout=60) == 1, shown.tail()
    lines = [json.loads(line) for line in shown.log_path.read_text().splitlines() if line]
    failures = [line for line in lines if line["event"] == "command_failed"]
    assert len(failures) == 1
    assert failures[0]["reason"] == "missing_group"
    assert group in failures[0]["error"]
