"""``python -m tests.chaos``: run a soak and audit it (``make chaos``).

    python -m tests.chaos                    # 50,000 events, every fault (make chaos)
    python -m tests.chaos --events 5000      # fewer events, same faults, same rate
    python -m tests.chaos --small            # the version make test runs
    python -m tests.chaos audit DIR          # audit a saved run again

Prints the audit table and exits 1 when anything is lost, wrong, out of order or leaked,
or when the dead letters differ from what was injected.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from tests.chaos.audit import audit
from tests.chaos.soak import Soak, SoakParams, log
from tests.chaos.stack import ROOT


def _report(workdir: Path) -> int:
    report = audit(workdir)
    table = report.table()
    (workdir / "audit.md").write_text(table + "\n")
    (workdir / "audit-details.json").write_text(json.dumps(report.details, indent=1))
    print(table)
    for name, items in report.details.items():
        if items:
            print(f"\n{name} ({len(items)}), first ones:", *items[:10], sep="\n  ")
    print(f"\nsaved in {workdir}")
    return 0 if report.passed else 1


def _interrupted(signum: int, _frame: FrameType | None) -> None:
    """SIGTERM ends the soak the way Ctrl-C does: its stack, fake and workers are stopped."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Run a soak (or re-audit one) and print the audit."""
    signal.signal(signal.SIGTERM, _interrupted)
    parser = argparse.ArgumentParser(
        prog="python -m tests.chaos", description=__doc__.split("\n")[0]
    )
    parser.add_argument("command", nargs="?", choices=["run", "audit"], default="run")
    parser.add_argument("directory", nargs="?", type=Path, help="work directory (audit: required)")
    parser.add_argument("--events", type=int, help="events to publish (default 50,000)")
    parser.add_argument("--rate", type=float, help="events published per second (default 100)")
    parser.add_argument("--seed", type=int, help="seed of the workload and the failures")
    parser.add_argument("--small", action="store_true", help="the version make test runs")
    args = parser.parse_args(argv)
    if args.command == "audit":
        if args.directory is None:
            parser.error("audit needs the soak's work directory")
        return _report(args.directory)
    params = SoakParams.small() if args.small else SoakParams()
    changes = {
        name: value
        for name, value in (("events", args.events), ("rate", args.rate), ("seed", args.seed))
        if value is not None
    }
    params = dataclasses.replace(params, **changes)
    workdir = args.directory or ROOT / ".local" / "chaos" / time.strftime("%Y%m%dT%H%M%S")
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    Soak(params, workdir).run()
    log(f"soak took {time.monotonic() - started:.0f} s")
    return _report(workdir)


if __name__ == "__main__":
    sys.exit(main())
