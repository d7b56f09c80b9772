"""The command line on the real broker: dry-run, ``check``, ``dlq inspect``, dead-letter topics.

Also every command against a broker that cannot be reached.
"""

from __future__ import annotations

import json
import re
import socket
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import TopicCollection
from confluent_kafka.admin._config import ConfigResource
from confluent_kafka.admin._resource import ResourceType
from confluent_kafka.cimpl import NewTopic

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


# ----------------------------------------------------------------------------- dead-letter topics

THIRTY_DAYS_MS = 30 * 24 * 3600 * 1000


def _topic_config(stack: Stack, name: str) -> dict[str, str]:
    resource = ConfigResource(ResourceType.TOPIC, name)
    entries = stack.admin.describe_configs([resource])[resource].result(timeout=30)
    return {key: str(entry.value) for key, entry in entries.items()}


def test_the_worker_creates_dead_letter_topics_that_keep_their_records(
    stack: Stack, topic: str, tmp_path: Path
) -> None:
    """Created with the source's partitions and replicas and the configured retention."""
    with FakeOpenEdx.start() as fake:
        env = worker_env(
            stack.bootstrap_servers,
            stack.registry_url,
            fake,
            topics=[topic],
            group=f"g-{uuid.uuid4().hex[:6]}",
            CONSUMER_DEAD_LETTER_RETENTION_MS=str(THIRTY_DAYS_MS),
        )
        worker = WorkerProcess(env, ["run", "--stop-when-idle", "1"], tmp_path, "worker")
        assert worker.wait(timeout=60) == 0, worker.tail()
    dead = f"{topic}.dlq"
    described = stack.admin.describe_topics(TopicCollection([topic, dead]))
    source = described[topic].result(timeout=30)
    created = described[dead].result(timeout=30)
    assert len(created.partitions) == len(source.partitions) == 3
    assert {len(p.replicas) for p in created.partitions} == {len(source.partitions[0].replicas)}
    config = _topic_config(stack, dead)
    assert config["retention.ms"] == str(THIRTY_DAYS_MS)
    assert config["cleanup.policy"] == "delete"
    assert worker.events("dead_letter_topic_created")


def test_check_warns_about_a_dead_letter_topic_that_keeps_less_than_configured(
    stack: Stack, topic: str, tmp_path: Path
) -> None:
    """``check --json``: a pre-created dead-letter topic with 7 days' retention is a warning."""
    dead = f"{topic}.dlq"
    stack.admin.create_topics(
        [
            NewTopic(
                dead, num_partitions=3, replication_factor=1, config={"retention.ms": "604800000"}
            )
        ]
    )[dead].result(timeout=30)
    with FakeOpenEdx.start() as fake:
        env = worker_env(
            stack.bootstrap_servers, stack.registry_url, fake, topics=[topic], group="g"
        )
        check = WorkerProcess(env, ["check", "--json"], tmp_path, "check")
        assert check.wait(timeout=60) == 0, check.out_path.read_text() + check.tail()
    report = json.loads(check.out_path.read_text())
    assert report["ok"] is True
    warnings = [item for item in report["checks"] if item["status"] == "warn"]
    assert len(warnings) == 1
    assert dead in warnings[0]["summary"]
    assert "retention.ms=604800000" in warnings[0]["summary"]
    assert "retention.ms=-1" in warnings[0]["hint"]
    assert report["configuration"]["oauth_client_secret"] == "***"
    assert {item["name"] for item in report["checks"] if item["status"] == "ok"} >= {
        "kafka",
        "registry",
        "credentials",
    }


# ----------------------------------------------------------------------------- unreachable broker

