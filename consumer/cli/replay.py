"""``replay``: a fixed range of the consumed topics through the pipeline, resumable.

The plan first (``--plan`` alone prints it), in a group of its own whose commit metadata
keeps the range, so ``--group-id`` of an interrupted replay resumes it over the same range.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any, TextIO

import structlog

from consumer import replay
from consumer.cli.exits import EXIT_FAILURE, EXIT_OK, print_json
from consumer.cli.wiring import (
    admin,
    build_engine,
    consumed_topics,
    dead_letter_sink,
    install_signal_handlers,
    probe_registry,
    serve_if_free,
)
from consumer.config import Settings
from consumer.deadletter.topics import ensure_dead_letter_topics
from consumer.errors import ConsumerError, UsageError
from consumer.kafka_admin import KafkaAdmin, TopicInfo
from consumer.observability import Health, Metrics
from consumer.positions import AtTime, Earliest, Position, parse_datetime, parse_offsets
from consumer.progress import Reporter

log = structlog.get_logger("consumer.cli")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 86_400:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 86400")
    return value


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 100_000:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 100000")
    return value


def add_parser(commands: Any) -> None:  # noqa: ANN401 - argparse's subparsers action is private
    """``replay (--from-...) [--to-datetime] [--topic] [--group-id] [--plan] [--dry-run]...``."""
    replay_cmd = commands.add_parser(
        "replay",
        help="replay a range of the consumed topics through the pipeline (backfill)",
        description="Replay a fixed range of the consumed topics, in a consumer group of its "
        "own, through the worker's pipeline. The plan is printed first; the end of each "
        "partition is fixed when the replay starts. Rerun with --group-id to resume.",
    )
    start = replay_cmd.add_mutually_exclusive_group()
    start.add_argument(
        "--from-datetime",
        type=parse_datetime,
        metavar="ISO",
        help="start at the first record at or after this time (no zone: UTC)",
    )
    start.add_argument(
        "--from-offset",
        type=parse_offsets,
        metavar="P:O[,P:O...]",
        help="start at these offsets of these partitions (TOPIC:P:O with several topics)",
    )
    start.add_argument(
        "--from-beginning", action="store_true", help="start at the beginning of the log"
    )
    replay_cmd.add_argument(
        "--to-datetime",
        type=parse_datetime,
        metavar="ISO",
        help="stop before the first record at or after this time (default: the end now)",
    )
    replay_cmd.add_argument(
        "--topic",
        action="append",
        metavar="TOPIC",
        help="a consumed topic to replay (repeatable; default: every consumed topic)",
    )
    replay_cmd.add_argument(
        "--group-id",
        metavar="GROUP",
        help="the replay's group (default: <CONSUMER_GROUP_ID>.replay.<UTC time>); "
        "an interrupted replay's group resumes it",
    )
    replay_cmd.add_argument(
        "--plan", action="store_true", help="print the plan and exit without consuming"
    )
    replay_cmd.add_argument(
        "--dry-run", action="store_true", help="print the commands as JSON lines, apply nothing"
    )
    replay_cmd.add_argument(
        "--output", metavar="FILE", help="with --dry-run: write the commands to FILE"
    )
    replay_cmd.add_argument(
        "--max-rate",
        type=_rate,
        metavar="N",
        help="start at most N events per second (default: CONSUMER_MAX_RATE; 0: no cap)",
    )
    replay_cmd.add_argument(
        "--progress-interval",
        type=_positive,
        default=10.0,
        metavar="SECONDS",
        help="without a terminal: log progress every SECONDS (default 10)",
    )
    replay_cmd.add_argument("--json", action="store_true", help="plan and summary as JSON")
    replay_cmd.set_defaults(func=cmd_replay, services=True)


def _replay_start(args: argparse.Namespace) -> Position | None:
    if args.from_beginning:
        return Earliest()
    start: Position | None = args.from_datetime or args.from_offset
    return start


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    """Replay a fixed range through the pipeline, in a group of its own; resumable."""
    if args.max_rate is not None:
        settings = dataclasses.replace(
            settings, engine=dataclasses.replace(settings.engine, max_rate=args.max_rate)
        )
    if args.output:
        settings = dataclasses.replace(settings, dry_run_output=args.output)
    # A start below the log's start (records expired since the plan) goes to the earliest
    # record still there, never to the end: "latest" would skip the rest of the range.
    settings = dataclasses.replace(
        settings, kafka=dataclasses.replace(settings.kafka, auto_offset_reset="earliest")
    )
    kafka = settings.kafka
    dry_run = settings.dry_run
    group = args.group_id or replay.default_group(kafka.group_id, datetime.now(UTC))
    if group == kafka.group_id:
        raise UsageError(f"--group-id {group} is the live group: a replay needs its own")
    # With the commands on stdout (a dry run without --output), people's text goes to stderr.
    report = sys.stderr if dry_run and settings.dry_run_output in (None, "-") else sys.stdout
    with admin(settings) as kafka_admin:
        plan = replay.stored_plan(kafka_admin, group, dry_run=dry_run) if args.group_id else None
        if plan is None:
            plan = _new_plan(args, settings, kafka_admin, group)
        else:
            kafka_admin.topics(sorted({item.topic for item in plan.ranges}))
            if _replay_start(args) is not None or args.topic or args.to_datetime:
                log.warning(
                    "replay_range_options_ignored",
                    group=group,
                    why="resuming: the range stored in the group when the replay started is used",
                )
        if args.json:
            print_json(plan.to_json(), report)
        else:
            print(plan.render(), file=report)
        if args.plan:
            return EXIT_OK
        probe_registry(settings)  # before anything is recorded
        if not dry_run:
            _refuse_active_group(kafka_admin, group)
            if not plan.resumed:
                replay.record(kafka_admin, plan)
            ensure_dead_letter_topics(kafka_admin, kafka)
    return _run(args, settings, plan, report)


def _new_plan(
    args: argparse.Namespace, settings: Settings, kafka_admin: KafkaAdmin, group: str
) -> replay.Plan:
    start = _replay_start(args)
    if start is None:
        raise UsageError(
            "say where to start: --from-datetime, --from-offset or --from-beginning "
            "(or --group-id of an interrupted replay, to resume it)"
        )
    to: AtTime | None = args.to_datetime
    if to is not None and isinstance(start, AtTime) and to.timestamp_ms < start.timestamp_ms:
        raise UsageError(f"--to-datetime {to.text} is before --from-datetime {start.text}")
    topics: dict[str, TopicInfo] = kafka_admin.topics(consumed_topics(args.topic, settings))
    return replay.new_plan(
        kafka_admin,
        topics,
        group=group,
        start=start,
        to=to,
        now=datetime.now(UTC),
        dry_run=settings.dry_run,
    )


def _refuse_active_group(kafka_admin: KafkaAdmin, group: str) -> None:
    info = kafka_admin.group(group)
    if info.members:
        raise ConsumerError(
            f"group {group} has {len(info.members)} active member(s): is this replay "
            "running elsewhere? Stop it first",
            reason="group_active",
        )


def _run(args: argparse.Namespace, settings: Settings, plan: replay.Plan, report: TextIO) -> int:
    metrics, health = Metrics(), Health()
    server = serve_if_free(metrics, health, settings.metrics_port)
    progress = replay.progress_of(plan, metrics)
    completed = plan.remaining == 0
    tally: dict[str, int] = {"applied": 0, "skipped": 0, "dead_lettered": 0, "held": 0}
    if not completed:
        log.info(
            "replay_starting",
            group=plan.group,
            records=plan.remaining,
            max_rate=settings.engine.max_rate or None,
            dry_run=settings.dry_run,
        )
        with ExitStack() as stack:
            engine = build_engine(
                settings,
                stack,
                topics=sorted({item.topic for item in plan.ranges}),
                group_id=plan.group,
                dry_run=settings.dry_run,
                sink=dead_letter_sink(settings, plan.group),
                metrics=metrics,
                health=health,
                stop_when_idle=None,
                bounds=replay.ReplayBounds(plan, progress),
            )
            terminal = sys.stderr if sys.stderr.isatty() else None
            reporter = Reporter(progress, terminal=terminal, interval=args.progress_interval)
            install_signal_handlers(engine.request_stop)
            reporter.start()
            try:
                engine.run()
            finally:
                if engine.completed:
                    progress.complete()
                reporter.stop()
        completed = engine.completed
        tally = dataclasses.asdict(engine.tally)
    if server is not None:
        server.shutdown()
    overall = progress.overall()
    summary = replay.Summary(
        group=plan.group,
        completed=completed,
        dry_run=settings.dry_run,
        elapsed_seconds=progress.elapsed,
        planned=overall.total,
        done=overall.done,
        events=tally,
        commands=replay.commands_by_kind(metrics),
        dead_letters=tally["dead_lettered"],
    )
    if args.json:
        print_json(summary.to_json(), report)
    else:
        print(summary.render(), file=report)
    log.info("replay_finished", **summary.to_json())
    return EXIT_OK if completed else EXIT_FAILURE
