"""Nothing of a released partition starts after its release: the worker as a process.

A worker with two threads and a slow Credentials holds dozens of events queued behind its
threads. A second member joins (in dry-run, so every request the fake sees is the first
worker's) and takes partitions over. The first worker's revoke drain is cut short on
purpose; still, no request for an event of a partition it released may start after it
logged the release — the new owner would otherwise race it for the same learner.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from pathlib import Path

import pytest

from tests.fakes.openedx import FakeOpenEdx
from tests.integration.conftest import Stack
from tests.integration.test_engine import make_learners, publish_rounds, start_worker
from tests.support.kafka import read_records
from tests.support.lms import LmsProducer
from tests.support.worker import wait_for

pytestmark = pytest.mark.integration


def _when(line: dict[str, object]) -> float:
    """A log line's wall-clock time (epoch seconds)."""
    return datetime.fromisoformat(str(line["timestamp"])).timestamp()


def test_no_request_of_a_released_partition_starts_after_the_release(
    stack: Stack, lms: LmsProducer, fake: FakeOpenEdx, topic: str, tmp_path: Path
) -> None:
    """Queued work of a revoked partition is abandoned unsent; the release bounds every start."""
    group = f"it-revoke-{uuid.uuid4().hex[:8]}"
    learners = make_learners(fake, 45, runs=45)  # a run per learner: every partition gets events
    sent = publish_rounds(lms, topic, learners, rounds=1)
    fake.set_latency("credentials", 0.8, endpoint="credentials_post")
    # The fake's clock is this process's monotonic clock; the worker logs wall-clock time.
    wall_minus_monotonic = time.time() - time.monotonic()

    owner = start_worker(
        stack,
        fake,
        tmp_path,
        "owner",
        topic,
        group,
        "--stop-when-idle",
        "4",
        CONSUMER_MAX_IN_FLIGHT="2",
        CONSUMER_REVOKE_TIMEOUT_SECONDS="0.5",
    )
    wait_for(
        lambda: len(fake.writes(endpoint="credentials_post")) >= 2, timeout=60, what="work started"
    )
    # In dry-run the newcomer sends nothing: every request the fake sees is the owner's.
    newcomer = start_worker(stack, None, tmp_path, "newcomer", topic, group)
    wait_for(
        lambda: any(line["partitions"] for line in owner.events("partitions_released")),
        timeout=60,
        what="the owner to release a partition",
    )
    assert owner.wait(timeout=90) == 0, owner.tail()  # idle on what it kept, it leaves
    newcomer.terminate()
    assert newcomer.wait(timeout=60) == 0, newcomer.tail()

    partition_of = {
        record.header("ce_id")[0].decode(): f"{record.topic}:{record.partition}"
        for record in read_records(stack.bootstrap_servers, topic, len(sent))
    }
    # When the owner held each partition: from an assignment to the release that follows.
    held: dict[str, list[tuple[float, float]]] = {}
    opened: dict[str, float] = {}
    for line in owner.logs():
        if line.get("event") == "partitions_assigned":
            for partition in line["partitions"]:
                opened[partition] = _when(line)
        elif line.get("event") == "partitions_released":
            for partition in line["partitions"]:
                held.setdefault(partition, []).append((opened.pop(partition), _when(line)))
    for partition, since in opened.items():
        held.setdefault(partition, []).append((since, float("inf")))
    stopping = [_when(line) for line in owner.events("engine_stopping")]
    stopped_at = stopping[0] if stopping else float("inf")
    released_early = {
        partition for partition, spans in held.items() if any(end < stopped_at for _, end in spans)
    }
    assert released_early  # the newcomer really took partitions over mid-stream

    late = []
    requested = set()
    for request in fake.requests(service="credentials"):
        if request.request_id not in partition_of:
            continue
        requested.add(request.request_id)
        started = request.started + wall_minus_monotonic
        spans = held.get(partition_of[request.request_id], [])
        if not any(begin <= started <= end for begin, end in spans):
            late.append((request.request_id, partition_of[request.request_id], started))
    assert late == []
    # Work of those partitions was still queued at the release, and was never sent.
    assert {p for e, p in partition_of.items() if e not in requested} & released_early
