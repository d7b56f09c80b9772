"""``explain``: why a learner has, or lacks, a program credential (read-only)."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

import structlog

from consumer import config, explain
from consumer.cli.exits import EXIT_FAILURE, EXIT_OK, config_error
from consumer.errors import ConfigError, ConsumerError
from consumer.observability import configure_logging
from consumer.services.bundle import build_services
from consumer.services.redaction import redact_text

log = structlog.get_logger("consumer.cli")


def add_parser(commands: Any) -> None:  # noqa: ANN401 - argparse's subparsers action is private
    """``explain --lms-user-id N --username U [--program UUID] [--course-run KEY] [--json]``."""
    parser = commands.add_parser(
        "explain", help="why a learner has, or lacks, a program credential (read-only)"
    )
    parser.add_argument("--lms-user-id", type=int, required=True, help="the learner's LMS id")
    parser.add_argument(
        "--username", required=True, help="the learner's username (Credentials keys by it)"
    )
    parser.add_argument("--program", metavar="UUID", help="only this program")
    parser.add_argument(
        "--course-run", metavar="KEY", help="also: course-certificate sync and CAD of this run"
    )
    parser.add_argument("--json", action="store_true", help="print the trace as JSON")
    parser.set_defaults(func=cmd_explain, standalone=True)


def cmd_explain(args: argparse.Namespace) -> int:
    """Why a learner has, or lacks, a program credential: a read-only decision trace.

    Loads its own settings (the services and the policy; no Kafka), reads with GETs only,
    prints the trace (a tree, or ``--json``). A service that cannot answer is one log line
    and exit 1; a configuration error exit 2.
    """
    try:
        settings = config.load_explain(os.environ)
    except ConfigError as error:
        return config_error(error)
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    question = explain.Question(
        lms_user_id=args.lms_user_id,
        username=args.username,
        program=args.program,
        course_run=args.course_run,
    )
    judge = explain.Judge.build(settings.policy, settings.certificate_dead_letter_topics)
    services = build_services(settings.services)
    try:
        trace = explain.explain(services, judge, question)
    except ConsumerError as error:
        log.error(  # noqa: TRY400 - one clear line; a traceback adds nothing
            "explain_failed",
            lms_user_id=args.lms_user_id,
            reason=error.reason,
            error=redact_text(str(error), (args.username,)),
        )
        return EXIT_FAILURE
    finally:
        services.close()
    if args.json:
        print(json.dumps(trace.to_json(), indent=2, sort_keys=True))  # noqa: T201
    else:
        print(explain.render(trace), end="")  # noqa: T201
    return EXIT_OK
