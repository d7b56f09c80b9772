"""No single event can hold the worker; an outage never dead-letters: the worker as a process.

ADR 0004's rule, end to end on the real broker against the fake Open edX: failures that
belong to events run down those events' budgets even while the circuit is open (so they
reach the dead-letter topic and the rest moves on), and outage-class failures with no sign
that the service is up for others never do, whatever their ``Retry-After``.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from consumer.deadletter.records import context_of
from tests.fakes.openedx import FakeOpenEdx
from tests.integration.conftest import Stack
from tests.integration.test_engine import (
    PARTITIONS,
    applied_event_ids,
    assert_fully_committed,
    make_learners,
    publish_rounds,
    start_worker,
)
from tests.support.kafka import read_records
from tests.support.lms import LmsProducer
from tests.support.worker import end_offsets

pytestmark = pytest.mark.integration


@pytest.fixture
def fake() -> Iterator[FakeOpenEdx]:
    """A fake Open edX; each service on its own port so one can go down alone."""
    with FakeOpenEdx.start(per_service_ports=True) as fake:
        yield fake


@pytest.fixture
def group() -> str:
    return f"it-circuit-{uuid.uuid4().hex[:8]}"


def test_two_learners_whose_writes_always_fail_are_dead_lettered_and_the_rest_moves_on(
    stack: Stack, lms: LmsProducer, fake: FakeOpenEdx, topic: str, group: str, tmp_path: Path
) -> None:
    """Two events with their own permanent 500s open the circuit, yet cannot hold the worker.

    Every write about two of the learners answers 500 (as Credentials does for some
    learners, for good). Their failures come from two events, so the circuit opens; still,
    both are dead-lettered after exactly their attempt budget, the learner behind them is
    applied, and every offset is committed. (Before ADR 0004's rule, the two took turns as
    the half-open probe, their failures never counted, and the worker never went idle.)
    """
    learners = make_learners(fake, 3, runs=1)  # one run: one partition, in this order
    failing, behind = learners[:2], learners[2]
    for learner in failing:
        fake.set_error("credentials", 500, endpoint="credentials_post", username=learner.username)
    sent = publish_rounds(lms, topic, learners, rounds=1)

    worker = start_worker(
        stack,
        fake,
        tmp_path,
        "w1",
        topic,
        group,
        "--stop-when-idle",
        "2",
        CONSUMER_CIRCUIT_FAILURE_THRESHOLD="2",  # any two adjacent failures of the two open it
    )
    assert worker.wait(timeout=90) == 0, worker.tail()

    dead = read_records(stack.bootstrap_servers, f"{topic}.dlq", 2)
    by_id = {record.header("ce_id")[0].decode(): context_of(record.headers) for record in dead}
    assert set(by_id) == {item.event_id for item in sent if item.learner in failing}
    for context in by_id.values():
        assert context["reason"] == "http_500"
        assert context["attempts"] == "4"  # CONSUMER_RETRY_MAX_ATTEMPTS in tests: the budget
    assert applied_event_ids(fake) == {item.event_id for item in sent if item.learner == behind}
    assert "open" in [line["state"] for line in worker.events("circuit_changed")]
    assert_fully_committed(stack, group, topic)


def test_a_503_outage_asking_to_wait_past_the_budget_dead_letters_nothing(
    stack: Stack, lms: LmsProducer, fake: FakeOpenEdx, topic: str, group: str, tmp_path: Path
) -> None:
    """503 with a Retry-After beyond the whole retry budget, for a while: nothing is lost.

    No request succeeds meanwhile, so no failure counts against an event's budget: nothing
    is dead-lettered, and once Credentials is back every event is applied, in order.
    """
    learners = make_learners(fake, 12)
    sent = publish_rounds(lms, topic, learners, rounds=2)
    fake.set_outage("credentials", "503", retry_after=5)  # the budget is 3 s in tests
    back = threading.Timer(7.0, lambda: fake.clear_outage("credentials"))
    back.start()
    try:
        worker = start_worker(stack, fake, tmp_path, "w1", topic, group, "--stop-when-idle", "3")
        assert worker.wait(timeout=120) == 0, worker.tail()
    finally:
        back.cancel()

    assert not worker.events("event_dead_lettered")
    assert sum(end_offsets(stack.bootstrap_servers, f"{topic}.dlq", PARTITIONS).values()) == 0
    assert [r for r in fake.writes(endpoint="credentials_post") if r.status == 503]
    assert applied_event_ids(fake) == {item.event_id for item in sent}
    for learner in learners:
        written = [r.request_id for r in fake.writes(username=learner.username, successful=True)]
        assert written == [item.event_id for item in sent if item.learner == learner]
    assert_fully_committed(stack, group, topic)
