"""``run``: the worker — consume, apply, dead-letter; until SIGTERM (or idle, with the flag)."""

from __future__ import annotations

import argparse
from contextlib import ExitStack
from typing import Any

import structlog

from consumer import __version__
from consumer.cli.exits import EXIT_OK
from consumer.cli.wiring import admin, build_engine, dead_letter_sink, install_signal_handlers
from consumer.config import Settings, describe
from consumer.deadletter.topics import ensure_dead_letter_topics
from consumer.observability import Health, Metrics, serve

log = structlog.get_logger("consumer.cli")


def add_parser(commands: Any) -> None:  # noqa: ANN401 - argparse's subparsers action is private
    """``run [--dry-run] [--stop-when-idle SECONDS]``."""
    run = commands.add_parser("run", help="run the worker")
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="print the commands as JSON lines, call no service (as CONSUMER_DRY_RUN=true)",
    )
    run.add_argument(
        "--stop-when-idle",
        type=float,
        metavar="SECONDS",
        help="exit 0 once every assigned partition is caught up and idle this long",
    )
    run.set_defaults(func=cmd_run, services=True)


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """The worker: consume, apply, dead-letter; until SIGTERM (or idle, with the flag)."""
    metrics, health = Metrics(), Health()
    server = serve(metrics, health, settings.metrics_port) if settings.metrics_port else None
    log.info(
        "worker_starting",
        version=__version__,
        dry_run=settings.dry_run,
        settings=dict(describe(settings)),
    )
    if not settings.policy.programs_enabled:
        log.warning("programs_disabled", why="COURSE_CATALOG_API_URL is not set: no program awards")
    with admin(settings) as kafka_admin:  # a broker that cannot be reached: exit 1 now
        kafka_admin.existing_topics(settings.kafka.full_topics)
        if not settings.dry_run:
            ensure_dead_letter_topics(kafka_admin, settings.kafka)
    with ExitStack() as stack:
        metrics.expect_topics(
            settings.kafka.full_topics,
            ()
            if settings.dry_run
            else map(settings.kafka.dead_letter_topic, settings.kafka.full_topics),
        )
        engine = build_engine(
            settings,
            stack,
            topics=settings.kafka.full_topics,
            group_id=settings.kafka.group_id,
            dry_run=settings.dry_run,
            sink=dead_letter_sink(settings, settings.kafka.group_id),
            metrics=metrics,
            health=health,
            stop_when_idle=args.stop_when_idle,
        )
        install_signal_handlers(engine.request_stop)
        engine.run()
    if server is not None:
        server.shutdown()
    return EXIT_OK
