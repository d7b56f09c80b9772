"""``credentials-consumer explain`` needs the service variables only, and fails clearly."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
import structlog

from consumer.cli import main
from consumer.cli.exits import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK
from tests.fakes.openedx import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, FakeOpenEdx

RUN = "course-v1:OrgX+A+1T2026"
PROGRAM = "11111111-1111-4111-8111-111111111111"
ARGS = ["explain", "--lms-user-id", "42", "--username", "alice"]


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """``main`` configures structlog onto pytest's captured stderr: put the old set-up back."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment holding none of the worker's variables (no Kafka either)."""
    for name in list(os.environ):
        if name.startswith(("CONSUMER_", "EVENT_BUS_", "BACKEND_SERVICE_")) or name in (
            "CREDENTIALS_INTERNAL_SERVICE_URL",
            "LMS_ROOT_URL",
            "CMS_ROOT_URL",
            "COURSE_CATALOG_API_URL",
            "PROGRAMS_WITHOUT_CERTIFICATES",
        ):
            monkeypatch.delenv(name)
    return monkeypatch


def point_at(environment: pytest.MonkeyPatch, urls: dict[str, str]) -> None:
    environment.setenv("BACKEND_SERVICE_EDX_OAUTH2_PROVIDER_URL", urls["oauth"])
    environment.setenv("BACKEND_SERVICE_EDX_OAUTH2_KEY", DEFAULT_CLIENT_ID)
    environment.setenv("BACKEND_SERVICE_EDX_OAUTH2_SECRET", DEFAULT_CLIENT_SECRET)
    environment.setenv("CREDENTIALS_INTERNAL_SERVICE_URL", urls["credentials"])
    environment.setenv("LMS_ROOT_URL", urls["lms"])
    environment.setenv("COURSE_CATALOG_API_URL", urls["discovery"])


def test_explain_without_service_variables_is_a_configuration_error(
    environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Missing service settings: exit 2 naming the variable; Kafka's are not asked for."""
    assert environment is not None
    assert main(ARGS) == EXIT_CONFIG
    error = capsys.readouterr().err
    assert "BACKEND_SERVICE_EDX_OAUTH2_KEY" in error
    assert "EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS" not in error


def test_explain_runs_without_any_kafka_setting(
    environment: pytest.MonkeyPatch, fake: FakeOpenEdx, capsys: pytest.CaptureFixture[str]
) -> None:
    """With only the service variables set, --json prints the trace and exits 0."""
    fake.add_user("alice", 42)
    fake.add_program(PROGRAM, {"OrgX+A": {RUN: "verified"}})
    fake.add_lms_certificate("alice", RUN)
    fake.add_credential("alice", course_run=RUN, mode="verified")
    point_at(environment, fake.urls)
    assert main([*ARGS, "--json"]) == EXIT_OK
    trace = json.loads(capsys.readouterr().out)
    assert [(item["uuid"], item["verdict"]) for item in trace["programs"]] == [(PROGRAM, "award")]


def test_an_unreachable_service_is_one_line_and_exit_1(
    environment: pytest.MonkeyPatch, fake: FakeOpenEdx, capsys: pytest.CaptureFixture[str]
) -> None:
    """A service that cannot answer: one explain_failed log line, exit 1, no trace printed."""
    point_at(environment, fake.urls)
    fake.set_error("lms", 500, endpoint="certificates_list")
    assert main(ARGS) == EXIT_FAILURE
    out, err = capsys.readouterr()
    logs = [json.loads(line) for line in err.splitlines()]
    (failed,) = [line for line in logs if line["event"] == "explain_failed"]
    assert (failed["lms_user_id"], failed["reason"]) == (42, "http_500")
    assert out == ""
    assert "alice" not in err
    assert "Traceback" not in err
