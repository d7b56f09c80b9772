"""``offsets show`` (a group's offsets, lag and members) and ``offsets reset`` (a plan first)."""

from __future__ import annotations

import argparse
from typing import Any

from consumer import groups
from consumer.cli.exits import EXIT_OK, print_json
from consumer.cli.wiring import admin, consumed_topics
from consumer.config import Settings
from consumer.positions import Earliest, Latest, Position, parse_datetime, parse_offsets


def add_parser(commands: Any) -> None:  # noqa: ANN401 - argparse's subparsers action is private
    """``offsets show`` and ``offsets reset (--to-...) [--execute]``."""
    offsets = commands.add_parser("offsets", help="show or reset a consumer group's offsets")
    actions = offsets.add_subparsers(dest="offsets", required=True)
    show = actions.add_parser("show", help="committed offsets, end offsets, lag and members")
    show.add_argument("--group", help="consumer group (default: CONSUMER_GROUP_ID)")
    show.add_argument("--json", action="store_true", help="print as JSON")
    show.set_defaults(func=cmd_offsets_show, services=False)
    reset = actions.add_parser(
        "reset",
        help="move a group's offsets (a plan unless --execute)",
        description="Compute new offsets for the group and print them; write them only with "
        "--execute, and only while the group has no active member.",
    )
    target = reset.add_mutually_exclusive_group(required=True)
    target.add_argument("--to-datetime", type=parse_datetime, metavar="ISO")
    target.add_argument("--to-offset", type=parse_offsets, metavar="P:O[,P:O...]")
    target.add_argument("--to-earliest", action="store_true")
    target.add_argument("--to-latest", action="store_true")
    reset.add_argument("--group", help="consumer group (default: CONSUMER_GROUP_ID)")
    reset.add_argument(
        "--topic", action="append", metavar="TOPIC", help="a consumed topic (default: all)"
    )
    reset.add_argument("--execute", action="store_true", help="write the new offsets")
    reset.add_argument("--json", action="store_true", help="print the plan as JSON")
    reset.set_defaults(func=cmd_offsets_reset, services=False)


def cmd_offsets_show(args: argparse.Namespace, settings: Settings) -> int:
    """A group's committed offsets, end offsets and lag, its state and members."""
    group = args.group or settings.kafka.group_id
    with admin(settings) as kafka_admin:
        shown = groups.show(kafka_admin, group, settings.kafka.full_topics)
    if args.json:
        print_json(shown.to_json())
    else:
        print(shown.render())  # noqa: T201
    return EXIT_OK


def _reset_target(args: argparse.Namespace) -> Position:
    if args.to_earliest:
        return Earliest()
    if args.to_latest:
        return Latest()
    target: Position = args.to_datetime or args.to_offset
    return target


def cmd_offsets_reset(args: argparse.Namespace, settings: Settings) -> int:
    """Move a group's offsets: a plan, written only with ``--execute`` and an idle group."""
    group = args.group or settings.kafka.group_id
    with admin(settings) as kafka_admin:
        topics = kafka_admin.topics(consumed_topics(args.topic, settings))
        plan = groups.reset_plan(kafka_admin, group, topics, _reset_target(args))
        if not args.json:
            print(plan.render())  # noqa: T201
        if args.execute:
            groups.execute(kafka_admin, plan)
    if args.json:
        print_json({**plan.to_json(), "executed": bool(args.execute)})
    else:
        print(  # noqa: T201
            f"offsets of group {group} reset"
            if args.execute
            else "nothing changed: run again with --execute to apply this plan"
        )
    return EXIT_OK
