"""The engine's guarantees, on the real broker and registry, with the worker as a process.

Every test here would fail if its guarantee broke: events are published the way the LMS
does, the worker runs as ``python -m consumer run`` against the fake Open edX, and the
assertions read the fake's write log (who, what, when, in which order, how concurrent),
Credentials' final state, the dead-letter topic and the group's committed offsets.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from consumer.deadletter.records import context_of
from consumer.events import EventType
from tests.fakes.openedx import FakeOpenEdx
from tests.integration.conftest import Stack
from tests.support.kafka import produce_raw, read_records
from tests.support.lms import LmsProducer, certificate_data
from tests.support.poison import EXPECTED, poison_variants
from tests.support.worker import (
    WorkerProcess,
    committed_offsets,
    end_offsets,
    wait_for,
    worker_env,
)

pytestmark = pytest.mark.integration

PARTITIONS = 3
CHANGED = EventType.CERTIFICATE_CHANGED


@dataclass(frozen=True)
class Learner:
    user_id: int
    username: str
    run: str


@dataclass(frozen=True)
class Sent:
    event_id: str
    learner: Learner
    status: str


def make_learners(fake: FakeOpenEdx, count: int, runs: int = 6) -> list[Learner]:
    """Learners spread over ``runs`` course runs, known to the fake.

    The LMS keys a certificate event by its course run, so a topic's partitions get events only
    from as many runs as there are: a test that needs every partition used asks for many runs
    (with 3 partitions, 30 runs leave one empty about once in 64,000 tests; 6, about once in 4).
    """
    tag = uuid.uuid4().hex[:6]
    keys = [f"course-v1:Eng{tag}+C{index}+2026_T1" for index in range(runs)]
    for key in keys:
        fake.add_course_run(key, modes=("audit", "verified"))
    learners = []
    for index in range(count):
        learner = Learner(
            user_id=10_000 + index, username=f"learner-{tag}-{index}", run=keys[index % runs]
        )
        fake.add_user(learner.username, learner.user_id)
        learners.append(learner)
    return learners


def publish_rounds(
    lms: LmsProducer, topic: str, learners: list[Learner], rounds: int
) -> list[Sent]:
    """``rounds`` certificate-changed events per learner, interleaved, status alternating."""
    sent = []
    for round_index in range(rounds):
        status = "downloadable" if round_index % 2 == 0 else "notpassing"
        for learner in learners:
            data = certificate_data(
                user_id=learner.user_id,
                username=learner.username,
                course_key=learner.run,
                status=status,
            )
            sent.append(Sent(lms.send(CHANGED, data, topic), learner, status))
    lms.flush()
    return sent


def final_status(fake: FakeOpenEdx, learner: Learner) -> str | None:
    found = [item for item in fake.credentials(learner.username) if item.key == learner.run]
    return found[0].status if found else None


def expected_status(sent: list[Sent], learner: Learner) -> str:
    last = [item for item in sent if item.learner == learner][-1]
    return "awarded" if last.status == "downloadable" else "revoked"


def applied_event_ids(fake: FakeOpenEdx) -> set[str]:
    return {
        record.request_id
        for record in fake.writes(endpoint="credentials_post", successful=True)
        if record.request_id
    }


def start_worker(
    stack: Stack,
    fake: FakeOpenEdx | None,
    tmp_path: Path,
    name: str,
    topic: str,
    group: str,
    *args: str,
    **env: str,
) -> WorkerProcess:
    environment = worker_env(
        stack.bootstrap_servers, stack.registry_url, fake, topics=[topic], group=group, **env
    )
    return WorkerProcess(environment, ["run", *args], tmp_path, name)


def assert_fully_committed(
    stack: Stack, group: str, topic: str, partitions: int = PARTITIONS
) -> None:
    """The group's committed offsets are the partitions' ends (an empty partition has none)."""
    committed = committed_offsets(stack.bootstrap_servers, group, topic, partitions)
    ends = end_offsets(stack.bootstrap_servers, topic, partitions)
    assert {p: max(offset, 0) for p, offset in committed.items()} == ends


# ----------------------------------------------------------------------------- ordering


def test_same_learner_in_offset_order_different_learners_concurrently(
    stack: Stack, lms: LmsProducer, fake: FakeOpenEdx, topic: str, group: str, tmp_path: Path
) -> None:
    """Each learner's writes follow offset order, never overlap, while learners run in parallel."""
    learners = make_learners(fake, 24)
    sent = publish_rounds(lms, topic, learners, rounds=6)
    fake.set_latency("credentials", 0.03, endpoint="credentials_post")

    worker = start_worker(stack, fake, tmp_path, "w1", topic, group, "--stop-when-idle", "2")

    assert worker.wait(timeout=120) == 0, worker.tail()
    for learner in learners:
        written = [
            record.request_id for record in fake.writes(username=learner.username, successful=True)
        ]
        assert written == [item.event_id for item in sent if item.learner == learner]
        assert final_status(fake, learner) == expected_status(sent, learner)
    stats = fake.stats()
    assert max(stats.max_in_flight_per_learner.values()) == 1
    assert stats.max_in_flight > 1
    assert_fully_committed(stack, group, topic)


