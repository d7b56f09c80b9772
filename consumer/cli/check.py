"""``check``: validate the configuration and reach Kafka, the registry and every service."""

from __future__ import annotations

import argparse
from typing import Any

from consumer.checks import Finding, exit_ok, kafka_findings, registry_finding
from consumer.cli.exits import EXIT_FAILURE, EXIT_OK, print_json
from consumer.cli.wiring import admin, services
from consumer.config import Settings, describe
from consumer.guard import ServiceGuard, configured_services
from consumer.observability import Metrics
from consumer.services.check import run_checks


def add_parser(commands: Any) -> None:  # noqa: ANN401 - argparse's subparsers action is private
    """``check [--json]``."""
    check = commands.add_parser("check", help="validate configuration and reach every dependency")
    check.add_argument(
        "--json", action="store_true", help="print the configuration and checks as JSON"
    )
    check.set_defaults(func=cmd_check, services=True)


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    """Validate configuration and reach Kafka, the registry and each configured service."""
    with admin(settings) as kafka_admin:
        findings = kafka_findings(kafka_admin, settings.kafka)
    findings.append(registry_finding(settings.kafka))
    if settings.services is not None:
        metrics = Metrics()
        guard = ServiceGuard.for_services(
            settings.circuit, metrics, configured_services(settings.services)
        )
        with services(settings, guard, metrics) as clients:
            findings += [Finding.of(result) for result in run_checks(clients)]
    else:
        findings.append(Finding("services", "ok", "dry-run: not called"))
    rows = describe(settings)
    if args.json:
        print_json(
            {
                "configuration": dict(rows),
                "checks": [finding.to_json() for finding in findings],
                "ok": exit_ok(findings),
            }
        )
    else:
        print("configuration: ok")  # noqa: T201 - a command for people
        for name, value in rows:
            print(f"  {name} = {value}")  # noqa: T201
        for finding in findings:
            print(finding.line())  # noqa: T201
    return EXIT_OK if exit_ok(findings) else EXIT_FAILURE
