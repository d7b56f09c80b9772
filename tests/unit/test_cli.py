"""The command line's contract without a broker: exit codes and messages."""

from __future__ import annotations

import json
import os
import signal

import pytest
from structlog.testing import capture_logs

from consumer.cli import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, _install_signal_handlers, main
from consumer.events import EventType

REQUIRED = {"EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment holding none of the worker's variables."""
    for name in list(os.environ):
        if name.startswith(("CONSUMER_", "EVENT_BUS_", "BACKEND_SERVICE_")):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.mark.parametrize(
    ("env", "argv", "variable"),
    [
        pytest.param({}, ["run"], "EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS", id="no bootstrap servers"),
        pytest.param(
            {**REQUIRED, "CONSUMER_MAX_IN_FLIGHT": "many"},
            ["run", "--dry-run"],
            "CONSUMER_MAX_IN_FLIGHT",
            id="bad number",
        ),
        pytest.param(
            REQUIRED, ["run"], "BACKEND_SERVICE_EDX_OAUTH2_KEY", id="services outside dry-run"
        ),
        pytest.param(
            {**REQUIRED, "EVENT_BUS_KAFKA_API_KEY": "k"},
            ["check"],
            "EVENT_BUS_KAFKA_API_SECRET",
            id="half a key pair",
        ),
        pytest.param(
            {**REQUIRED, "CONSUMER_DRY_RUN": "true", "CONSUMER_LOG_FORMAT": "xml"},
            ["dlq", "inspect", "t.dlq"],
            "CONSUMER_LOG_FORMAT",
            id="bad choice",
        ),
    ],
)
def test_bad_configuration_exits_2_naming_the_variable(
    environment: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    argv: list[str],
    variable: str,
) -> None:
    """Start-up stops with exit code 2 and a message that names the offending variable."""
    for name, value in env.items():
        environment.setenv(name, value)
    assert main(argv) == EXIT_CONFIG
    error = capsys.readouterr().err
    assert error.startswith("credentials-consumer: configuration error: ")
    assert variable in error


def test_secrets_are_not_echoed_in_configuration_errors(
    environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A half-configured OAuth pair names the missing variable, never the secret's value."""
    environment.setenv("EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    environment.setenv("BACKEND_SERVICE_EDX_OAUTH2_SECRET", "hunter2-very-secret")
    assert main(["run"]) == EXIT_CONFIG
    assert "hunter2" not in capsys.readouterr().err


def test_schemas_lists_every_consumed_event_type(capsys: pytest.CaptureFixture[str]) -> None:
    """``schemas`` needs no configuration and lists the four event types."""
    assert main(["schemas"]) == EXIT_OK
    assert capsys.readouterr().out.split() == [str(event_type) for event_type in EventType]


def test_schemas_prints_one_reader_schema(capsys: pytest.CaptureFixture[str]) -> None:
    """``schemas TYPE`` prints the parsed reader schema of that type as JSON."""
    assert main(["schemas", str(EventType.CATALOG_INFO_CHANGED)]) == EXIT_OK
    schema = json.loads(capsys.readouterr().out)
    assert schema["name"] == f"{EventType.CATALOG_INFO_CHANGED}.CloudEvent"


def test_schemas_of_an_unknown_type_fails(capsys: pytest.CaptureFixture[str]) -> None:
    """An event type the worker does not consume is an error, not an empty answer."""
    assert main(["schemas", "org.openedx.learning.course.enrollment.created.v1"]) == EXIT_FAILURE
    assert "unknown event type" in capsys.readouterr().err


def test_signal_handler_only_records_the_request() -> None:
    """SIGTERM asks the engine to stop without logging: a handler that logs can deadlock.

    The handler runs on the main thread between any two bytecodes, possibly while that
    thread holds the log writer's lock; so it must not log (or lock) at all.
    """
    requested: list[str] = []
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        _install_signal_handlers(requested.append)
        with capture_logs() as logs:
            os.kill(os.getpid(), signal.SIGTERM)  # delivered before kill() returns to Python
        assert requested == ["SIGTERM"]
        assert logs == []
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