# ----------------------------------------------------------------------------- restarts


def test_nothing_is_lost_when_the_worker_is_killed_mid_stream(
    stack: Stack, lms: LmsProducer, fake: FakeOpenEdx, topic: str, group: str, tmp_path: Path
) -> None:
    """SIGKILL mid-stream, then a restart: every event applied at least once, final state right."""
    learners = make_learners(fake, 30)
    sent = publish_rounds(lms, topic, learners, rounds=10)
    fake.set_latency("credentials", 0.02, endpoint="credentials_post")

    first = start_worker(stack, fake, tmp_path, "first", topic, group)
    wait_for(
        lambda: len(applied_event_ids(fake)) >= len(sent) // 3, timeout=60, what="a third applied"
    )
    first.kill()
    applied_before_restart = applied_event_ids(fake)
    assert len(applied_before_restart) < len(sent)  # it really died mid-stream

    second = start_worker(stack, fake, tmp_path, "second", topic, group, "--stop-when-idle", "2")

    assert second.wait(timeout=120) == 0, second.tail()
    assert applied_event_ids(fake) == {item.event_id for item in sent}
    for learner in learners:
        assert final_status(fake, learner) == expected_status(sent, learner)
    assert_fully_committed(stack, group, topic)


def test_sigterm_under_load_drains_commits_and_exits_zero(
    stack: Stack, lms: LmsProducer, fake: FakeOpenEdx, topic: str, group: str, tmp_path: Path
) -> None:
    """SIGTERM: in-flight writes finish, the watermark is committed, exit 0 within the bound."""
    learners = make_learners(fake, 40)
    sent = publish_rounds(lms, topic, learners, rounds=8)
    fake.set_latency("credentials", 0.2, endpoint="credentials_post")

    worker = start_worker(
        stack, fake, tmp_path, "w1", topic, group, CONSUMER_DRAIN_TIMEOUT_SECONDS="15"
    )
    wait_for(lambda: len(applied_event_ids(fake)) >= 40, timeout=60, what="work under way")
    worker.terminate()

    assert worker.wait(timeout=30) == 0, worker.tail()
    assert all(record.status is not None for record in fake.writes())  # no write cut off
    drained = worker.events("engine_drained")
    assert drained
    assert drained[-1]["complete"] is True
    # Everything below the committed watermark was applied: the restart resumes from there.
    committed = committed_offsets(stack.bootstrap_servers, group, topic, PARTITIONS)
    records = read_records(stack.bootstrap_servers, topic, len(sent))
    ids_by_position = {
        (record.partition, record.offset): record.header("ce_id")[0].decode() for record in records
    }
    below = {
        event_id
        for (partition, offset), event_id in ids_by_position.items()
        if offset < committed[partition]
    }
    assert below
    assert below <= applied_event_ids(fake)
    assert len(below) < len(sent)  # it stopped before the end


# ----------------------------------------------------------------------------- rebalancing


def test_two_workers_one_stopped_mid_stream_every_event_applied_no_learner_twice_at_once(
    stack: Stack, lms: LmsProducer, fake: FakeOpenEdx, topic: str, group: str, tmp_path: Path
) -> None:
    """A member leaving mid-stream hands its partitions over drained: no overlap, nothing lost."""
    learners = make_learners(fake, 24)
    sent = publish_rounds(lms, topic, learners, rounds=10)
    fake.set_latency("credentials", 0.3, endpoint="credentials_post")

    leaving = start_worker(stack, fake, tmp_path, "leaving", topic, group)
    # Idle long enough to outlast the hand-over: a member that is caught up on what it holds
    # would otherwise stop before the leaving member's partitions reach it.
    staying = start_worker(stack, fake, tmp_path, "staying", topic, group, "--stop-when-idle", "10")
    wait_for(
        lambda: all(
            any(line["partitions"] for line in worker.events("partitions_assigned"))
            for worker in (leaving, staying)
        ),
        timeout=60,
        what="both workers holding partitions",
    )
    wait_for(
        lambda: len(applied_event_ids(fake)) >= len(sent) // 4, timeout=90, what="a quarter applied"
    )
    leaving.terminate()

    assert leaving.wait(timeout=40) == 0, leaving.tail()
    assert staying.wait(timeout=180) == 0, staying.tail()
    assert applied_event_ids(fake) == {item.event_id for item in sent}
    assert max(fake.stats().max_in_flight_per_learner.values()) == 1
    for learner in learners:
        assert final_status(fake, learner) == expected_status(sent, learner)
    assert_fully_committed(stack, group, topic)


