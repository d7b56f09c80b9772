"""``schemas``: list the consumed event types, or print the reader schema of one."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from consumer.cli.exits import EXIT_CONFIG, EXIT_OK
from consumer.events import EventType
from consumer.wire import load_reader_schemas


def add_parser(commands: Any) -> None:  # noqa: ANN401 - argparse's subparsers action is private
    """``schemas [EVENT_TYPE]``: needs no settings at all."""
    schemas = commands.add_parser("schemas", help="list consumed event types or print a schema")
    schemas.add_argument("event_type", nargs="?")
    schemas.set_defaults(func=cmd_schemas, standalone=True)


def cmd_schemas(args: argparse.Namespace) -> int:
    """List the consumed event types, or print the reader schema of one."""
    schemas = load_reader_schemas()
    if args.event_type:
        try:
            print(json.dumps(schemas[EventType(args.event_type)], indent=2))  # noqa: T201
        except ValueError:
            known = ", ".join(event_type.value for event_type in EventType)
            print(  # noqa: T201
                f"credentials-consumer: unknown event type {args.event_type!r} (known: {known})",
                file=sys.stderr,
            )
            return EXIT_CONFIG
        return EXIT_OK
    for event_type in EventType:
        print(event_type.value)  # noqa: T201
    return EXIT_OK
