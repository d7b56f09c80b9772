"""``dlq inspect`` (summarise a dead-letter topic) and ``dlq redrive`` (apply it again)."""

from __future__ import annotations

import argparse
import json
from contextlib import ExitStack
from typing import Any

from consumer.cli.exits import EXIT_FAILURE, EXIT_OK
from consumer.cli.wiring import (
    admin,
    build_engine,
    client_config,
    install_signal_handlers,
    probe_registry,
)
from consumer.config import Settings
from consumer.deadletter.inspect import inspect_topic
from consumer.engine import HeldFailures
from consumer.observability import Health, Metrics


def add_parser(commands: Any) -> None:  # noqa: ANN401 - argparse's subparsers action is private
    """``dlq inspect TOPIC`` and ``dlq redrive TOPIC``."""
    dlq = commands.add_parser("dlq", help="dead-letter topics").add_subparsers(
        dest="dlq", required=True
    )
    inspect = dlq.add_parser("inspect", help="summarise a dead-letter topic")
    inspect.add_argument("topic")
    inspect.add_argument("--samples", type=int, default=5, help="records shown in full (default 5)")
    inspect.add_argument("--json", action="store_true", help="print the summary as JSON")
    inspect.set_defaults(func=cmd_dlq_inspect, services=False)
    redrive = dlq.add_parser("redrive", help="apply a dead-letter topic again")
    redrive.add_argument("topic")
    redrive.add_argument("--dry-run", action="store_true", help="print the commands, apply nothing")
    redrive.add_argument("--group", help="consumer group (default: CONSUMER_GROUP_ID + '.redrive')")
    redrive.add_argument(
        "--idle-seconds", type=float, default=3.0, help="stop once caught up this long (default 3)"
    )
    redrive.set_defaults(func=cmd_dlq_redrive, services=True)


def cmd_dlq_inspect(args: argparse.Namespace, settings: Settings) -> int:
    """Summarise a dead-letter topic for a person (or as JSON)."""
    with admin(settings) as kafka_admin:
        kafka_admin.topics([args.topic])
    summary = inspect_topic(client_config(settings), args.topic, samples=args.samples)
    print(json.dumps(summary.to_json(), indent=2) if args.json else summary.render())  # noqa: T201
    return EXIT_OK


def cmd_dlq_redrive(args: argparse.Namespace, settings: Settings) -> int:
    """Feed a dead-letter topic back through the pipeline; consume only what now succeeds."""
    metrics, health = Metrics(), Health()
    group = args.group or f"{settings.kafka.group_id}.redrive"
    with admin(settings) as kafka_admin:
        kafka_admin.topics([args.topic])
    probe_registry(settings)
    with ExitStack() as stack:
        engine = build_engine(
            settings,
            stack,
            topics=[args.topic],
            group_id=group,
            dry_run=settings.dry_run,
            sink=HeldFailures(),
            metrics=metrics,
            health=health,
            stop_when_idle=args.idle_seconds,
        )
        install_signal_handlers(engine.request_stop)
        engine.run()
    tally = engine.tally
    print(  # noqa: T201
        f"redrive of {args.topic} (group {group}): applied {tally.applied}, "
        f"skipped {tally.skipped}, still failing {tally.held}"
    )
    return EXIT_OK if tally.held == 0 else EXIT_FAILURE