# ----------------------------------------------------------------------------- outages


def test_credentials_down_longer_than_the_retry_budget_dead_letters_nothing(
    stack: Stack, lms: LmsProducer, fake: FakeOpenEdx, topic: str, group: str, tmp_path: Path
) -> None:
    """Refused, then 503s, longer than the retry budget: no dead letter, all applied in order."""
    learners = make_learners(fake, 20)
    sent = publish_rounds(lms, topic, learners, rounds=4)
    fake.set_outage("credentials", "refused")

    def to_503() -> None:
        fake.clear_outage("credentials")
        fake.set_outage("credentials", "503")

    switch_to_503 = threading.Timer(4.0, to_503)
    back = threading.Timer(8.0, lambda: fake.clear_outage("credentials"))
    switch_to_503.start()
    back.start()
    try:
        worker = start_worker(
            stack,
            fake,
            tmp_path,
            "w1",
            topic,
            group,
            "--stop-when-idle",
            "2",
            CONSUMER_RETRY_MAX_SECONDS="2",
            CONSUMER_RETRY_MAX_ATTEMPTS="3",
        )
        assert worker.wait(timeout=120) == 0, worker.tail()
    finally:
        switch_to_503.cancel()
        back.cancel()

    assert not worker.events("event_dead_lettered")
    assert sum(end_offsets(stack.bootstrap_servers, f"{topic}.dlq", PARTITIONS).values()) == 0
    assert applied_event_ids(fake) == {item.event_id for item in sent}
    for learner in learners:
        written = [r.request_id for r in fake.writes(username=learner.username, successful=True)]
        assert written == [item.event_id for item in sent if item.learner == learner]
    states = [
        line["state"]
        for line in worker.events("circuit_changed")
        if line["service"] == "credentials"
    ]
    assert "open" in states  # the outage was recognised as one...
    assert states[-1] == "closed"  # ...and its end too
    refused = [r for r in fake.writes(endpoint="credentials_post") if r.status == 503]
    assert refused  # the 503 phase was really hit


# ----------------------------------------------------------------------------- dead letters


def _dlq_records(stack: Stack, topic: str, count: int) -> list:  # type: ignore[type-arg]
    return read_records(stack.bootstrap_servers, f"{topic}.dlq", count)