UNREACHABLE_COMMANDS = [
    ["run"],
    ["run", "--dry-run"],
    ["check"],
    ["check", "--json"],
    ["replay", "--from-beginning"],
    ["replay", "--from-beginning", "--plan"],
    ["replay", "--from-beginning", "--dry-run"],
    ["replay", "--group-id", "somewhere.replay.x"],
    ["dlq", "inspect", "t.dlq"],
    ["dlq", "redrive", "t.dlq"],
    ["offsets", "show"],
    ["offsets", "reset", "--to-latest"],
    ["offsets", "reset", "--to-latest", "--execute"],
]
KAFKA_TIMEOUT = 3


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_every_command_exits_1_with_json_lines_only_when_the_broker_cannot_be_reached(
    stack: Stack, tmp_path: Path
) -> None:
    """Bootstrap on a closed port: each command exits 1 in time, no traceback, stderr all JSON.

    librdkafka's connection errors come through structlog, each distinct line once.
    """
    bootstrap = f"127.0.0.1:{_closed_port()}"
    with FakeOpenEdx.start() as fake:
        env = worker_env(
            bootstrap,
            stack.registry_url,
            fake,
            topics=["learning-certificate-lifecycle"],
            group="g",
            CONSUMER_KAFKA_TIMEOUT_SECONDS=str(KAFKA_TIMEOUT),
        )
        started = time.monotonic()
        processes = [
            WorkerProcess(env, argv, tmp_path, f"cmd-{index}")
            for index, argv in enumerate(UNREACHABLE_COMMANDS)
        ]
        codes = [process.wait(timeout=60) for process in processes]
        elapsed = time.monotonic() - started
    assert elapsed < 60
    for argv, process, code in zip(UNREACHABLE_COMMANDS, processes, codes, strict=True):
        stderr = process.log_path.read_text()
        assert code == 1, (argv, stderr)
        assert "Traceback" not in stderr, argv
        lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]  # all JSON
        failed = [line for line in lines if line["event"] == "command_failed"]
        if argv[0] != "check":
            assert len(failed) == 1, (argv, stderr)
            assert failed[0]["reason"] == "kafka_unreachable", argv
            assert bootstrap in failed[0]["error"]
        librdkafka = [line for line in lines if line["event"] == "kafka_client_log"]
        distinct = {re.sub(r"\d+", "N", line["message"]) for line in librdkafka}
        assert len(librdkafka) == len(distinct), (argv, librdkafka)
    check_text = processes[UNREACHABLE_COMMANDS.index(["check"])].out_path.read_text()
    assert any(line.startswith("FAIL") and "kafka" in line for line in check_text.splitlines())
    report = json.loads(
        processes[UNREACHABLE_COMMANDS.index(["check", "--json"])].out_path.read_text()
    )
    assert report["ok"] is False


@pytest.mark.parametrize(
    ("argv", "env", "reason"),
    [
        pytest.param(
            ["replay", "--from-beginning"],
            {"CONSUMER_TOPICS": "it-no-such-topic"},
            "missing_topic",
            id="replay-missing-topic",
        ),
        pytest.param(
            ["dlq", "inspect", "it-no-such-topic.dlq"],
            {},
            "missing_topic",
            id="inspect-missing-topic",
        ),
        pytest.param(
            ["replay", "--from-beginning"],
            {"EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL": "http://127.0.0.1:1"},
            "registry_unreachable",
            id="registry-unreachable",
        ),
    ],
)
def test_expected_failures_are_one_json_line_and_exit_1(
    stack: Stack, topic: str, tmp_path: Path, argv: list[str], env: dict[str, str], reason: str
) -> None:
    """A missing topic or an unreachable registry: exit 1, one ``command_failed`` line."""
    with FakeOpenEdx.start() as fake:
        environment = worker_env(
            stack.bootstrap_servers, stack.registry_url, fake, topics=[topic], group="g", **env
        )
        process = WorkerProcess(environment, argv, tmp_path, "cmd")
        assert process.wait(timeout=60) == 1, process.tail()
    stderr = process.log_path.read_text()
    assert "Traceback" not in stderr
    failures = process.events("command_failed")
    assert len(failures) == 1
    assert failures[0]["reason"] == reason
    assert fake.writes() == []
