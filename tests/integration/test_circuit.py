"""No single event can hold the worker; an outage never dead-letters: the worker as a process.

ADR 0004's rule, end to end on the real broker against the fake Open edX: failures that
belong to events run down those events' budgets even while the circuit is open (so they
reach the dead-letter topic and the rest moves on), and outage-class failures with no sign
that the service is up for others never do, whatever their ``Retry-After``.
"""

from __future__ import annotations

import functools
import threading
import uuid
from pathlib import Path

import pytest

from consumer.deadletter.records import context_of
from consumer.events import EventType
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
from tests.support.lms import LmsProducer, certificate_data
from tests.support.prometheus import free_port
from tests.support.worker import end_offsets, scrape, wait_for

pytestmark = pytest.mark.integration


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


def test_a_service_user_without_view_usercredential_opens_the_circuit_and_names_the_grant(
    stack: Stack, lms: LmsProducer, fake: FakeOpenEdx, topic: str, group: str, tmp_path: Path
) -> None:
    """Reads refused while writes succeed: the circuit opens, says what to grant, loses nothing.

    The OAuth client's user is staff but lacks Credentials' ``view_usercredential`` (what a
    fresh Credentials gives the Admins group): each learner's course certificate is written,
    then the program award's read of that learner's credentials answers 403. Learners arrive
    one after another, as certificates are earned, so each next learner's write lands between
    the reads' 403s. Before the breaker also counted per endpoint (ADR 0004, issue 10) every
    such write reset its count: the circuit never opened, no line said what to grant, and the awards
    retried, uncounted, for ever. Now the circuit opens; its log line names the service, the
    403, the endpoint and the permission; ``circuit_opened_total`` counts it; consumption
    pauses and nothing is dead-lettered. Learners who come while it is open still get their
    course certificates (each write goes as a probe), yet no such success closes the circuit
    while the reads fail. Once the permission is granted every event is applied and every
    learner gets the program.
    """
    tag = uuid.uuid4().hex[:6]
    run = f"course-v1:Grant{tag}+C+2026_T1"
    program = str(uuid.uuid4())
    fake.add_course_run(run, modes=("audit", "verified"))
    fake.add_course_certificate_config(run, "verified")
    fake.add_program(program, {f"Grant{tag}+C": {run: "verified"}})
    fake.add_oauth_client("no-view", "no-view-secret", username="no-view-worker", permissions=())
    learners = [(30_000 + index, f"grant-{tag}-{index}") for index in range(8)]
    for user_id, username in learners:
        fake.add_user(username, user_id)
        fake.add_lms_certificate(username, run, mode="verified")
    port = free_port()
    worker = start_worker(
        stack,
        fake,
        tmp_path,
        "w1",
        topic,
        group,
        "--stop-when-idle",
        "3",
        BACKEND_SERVICE_EDX_OAUTH2_KEY="no-view",
        BACKEND_SERVICE_EDX_OAUTH2_SECRET="no-view-secret",
        CONSUMER_METRICS_PORT=str(port),
        # A refused read is retried after up to 10 s (full jitter), as in production the
        # next learner usually comes first; the time budget allows such waits.
        CONSUMER_RETRY_INITIAL_SECONDS="10",
        CONSUMER_RETRY_MAX_BACKOFF_SECONDS="10",
        CONSUMER_RETRY_MAX_SECONDS="60",
    )

    def opened() -> list[dict[str, object]]:
        return [line for line in worker.events("circuit_changed") if line["state"] == "open"]

    def read_refused_or_opened(event_id: str) -> bool:
        return bool(opened()) or any(
            record.status == 403 and record.request_id == event_id
            for record in fake.requests(endpoint="credentials_list")
        )

    def send(user_id: int, username: str) -> str:
        data = certificate_data(user_id=user_id, username=username, course_key=run)
        event_id = lms.send(EventType.CERTIFICATE_CREATED, data, topic)
        lms.flush()
        sent.append(event_id)
        return event_id

    def course_certificate_written(username: str) -> bool:
        return bool(fake.writes(endpoint="credentials_post", username=username, successful=True))

    sent: list[str] = []
    try:
        for user_id, username in learners:
            if opened():
                break
            wait_for(
                functools.partial(read_refused_or_opened, send(user_id, username)),
                timeout=60,
                what="the learner's read refused",
            )
        assert opened(), f"{len(sent)} learners' reads answered 403; the circuit never opened"
        line = opened()[0]
        assert (line["service"], line["status"], line["endpoint"], line["reason"]) == (
            "credentials",
            403,
            "credentials_list",
            "http_403",
        )
        assert "grant it Credentials' view_usercredential permission" in str(line["hint"])
        opened_total = "credentials_consumer_circuit_opened_total"
        assert (scrape(port, opened_total, service="credentials", cause="http_403") or 0) >= 1
        wait_for(
            lambda: (scrape(port, "credentials_consumer_paused_partitions") or 0) >= 1,
            timeout=30,
            what="consumption paused",
        )

        # More learners while it is open: their writes succeed, the circuit stays open.
        for user_id, username in learners[len(sent) :]:
            send(user_id, username)
        wait_for(
            lambda: all(course_certificate_written(username) for _, username in learners),
            timeout=90,
            what="every learner's course certificate written",
        )
        states = [line["state"] for line in worker.events("circuit_changed")]
        assert "closed" not in states, states
        assert not worker.events("event_dead_lettered")
        assert not [item for item in fake.credentials() if item.type == "program"]
        assert worker.process.poll() is None  # the awards wait: not done, not dropped

        fake.set_permissions("no-view-worker", ["view_usercredential"])
        assert worker.wait(timeout=120) == 0, worker.tail()
    finally:
        worker.kill()

    assert {line["event_id"] for line in worker.events("event_applied")} == set(sent)
    assert not worker.events("event_dead_lettered")
    assert sum(end_offsets(stack.bootstrap_servers, f"{topic}.dlq", PARTITIONS).values()) == 0
    for _user_id, username in learners:
        programs = [item.key for item in fake.credentials(username) if item.type == "program"]
        assert programs == [program], username
    assert worker.events("circuit_changed")[-1]["state"] == "closed"
    assert_fully_committed(stack, group, topic)