def test_permanent_rejection_and_exhausted_retries_dead_letter_then_redrive_applies(
    stack: Stack, lms: LmsProducer, fake: FakeOpenEdx, topic: str, group: str, tmp_path: Path
) -> None:
    """A 400 and an exhausted 500 each dead-letter once, documented; the partition moves on.

    Once the operator fixes the causes, a redrive applies both.
    """
    learners = make_learners(fake, 6, runs=1)
    run = learners[0].run
    missing_run = run.replace("+C0+", "+Missing+")  # not in Credentials' catalogue: 400
    fake.add_course_run(missing_run, in_credentials_catalog=False)
    orphan = learners[5]
    fake.add_user(orphan.username, orphan.user_id, in_credentials=False)  # program award: 500
    program = str(uuid.uuid4())
    fake.add_program(program, {"Eng+C0": {run: "verified"}})
    fake.add_credential(orphan.username, course_run=run, mode="verified", status="awarded")

    rejected = lms.send(
        CHANGED,
        certificate_data(
            user_id=learners[0].user_id, username=learners[0].username, course_key=missing_run
        ),
        topic,
    )
    exhausted = lms.send(
        EventType.CERTIFICATE_CREATED,
        certificate_data(user_id=orphan.user_id, username=orphan.username, course_key=run),
        topic,
    )
    after = [
        lms.send(
            CHANGED,
            certificate_data(user_id=other.user_id, username=other.username, course_key=run),
            topic,
        )
        for other in learners[1:5]
    ]
    lms.flush()

    worker = start_worker(stack, fake, tmp_path, "w1", topic, group, "--stop-when-idle", "2")
    assert worker.wait(timeout=120) == 0, worker.tail()

    assert set(after) <= applied_event_ids(fake)  # the partitions moved on
    dead = {record.header("ce_id")[0].decode(): record for record in _dlq_records(stack, topic, 2)}
    assert set(dead) == {rejected, exhausted}
    rejection = context_of(dead[rejected].headers)
    assert rejection["stage"] == "apply"
    assert rejection["class"] == "RejectedError"
    assert rejection["reason"] == "http_400"
    assert rejection["attempts"] == "1"
    assert rejection["group"] == group
    assert rejection["topic"] == topic
    assert missing_run in rejection["message"]
    exhaustion = context_of(dead[exhausted].headers)
    assert exhaustion["reason"] == "http_500"
    assert exhaustion["attempts"] == "4"  # CONSUMER_RETRY_MAX_ATTEMPTS in tests
    assert "retries exhausted" in exhaustion["message"]
    for name in (
        "partition",
        "offset",
        "timestamp",
        "first_failure",
        "last_failure",
        "worker_version",
        "class",
    ):
        assert name in exhaustion
    for record in dead.values():
        assert orphan.username not in " ".join(value.decode() for _, value in record.headers)
        assert record.header("ce_type")  # the original headers travel with it
    source = {
        record.header("ce_id")[0].decode(): record
        for record in read_records(stack.bootstrap_servers, topic, 6)
    }
    assert dead[rejected].value == source[rejected].value
    assert dead[rejected].key == source[rejected].key
    assert int(rejection["offset"]) == source[rejected].offset

    # A redrive before the fix consumes nothing; a dry-run redrive shows what it would send.
    env = worker_env(stack.bootstrap_servers, stack.registry_url, fake, topics=[topic], group=group)
    dlq_args = ["dlq", "redrive", f"{topic}.dlq", "--idle-seconds", "2"]
    early = WorkerProcess(env, dlq_args, tmp_path, "early-redrive")
    assert early.wait(timeout=120) == 1, early.tail()
    assert "still failing 2" in early.out_path.read_text()
    redrive_group = f"{group}.redrive"
    first_held = {
        partition: min(r.offset for r in dead.values() if r.partition == partition)
        for partition in {record.partition for record in dead.values()}
    }
    committed = committed_offsets(
        stack.bootstrap_servers, redrive_group, f"{topic}.dlq", PARTITIONS
    )
    assert all(offset <= first_held.get(partition, 0) for partition, offset in committed.items())
    preview = WorkerProcess(env, [*dlq_args, "--dry-run"], tmp_path, "preview")
    assert preview.wait(timeout=120) == 0, preview.tail()
    previewed = {
        json.loads(line)["event_id"]
        for line in preview.out_path.read_text().splitlines()
        if line.startswith("{")
    }
    assert previewed == {rejected, exhausted}

    # The operator fixes the causes, then redrives.
    fake.add_course_run(missing_run, in_credentials_catalog=True)
    fake.add_user(orphan.username, orphan.user_id, in_credentials=True)
    redrive = WorkerProcess(
        env, ["dlq", "redrive", f"{topic}.dlq", "--idle-seconds", "2"], tmp_path, "redrive"
    )
    assert redrive.wait(timeout=120) == 0, redrive.tail()
    assert {rejected, exhausted} <= applied_event_ids(fake)
    programs = [c for c in fake.credentials(orphan.username) if c.key == program]
    assert [c.status for c in programs] == ["awarded"]
    assert "applied 2" in redrive.out_path.read_text()


def test_poison_goes_to_the_dead_letter_topic_at_once_with_its_reason(
    stack: Stack, lms: LmsProducer, fake: FakeOpenEdx, group: str, tmp_path: Path
) -> None:
    """Every kind of poison is dead-lettered on first sight with its reason; the rest goes on."""
    topic = stack.create_topic(f"it-poison-{uuid.uuid4().hex[:8]}", partitions=1)
    learners = make_learners(fake, 1, runs=1)
    template_topic = stack.create_topic(f"{topic}-template", partitions=1)
    lms.send(CHANGED, certificate_data(user_id=1, course_key=learners[0].run), template_topic)
    lms.flush()
    (good,) = read_records(stack.bootstrap_servers, template_topic, 1)
    variants = poison_variants(good)
    for value, headers in variants.values():
        produce_raw(stack.bootstrap_servers, topic, value, headers=headers)
    learner = learners[0]
    last = lms.send(
        CHANGED,
        certificate_data(
            user_id=learner.user_id, username=learner.username, course_key=learner.run
        ),
        topic,
    )
    lms.flush()

    worker = start_worker(stack, fake, tmp_path, "w1", topic, group, "--stop-when-idle", "2")
    assert worker.wait(timeout=120) == 0, worker.tail()

    dead = _dlq_records(stack, topic, len(variants))
    reasons = sorted(context_of(record.headers)["reason"] for record in dead)
    assert reasons == sorted(variants)
    for record in dead:
        context = context_of(record.headers)
        assert context["stage"] == "decode"
        assert context["attempts"] == "1"
        assert context["class"] == EXPECTED[context["reason"]].__name__
    assert last in applied_event_ids(fake)
    assert_fully_committed(stack, group, topic, partitions=1)
