"""The command line on the real broker: dry-run output, ``check`` and ``dlq inspect``."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from consumer.events import EventType
from tests.fakes.openedx import FakeOpenEdx
from tests.integration.conftest import Stack
from tests.support.kafka import produce_raw
from tests.support.lms import LmsProducer, catalog_data, certificate_data
from tests.support.worker import WorkerProcess, committed_offsets, worker_env

pytestmark = pytest.mark.integration

COURSE = "course-v1:CliX+Dry101+2026_T1"
PII = ("grace-hopper", "grace@example.com", "Grace Brewster Hopper")


def _certificate(user_id: int) -> dict[str, object]:
    data = certificate_data(user_id=user_id, username=PII[0], course_key=COURSE)
    data["certificate"]["user"]["pii"] = {"username": PII[0], "email": PII[1], "name": PII[2]}
    return data


def test_dry_run_prints_each_events_commands_and_logs_without_pii(
    stack: Stack, lms: LmsProducer, topic: str, tmp_path: Path
) -> None:
    """``run --dry-run`` prints each command and logs each event, without PII or commits.

    One JSON line per command carries the event id; one log line per event carries the
    record's coordinates and the LMS user id; no username, e-mail or name appears anywhere.
    """
    created = lms.send(EventType.CERTIFICATE_CREATED, _certificate(31), topic)
    catalog = lms.send(EventType.CATALOG_INFO_CHANGED, catalog_data(course_key=COURSE), topic)
    lms.flush()
    group = f"dry-{uuid.uuid4().hex[:6]}"
    env = worker_env(stack.bootstrap_servers, stack.registry_url, None, topics=[topic], group=group)
    env.pop("CONSUMER_DRY_RUN")
    env["COURSE_CATALOG_API_URL"] = "http://discovery.invalid/api/v1"  # programs on, never called
    worker = WorkerProcess(env, ["run", "--dry-run", "--stop-when-idle", "2"], tmp_path, "dry")

    assert worker.wait(timeout=60) == 0, worker.tail()

    lines = [json.loads(line) for line in worker.out_path.read_text().splitlines()]
    commands = {(line["event_id"], line.get("command") or line.get("skip")) for line in lines}
    assert (created, "sync_course_certificate") in commands
    assert (created, "award_programs") in commands
    assert (catalog, "sync_certificate_available_date") in commands
    sync = next(line for line in lines if line.get("command") == "sync_course_certificate")
    assert sync["lms_user_id"] == 31
    assert sync["status"] == "awarded"
    applied = {line["event_id"]: line for line in worker.events("event_applied")}
    assert set(applied) == {created, catalog}
    for line in applied.values():
        assert {"event_type", "topic", "partition", "offset", "course_key"} <= set(line)
        assert line["topic"] == topic
    assert applied[created]["lms_user_id"] == 31
    everything = worker.out_path.read_text() + worker.log_path.read_text()
    for secret in PII:
        assert secret not in everything
    assert all(
        offset < 0
        for offset in committed_offsets(stack.bootstrap_servers, group, topic, 3).values()
    )


def test_check_reaches_every_dependency_and_prints_no_secret(
    stack: Stack, topic: str, tmp_path: Path
) -> None:
    """``check`` exits 0 with one ok line per dependency and masks the client secret."""
    with FakeOpenEdx.start() as fake:
        env = worker_env(
            stack.bootstrap_servers, stack.registry_url, fake, topics=[topic], group="g"
        )
        check = WorkerProcess(env, ["check"], tmp_path, "check")
        assert check.wait(timeout=60) == 0, check.out_path.read_text() + check.tail()
    output = check.out_path.read_text()
    for service in ("oauth", "credentials", "lms", "studio", "discovery", "registry", "kafka"):
        assert any(line.startswith("ok") and service in line for line in output.splitlines()), (
            service
        )
    assert env["BACKEND_SERVICE_EDX_OAUTH2_SECRET"] not in output
    assert "oauth_client_secret = ***" in output


def test_check_says_what_to_grant_when_credentials_forbids_reading(
    stack: Stack, topic: str, tmp_path: Path
) -> None:
    """A service user without view_usercredential fails ``check`` (exit 1) with the fix named."""
    with FakeOpenEdx.start() as fake:
        fake.add_oauth_client("no-view", "s3cret-value", username="worker", permissions=())
        env = worker_env(
            stack.bootstrap_servers,
            stack.registry_url,
            fake,
            topics=[topic],
            group="g",
            BACKEND_SERVICE_EDX_OAUTH2_KEY="no-view",
            BACKEND_SERVICE_EDX_OAUTH2_SECRET="s3cret-value",
        )
        check = WorkerProcess(env, ["check"], tmp_path, "check")
        assert check.wait(timeout=60) == 1, check.tail()
    output = check.out_path.read_text()
    assert any(line.startswith("FAIL") and "credentials" in line for line in output.splitlines())
    assert "view_usercredential" in output
    assert "s3cret-value" not in output


def test_dlq_inspect_summarises_a_dead_letter_topic(stack: Stack, tmp_path: Path) -> None:
    """``dlq inspect`` counts records by stage and error and shows samples, never the value."""
    dlq = stack.create_topic(f"it-inspect-{uuid.uuid4().hex[:8]}.dlq", partitions=2)
    prefix = "credentials_consumer.error."
    for index, reason in enumerate(["bad_magic_byte", "bad_magic_byte", "http_400"]):
        stage = "decode" if reason != "http_400" else "apply"
        produce_raw(
            stack.bootstrap_servers,
            dlq,
            b"\x00\x00\x00\x00\x01 secret value with grace@example.com",
            key=b"course-v1:CliX+Dry101+2026_T1",
            partition=index % 2,
            headers=[
                ("ce_type", EventType.CERTIFICATE_CREATED.encode()),
                ("ce_id", f"id-{index}".encode()),
                (prefix + "topic", b"source"),
                (prefix + "partition", b"0"),
                (prefix + "offset", str(index).encode()),
                (prefix + "stage", stage.encode()),
                (prefix + "class", b"FramingError" if stage == "decode" else b"RejectedError"),
                (prefix + "reason", reason.encode()),
                (prefix + "message", b"what went wrong"),
                (prefix + "attempts", b"1"),
                (prefix + "last_failure", f"2026-11-2{index}T10:00:00.000+00:00".encode()),
            ],
        )
    env = worker_env(
        stack.bootstrap_servers, stack.registry_url, None, topics=["unused"], group="g"
    )
    inspect = WorkerProcess(env, ["dlq", "inspect", dlq, "--json"], tmp_path, "inspect")
    assert inspect.wait(timeout=60) == 0, inspect.tail()
    summary = json.loads(inspect.out_path.read_text())
    assert summary["total"] == 3
    assert summary["by_stage"] == {"decode": 2, "apply": 1}
    assert summary["by_error"] == {"FramingError/bad_magic_byte": 2, "RejectedError/http_400": 1}
    assert summary["oldest_failure"].startswith("2026-11-20")
    assert summary["newest_failure"].startswith("2026-11-22")
    assert {sample["course_key"] for sample in summary["samples"]} == {
        "course-v1:CliX+Dry101+2026_T1"
    }
    text = WorkerProcess(env, ["dlq", "inspect", dlq], tmp_path, "inspect-text")
    assert text.wait(timeout=60) == 0
    rendered = text.out_path.read_text()
    assert "3 records" in rendered
    assert "grace@example.com" not in rendered + inspect.out_path.read_text()
