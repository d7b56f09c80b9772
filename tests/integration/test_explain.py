"""``credentials-consumer explain`` as a process against the fake Open edX.

One learner with four programs — complete, incomplete, excluded, and one her honor
certificate cannot complete (mode mismatch) — and a course certificate Credentials lacks.
No Kafka setting is given: explain reads the services only, with GETs only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.openedx import DEFAULT_CLIENT_SECRET, FakeOpenEdx
from tests.support.worker import WorkerProcess, worker_env

pytestmark = pytest.mark.integration

USERNAME = "ada-lovelace"
A1, B1, C1, D1, E1 = (f"course-v1:ExplainX+{course}+1T2026" for course in "ABCDE")
COMPLETE = "11111111-1111-4111-8111-111111111111"
INCOMPLETE = "22222222-2222-4222-8222-222222222222"
EXCLUDED = "33333333-3333-4333-8333-333333333333"
MISMATCH = "44444444-4444-4444-8444-444444444444"


@pytest.fixture
def fake() -> Iterator[FakeOpenEdx]:
    """The learner's world: four programs, four LMS certificates, three synced to Credentials."""
    fake = FakeOpenEdx.start()
    fake.add_user(USERNAME, 77)
    for run in (A1, B1, C1, D1, E1):
        fake.add_course_run(run, modes=("audit", "verified"), end="2026-06-30T00:00:00Z")
    fake.add_program(COMPLETE, {"ExplainX+A": {A1: "verified"}, "ExplainX+B": {B1: "verified"}})
    fake.add_program(INCOMPLETE, {"ExplainX+A": {A1: "verified"}, "ExplainX+C": {C1: "verified"}})
    fake.add_program(EXCLUDED, {"ExplainX+B": {B1: "verified"}})
    fake.add_program(MISMATCH, {"ExplainX+D": {D1: "verified"}})
    for run, mode in ((A1, "verified"), (B1, "verified"), (D1, "honor")):
        fake.add_lms_certificate(USERNAME, run, mode=mode)
        fake.add_credential(USERNAME, course_run=run, mode=mode)
    fake.add_lms_certificate(USERNAME, E1, mode="verified")  # its event never reached Credentials
    yield fake
    fake.stop()


def explain(fake: FakeOpenEdx, tmp_path: Path, *args: str, name: str = "explain") -> WorkerProcess:
    """Run ``explain`` for the learner with the service variables only, at DEBUG."""
    env = worker_env("unused:9092", "http://unused", fake, topics=["unused"], group="unused")
    env = {
        key: value
        for key, value in env.items()
        if not key.startswith("EVENT_BUS_") and key not in ("CONSUMER_TOPICS", "CONSUMER_GROUP_ID")
    }
    env.update({"PROGRAMS_WITHOUT_CERTIFICATES": EXCLUDED, "CONSUMER_LOG_LEVEL": "DEBUG"})
    argv = ["explain", "--lms-user-id", "77", "--username", USERNAME, *args]
    return WorkerProcess(env, argv, tmp_path, name)


def verdicts(trace: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {item["uuid"]: (item["verdict"], item["reason"]) for item in trace["programs"]}


def test_explain_json_gives_each_programs_verdict_and_reads_only(
    fake: FakeOpenEdx, tmp_path: Path
) -> None:
    """--json gives the worker's verdicts and reasons; the fake saw GETs only (and the token)."""
    process = explain(fake, tmp_path, "--json", "--course-run", E1)
    assert process.wait(timeout=60) == 0, process.tail()

    trace = json.loads(process.out_path.read_text())
    assert verdicts(trace) == {
        COMPLETE: ("award", "program_completed"),
        INCOMPLETE: ("none", "course_incomplete"),
        EXCLUDED: ("none", "program_excluded"),
        MISMATCH: ("none", "course_incomplete"),
    }
    runs = {
        run["key"]: run["reason"]
        for program in trace["programs"]
        for course in program["courses"]
        for run in course["runs"]
    }
    assert (runs[C1], runs[D1]) == ("no_certificate", "mode_mismatch")
    sync = trace["course_run"]["course_certificate"]
    assert (sync["action"], sync["reason"]) == ("award", "certificate_downloadable")
    cad = trace["course_run"]["certificate_available_date"]
    assert (cad["reason"], cad["certificate_available_date"]) == ("end", "2026-06-30T00:00:00Z")
    assert {item["kind"] for item in trace["findings"]} == {
        "course_certificate_missing",
        "program_award_missing",
    }
    requests = fake.requests()
    assert requests, "explain asked the fake nothing"
    assert fake.writes() == []
    assert {(record.service, record.method) for record in requests if record.method != "GET"} == {
        ("oauth", "POST")
    }


def test_the_tree_names_every_reason(fake: FakeOpenEdx, tmp_path: Path) -> None:
    """Without --json the same verdicts come as a tree, and the fixes name real commands."""
    process = explain(fake, tmp_path)
    assert process.wait(timeout=60) == 0, process.tail()

    tree = process.out_path.read_text()
    for line in (
        f"program {COMPLETE} (active): AWARD (program_completed)",
        f"program {INCOMPLETE} (active): NONE (course_incomplete)",
        f"program {EXCLUDED} (active): NONE (program_excluded)",
        "✗ mode_mismatch: certificate mode honor does not match seat type verified",
        "✗ no_certificate: the learner has no certificate in this run",
        "credentials-consumer dlq inspect learning-certificate-lifecycle.dlq",
        "credentials-consumer replay --from-datetime ",
    ):
        assert line in tree


def test_logs_never_hold_the_username_or_a_secret(fake: FakeOpenEdx, tmp_path: Path) -> None:
    """At DEBUG, on success and on a failed read, stderr has neither username nor secret."""
    ok = explain(fake, tmp_path, "--course-run", E1, name="ok")
    assert ok.wait(timeout=60) == 0, ok.tail()
    fake.set_error("lms", 500, endpoint="certificate_detail")
    failed = explain(fake, tmp_path, "--course-run", C1, name="failed")
    assert failed.wait(timeout=60) == 1, failed.tail()

    for process in (ok, failed):
        log = process.log_path.read_text()
        assert "http_call" in log  # DEBUG lines were written
        assert USERNAME not in log
        assert DEFAULT_CLIENT_SECRET not in log
        assert "Traceback" not in log
    assert [line["reason"] for line in failed.events("explain_failed")] == ["http_500"]
    assert failed.out_path.read_text() == ""
