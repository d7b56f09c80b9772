"""Issue 8 at the service boundary, end to end: the worker as a process, the real broker.

Events are published the way the LMS and Studio do (or, for ids the LMS would never send,
produced raw from an LMS record); the worker runs as ``python -m consumer run`` against the
fake Open edX. Each test failed on the worker before the fix: a crash loop on one record, or
a program awarded that the seed would not award.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from consumer.deadletter.records import context_of
from consumer.events import EventType
from consumer.services.request_parts import request_id_header
from tests.fakes.openedx import FakeOpenEdx
from tests.integration.conftest import Stack
from tests.support.kafka import produce_raw, read_records
from tests.support.lms import LmsProducer, catalog_data, certificate_data
from tests.support.worker import WorkerProcess, committed_offsets, end_offsets, worker_env

pytestmark = pytest.mark.integration

PARTITIONS = 3


def run_worker(
    stack: Stack, fake: FakeOpenEdx, tmp_path: Path, topic: str, group: str
) -> WorkerProcess:
    """Run the worker until it is idle for 2 s; it must exit 0."""
    env = worker_env(stack.bootstrap_servers, stack.registry_url, fake, topics=[topic], group=group)
    worker = WorkerProcess(env, ["run", "--stop-when-idle", "2"], tmp_path, "worker")
    assert worker.wait(timeout=120) == 0, worker.tail()
    return worker


def assert_fully_committed(stack: Stack, group: str, topic: str) -> None:
    committed = committed_offsets(stack.bootstrap_servers, group, topic, PARTITIONS)
    ends = end_offsets(stack.bootstrap_servers, topic, PARTITIONS)
    assert {p: max(offset, 0) for p, offset in committed.items()} == ends


def dead_letters(stack: Stack, topic: str) -> int:
    return sum(end_offsets(stack.bootstrap_servers, f"{topic}.dlq", PARTITIONS).values())


def test_any_ce_id_is_applied_with_a_safe_request_id(
    stack: Stack, lms: LmsProducer, fake: FakeOpenEdx, topic: str, group: str, tmp_path: Path
) -> None:
    """An emoji, CR/LF or 10 kB ``ce_id`` is only a correlation id: the event is applied."""
    run = f"course-v1:Ids{uuid.uuid4().hex[:6]}+C+2026_T1"
    fake.add_course_run(run)
    template_topic = stack.create_topic(f"{topic}-template", partitions=1)
    lms.send(
        EventType.CERTIFICATE_CHANGED,
        certificate_data(user_id=7, username="learner-ids", course_key=run),
        template_topic,
    )
    lms.flush()
    (good,) = read_records(stack.bootstrap_servers, template_topic, 1)
    ids = ["ce-\N{GRINNING FACE}-1", "ce-2\r\nX-Injected: yes", "x" * 10_000]
    for event_id in ids:
        headers = [(name, value) for name, value in good.headers if name != "ce_id"]
        produce_raw(
            stack.bootstrap_servers,
            topic,
            good.value,
            key=good.key,
            headers=[*headers, ("ce_id", event_id.encode())],
        )

    worker = run_worker(stack, fake, tmp_path, topic, group)

    written = [record.request_id for record in fake.writes(successful=True)]
    assert written == [request_id_header(event_id) for event_id in ids]
    assert dead_letters(stack, topic) == 0
    assert not worker.events("event_dead_lettered")
    assert_fully_committed(stack, group, topic)


def test_a_studio_date_with_no_utc_form_is_dead_lettered_and_the_rest_goes_on(
    stack: Stack, lms: LmsProducer, fake: FakeOpenEdx, topic: str, group: str, tmp_path: Path
) -> None:
    """Studio's CAD 0001-01-01T00:00:00+05:00: retried, dead-lettered with its reason, no crash."""
    tag = uuid.uuid4().hex[:6]
    bad, good = f"course-v1:Cad{tag}+Bad+2026_T1", f"course-v1:Cad{tag}+Good+2026_T1"
    fake.add_course_run(bad, display_behavior="end_with_date")
    fake.add_course_run(good, self_paced=True)
    fake.set_answer(
        "studio",
        {
            "certificates_display_behavior": "end_with_date",
            "certificate_available_date": "0001-01-01T00:00:00+05:00",
            "self_paced": False,
            "end_date": "2026-06-30T00:00:00Z",
        },
        endpoint="course_details",
    )
    broken = lms.send(EventType.CATALOG_INFO_CHANGED, catalog_data(course_key=bad), topic)
    lms.send(EventType.CATALOG_INFO_CHANGED, catalog_data(course_key=good, pacing="self"), topic)
    lms.flush()

    run_worker(stack, fake, tmp_path, topic, group)

    (dead,) = read_records(stack.bootstrap_servers, f"{topic}.dlq", 1)
    context = context_of(dead.headers)
    assert dead.header("ce_id")[0].decode() == broken
    assert (context["stage"], context["class"], context["reason"]) == (
        "apply",
        "MalformedAnswerError",
        "malformed_answer",
    )
    assert "certificate_available_date" in context["message"]
    assert int(context["attempts"]) > 1  # retried first: a malformed answer may be passing
    assert set(fake.course_certificate_configs()) == {good}
    assert_fully_committed(stack, group, topic)


def test_an_honor_certificate_in_a_verified_run_awards_no_verified_program(
    stack: Stack, lms: LmsProducer, fake: FakeOpenEdx, topic: str, group: str, tmp_path: Path
) -> None:
    """Credentials reads honor back as verified in a verified run; the worker must not trust it.

    Two learners finish the one course of a program that needs the run as verified: the
    verified one gets the program, the honor one does not (the seed's ProgramProgressMeter).
    """
    tag = uuid.uuid4().hex[:6]
    run = f"course-v1:Modes{tag}+C+2026_T1"
    program = str(uuid.uuid4())
    fake.add_course_run(run, modes=("honor", "verified"))
    fake.add_course_certificate_config(run, "verified")
    fake.add_program(program, {f"Modes{tag}+C": {run: "verified"}})
    learners = {"honor": (501, f"honor-{tag}"), "verified": (502, f"verified-{tag}")}
    for mode, (user_id, username) in learners.items():
        fake.add_user(username, user_id)
        fake.add_lms_certificate(username, run, mode=mode)
        lms.send(
            EventType.CERTIFICATE_CREATED,
            certificate_data(user_id=user_id, username=username, course_key=run, mode=mode),
            topic,
        )
    lms.flush()

    run_worker(stack, fake, tmp_path, topic, group)

    def programs_of(username: str) -> list[str]:
        return [c.key for c in fake.credentials(username) if c.type == "program"]

    honor_name, verified_name = learners["honor"][1], learners["verified"][1]
    assert programs_of(verified_name) == [program]
    assert programs_of(honor_name) == []
    (filed,) = [c for c in fake.credentials(honor_name) if c.type == "course-run"]
    assert filed.status == "awarded"  # the honor certificate itself is synced
    assert dead_letters(stack, topic) == 0
    assert_fully_committed(stack, group, topic)
