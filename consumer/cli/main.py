"""The entry point: parse the command line, load the settings the command uses, run it.

An expected failure — a broker or registry that cannot be reached, a missing topic or
group, a refused reset — is one JSON log line on stderr (``command_failed``) and exit 1,
never a traceback; a configuration error names every bad variable and exits 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence

import structlog
from confluent_kafka import KafkaException

from consumer import __version__, config
from consumer.cli import check, dlq, explain, offsets, replay, run, schemas
from consumer.cli.exits import EXIT_CONFIG, EXIT_FAILURE, config_error
from consumer.config import Settings
from consumer.errors import ConfigError, ConsumerError, UsageError
from consumer.observability import configure_logging

log = structlog.get_logger("consumer.cli")

Command = Callable[[argparse.Namespace, Settings], int]


def build_parser() -> argparse.ArgumentParser:
    """The ``credentials-consumer`` parser: each command module adds its own subcommand.

    A subcommand sets ``func`` and either ``services`` (whether it applies events for
    real, so needs the service settings) or ``standalone`` (it loads what it needs).
    """
    parser = argparse.ArgumentParser(
        prog="credentials-consumer",
        description="Keep Open edX Credentials in step with the Open edX event bus. "
        "Configured by environment variables (see the README).",
    )
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)
    for command in (run, replay, offsets, check, dlq, schemas, explain):
        command.add_parser(commands)
    return parser


def load_settings(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    """The settings ``args``'s command uses; ``ConfigErrors`` names every bad variable.

    Services are required only by commands that apply events for real: ``run``, ``check``,
    ``dlq redrive`` and ``replay``, not with ``--dry-run`` (or ``CONSUMER_DRY_RUN``), and
    not ``replay --plan``.
    """
    env = dict(environ)
    if getattr(args, "dry_run", False):
        env["CONSUMER_DRY_RUN"] = "true"  # the flag wins, and services need no settings
    services = bool(args.services) and not getattr(args, "plan", False)
    return config.load(env, with_services=services)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``credentials-consumer`` and ``python -m consumer``."""
    args = build_parser().parse_args(argv)
    if getattr(args, "standalone", False):
        standalone: Callable[[argparse.Namespace], int] = args.func
        return standalone(args)
    command: Command = args.func
    try:
        settings = load_settings(args, os.environ)
    except ConfigError as error:
        return config_error(error)
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    return _run_command(command, args, settings)


def _run_command(command: Command, args: argparse.Namespace, settings: Settings) -> int:
    """Run ``command``; an expected failure is one JSON line and exit 1, not a traceback."""
    try:
        return command(args, settings)
    except KeyboardInterrupt:
        return EXIT_FAILURE
    except UsageError as error:
        print(f"credentials-consumer: {error}", file=sys.stderr)  # noqa: T201
        return EXIT_CONFIG
    except (ConsumerError, KafkaException) as error:
        reason = error.reason if isinstance(error, ConsumerError) else "kafka_error"
        log.error(  # noqa: TRY400 - one clear line is the point; a traceback would bury it
            "command_failed", command=_name(args), reason=reason, error=str(error)
        )
        return EXIT_FAILURE


def _name(args: argparse.Namespace) -> str:
    sub = getattr(args, "dlq", None) or getattr(args, "offsets", None)
    return f"{args.command} {sub}" if sub else str(args.command)
