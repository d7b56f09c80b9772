"""``python -m tests.fakes.openedx --port N``: the fake as a process, until SIGTERM/SIGINT.

Prints one JSON line with the service roots once it listens. ``--seed FILE`` replays a JSON
list of ``{"method": ..., "kwargs": {...}}`` calls (the ``/_fake/call`` format) at start.
``--fast`` serves from one asyncio loop (``fast``: the benchmark's; latency knob only).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from tests.fakes.openedx.fast import FastServer
from tests.fakes.openedx.server import FakeOpenEdx


def main(argv: list[str] | None = None) -> int:
    """Run the fake until it is told to stop."""
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.openedx", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--per-service-ports", action="store_true")
    parser.add_argument("--seed", type=Path, help="JSON list of control calls to replay")
    parser.add_argument("--random-seed", type=int, default=0, help="seed of the error-rate knobs")
    parser.add_argument("--no-records", action="store_true", help="keep no request records")
    parser.add_argument(
        "--fast", action="store_true", help="serve from one asyncio loop (latency knob only)"
    )
    args = parser.parse_args(argv)
    fast: FastServer | None = None
    if args.fast:
        fake = FakeOpenEdx(host=args.host, seed=args.random_seed, keep_records=False)
        fast = FastServer(fake, host=args.host, port=args.port)
    else:
        fake = FakeOpenEdx.start(
            host=args.host,
            port=args.port,
            per_service_ports=args.per_service_ports,
            seed=args.random_seed,
            keep_records=not args.no_records,
        )
    if args.seed:
        for item in json.loads(args.seed.read_text()):
            answer = fake.control(json.dumps(item).encode())
            if answer.status != 200:
                fake.stop()
                print(json.dumps(answer.body), file=sys.stderr)
                return 2
    if fast is not None:
        fast.start()
    stopping = threading.Event()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if fast is not None:
        print(json.dumps({"url": fast.url, "urls": fast.urls}), flush=True)
        stopping.wait()
        fast.stop()
        return 0
    print(json.dumps({"url": fake.url, "urls": fake.urls}), flush=True)
    stopping.wait()
    fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
