"""The command line's contract without a broker: exit codes and messages."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator

import pytest
import structlog
from structlog.testing import capture_logs

from consumer.cli.exits import EXIT_CONFIG, EXIT_OK
from consumer.cli.main import build_parser, load_settings, main
from consumer.cli.wiring import install_signal_handlers
from consumer.errors import ConfigErrors
from consumer.events import EventType

REQUIRED = {"EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """An environment holding none of the worker's variables.

    ``main`` configures structlog to write to the (captured) stderr of the test; the
    defaults come back afterwards, so later tests do not write to a closed capture.
    """
    for name in list(os.environ):
        if name.startswith(("CONSUMER_", "EVENT_BUS_", "BACKEND_SERVICE_")):
            monkeypatch.delenv(name)
    yield monkeypatch
    structlog.reset_defaults()


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
    assert main(["schemas", "org.openedx.learning.course.enrollment.created.v1"]) == EXIT_CONFIG
    assert "unknown event type" in capsys.readouterr().err


def test_signal_handler_only_records_the_request() -> None:
    """SIGTERM asks the engine to stop without logging: a handler that logs can deadlock.

    The handler runs on the main thread between any two bytecodes, possibly while that
    thread holds the log writer's lock; so it must not log (or lock) at all.
    """
    requested: list[str] = []
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        install_signal_handlers(requested.append)
        with capture_logs() as logs:
            os.kill(os.getpid(), signal.SIGTERM)  # delivered before kill() returns to Python
        assert requested == ["SIGTERM"]
        assert logs == []
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# ---------------------------------------------------------------------------- per-command settings

SERVICE_VARIABLES = {
    "BACKEND_SERVICE_EDX_OAUTH2_PROVIDER_URL",
    "BACKEND_SERVICE_EDX_OAUTH2_KEY",
    "BACKEND_SERVICE_EDX_OAUTH2_SECRET",
    "CREDENTIALS_INTERNAL_SERVICE_URL",
    "LMS_ROOT_URL",
}
SERVICES = {
    "BACKEND_SERVICE_EDX_OAUTH2_PROVIDER_URL": "https://lms.example.com/oauth2",
    "BACKEND_SERVICE_EDX_OAUTH2_KEY": "id",
    "BACKEND_SERVICE_EDX_OAUTH2_SECRET": "secret",
    "CREDENTIALS_INTERNAL_SERVICE_URL": "https://credentials.example.com",
    "LMS_ROOT_URL": "https://lms.example.com",
}
KAFKA_ONLY: set[str] = set()

COMMANDS = [
    pytest.param(["run"], SERVICE_VARIABLES, id="run"),
    pytest.param(["run", "--dry-run"], KAFKA_ONLY, id="run --dry-run"),
    pytest.param(["check"], SERVICE_VARIABLES, id="check"),
    pytest.param(["dlq", "inspect", "t.dlq"], KAFKA_ONLY, id="dlq inspect"),
    pytest.param(["dlq", "redrive", "t.dlq"], SERVICE_VARIABLES, id="dlq redrive"),
    pytest.param(["dlq", "redrive", "t.dlq", "--dry-run"], KAFKA_ONLY, id="dlq redrive --dry-run"),
    pytest.param(["replay", "--from-beginning"], SERVICE_VARIABLES, id="replay"),
    pytest.param(["replay", "--group-id", "g.replay.x"], SERVICE_VARIABLES, id="replay resume"),
    pytest.param(["replay", "--from-beginning", "--plan"], KAFKA_ONLY, id="replay --plan"),
    pytest.param(["replay", "--from-beginning", "--dry-run"], KAFKA_ONLY, id="replay --dry-run"),
    pytest.param(["offsets", "show"], KAFKA_ONLY, id="offsets show"),
    pytest.param(["offsets", "reset", "--to-latest", "--execute"], KAFKA_ONLY, id="offsets reset"),
]


@pytest.mark.parametrize(("argv", "services"), COMMANDS)
def test_each_command_requires_only_the_variables_it_uses(
    argv: list[str], services: set[str]
) -> None:
    """With nothing set, each command names exactly what it needs: Kafka, and services if used."""
    args = build_parser().parse_args(argv)
    with pytest.raises(ConfigErrors) as caught:
        load_settings(args, {})
    assert {error.variable for error in caught.value.errors} == {
        "EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS",
        *services,
    }
    needed = {"EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS": "kafka:9092"}
    if services:
        needed.update(SERVICES)
    settings = load_settings(args, needed)
    assert (settings.services is not None) == bool(services)


@pytest.mark.parametrize(("argv", "services"), COMMANDS)
def test_kafka_only_commands_ignore_broken_service_variables(
    argv: list[str], services: set[str]
) -> None:
    """A command that calls no service does not even read (so cannot trip on) its variables."""
    args = build_parser().parse_args(argv)
    env = {"EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS": "kafka:9092", "LMS_ROOT_URL": "http://[::1"}
    if services:
        with pytest.raises(ConfigErrors):
            load_settings(args, env)
    else:
        assert load_settings(args, env).services is None


def test_every_configuration_error_is_printed_at_once(
    environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """One start names every bad variable, one line each, and exits 2."""
    environment.setenv("EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS", "kafka")
    environment.setenv("CONSUMER_MAX_IN_FLIGHT", "1" + "0" * 400)
    environment.setenv("CONSUMER_LOG_FORMAT", "xml")
    assert main(["run"]) == EXIT_CONFIG
    lines = capsys.readouterr().err.splitlines()
    named = {
        line.removeprefix("credentials-consumer: configuration error: ").split(":")[0]
        for line in lines
    }
    assert named == {
        "EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS",
        "CONSUMER_MAX_IN_FLIGHT",
        "CONSUMER_LOG_FORMAT",
        *SERVICE_VARIABLES,
    }
    assert all(line.startswith("credentials-consumer: configuration error: ") for line in lines)
    assert "Traceback" not in "\n".join(lines)


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["replay", "--from-datetime", "yesterday"], id="not a date"),
        pytest.param(["replay", "--from-offset", "0-5"], id="not P:O"),
        pytest.param(["replay", "--from-beginning", "--from-offset", "0:5"], id="two starts"),
        pytest.param(["replay", "--from-beginning", "--max-rate", "-3"], id="negative rate"),
        pytest.param(["offsets", "reset"], id="no target"),
        pytest.param(["offsets", "reset", "--to-earliest", "--to-latest"], id="two targets"),
    ],
)
def test_bad_arguments_exit_2(
    argv: list[str], environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Malformed or conflicting arguments are usage errors: exit 2 with a message."""
    environment.setenv("EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == EXIT_CONFIG
    assert "error:" in capsys.readouterr().err


def test_replay_without_a_start_is_a_usage_error(
    environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A new replay must say where to start; the message lists the ways (exit 2, no broker)."""
    environment.setenv("EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    environment.setenv("CONSUMER_KAFKA_TIMEOUT_SECONDS", "1")
    assert main(["replay", "--plan"]) == EXIT_CONFIG
    assert "--from-datetime" in capsys.readouterr().err


def test_replay_refuses_the_live_group(
    environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--group-id`` of the live group is refused before anything is asked of the broker."""
    environment.setenv("EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    environment.setenv("CONSUMER_GROUP_ID", "live")
    assert main(["replay", "--group-id", "live", "--plan"]) == EXIT_CONFIG
    assert "live group" in capsys.readouterr().err
