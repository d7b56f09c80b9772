"""The fake Open edX for the live contenders, and a measure of its own capacity.

The fake runs as a process (``python -m tests.fakes.openedx --fast``: one asyncio loop),
seeded with the workload's world at start. A fresh one serves each live contender, so each
meets the same state.

Its capacity is measured at the worker's concurrency with a load generator that costs
little CPU itself (raw HTTP/1.1 on keep-alive connections from one asyncio loop), on the
request mix the worker sends: the ceiling is the fake's own, not the generator's.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from bench.measure import process_cpu
from bench.workload import PER_EVENT_SERVICES
from tests.fakes.openedx import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, RemoteFake

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True, slots=True)
class RunningFake:
    """A fake process and its addresses."""

    process: subprocess.Popen[bytes]
    url: str
    urls: dict[str, str]

    @property
    def remote(self) -> RemoteFake:
        """Its control endpoint."""
        return RemoteFake(self.url, timeout=30)

    def served(self) -> dict[str, int]:
        """Requests served so far, by ``service/endpoint``."""
        result: dict[str, int] = self.remote.call("served")
        return result

    def per_event_requests(self) -> int:
        """Requests to the per-event services served so far."""
        return sum(
            count
            for name, count in self.served().items()
            if name.split("/", 1)[0] in PER_EVENT_SERVICES
        )


@contextmanager
def running_fake(calls: list[dict[str, Any]]) -> Iterator[RunningFake]:
    """Start a fast fake seeded with ``calls``; stop it on exit."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as seed:
        json.dump(calls, seed)
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.openedx", "--fast", "--seed", seed.name],
        cwd=ROOT,
        stdout=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError("the fake did not start (see its stderr above)")
        info = json.loads(line)
        yield RunningFake(process, info["url"], info["urls"])
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        Path(seed.name).unlink(missing_ok=True)


# ---------------------------------------------------------------------------- capacity


@dataclass(frozen=True, slots=True)
class Capacity:
    """What the fake served at a given concurrency and latency."""

    concurrency: int
    latency: float
    requests_per_second: float
    cpu_per_request: float
    """CPU seconds of the fake process per request."""
    little_bound: float | None
    """concurrency ÷ latency: what any server with that latency can serve at most."""

    def as_json(self) -> dict[str, float | int | None]:
        """For the results file."""
        return {
            "concurrency": self.concurrency,
            "latency_seconds": self.latency,
            "requests_per_second": round(self.requests_per_second, 1),
            "cpu_ms_per_request": round(self.cpu_per_request * 1000, 4),
            "little_bound_requests_per_second": self.little_bound,
            "cpu_bound_requests_per_second": round(1 / self.cpu_per_request, 1)
            if self.cpu_per_request
            else None,
        }


def _token(fake: RunningFake) -> str:
    import requests  # noqa: PLC0415 - one request, at set-up

    answer = requests.post(
        fake.urls["oauth"] + "/access_token",
        data={
            "grant_type": "client_credentials",
            "client_id": DEFAULT_CLIENT_ID,
            "client_secret": DEFAULT_CLIENT_SECRET,
            "token_type": "jwt",
        },
        timeout=10,
    )
    answer.raise_for_status()
    token: str = answer.json()["access_token"]
    return token


def request_mix(fake: RunningFake, usernames: list[str], runs: list[str]) -> list[bytes]:
    """Raw requests close to the worker's mix, four per learner.

    A course-run POST, a credentials list, the LMS certificates list and a course-modes read.
    """
    token = _token(fake)
    host = urlsplit(fake.url).netloc
    requests: list[bytes] = []

    def raw(method: str, path: str, body: dict[str, Any] | None = None) -> bytes:
        data = json.dumps(body).encode() if body is not None else b""
        head = [
            f"{method} {path} HTTP/1.1",
            f"Host: {host}",
            f"Authorization: JWT {token}",
            "Accept: application/json",
            f"Content-Length: {len(data)}",
        ]
        if body is not None:
            head.append("Content-Type: application/json")
        return ("\r\n".join(head) + "\r\n\r\n").encode() + data

    for index, username in enumerate(usernames):
        run = runs[index % len(runs)]
        query = urlencode({"username": username, "status": "awarded", "type": "course-run"})
        requests += [
            raw(
                "POST",
                "/api/v2/credentials/",
                {
                    "username": username,
                    "status": "awarded",
                    "credential": {"course_run_key": run, "mode": "verified"},
                },
            ),
            raw("GET", f"/api/v2/credentials/?{query}"),
            raw("GET", f"/api/certificates/v0/certificates/{username}/"),
            raw("GET", f"/api/course_modes/v1/courses/{run}/"),
        ]
    return requests


async def _client(
    address: tuple[str, int], requests: list[bytes], offset: int, until: float, counts: list[int]
) -> None:
    host, port = address
    reader, writer = await asyncio.open_connection(host, port)
    index = offset
    try:
        while time.monotonic() < until:
            writer.write(requests[index % len(requests)])
            index += 1
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            counts[0] += 1
    finally:
        writer.close()


async def _load(fake: RunningFake, requests: list[bytes], concurrency: int, seconds: float) -> int:
    parts = urlsplit(fake.url)
    counts = [0]
    until = time.monotonic() + seconds
    await asyncio.gather(
        *(
            _client(
                (parts.hostname or "127.0.0.1", parts.port or 80), requests, i * 7, until, counts
            )
            for i in range(concurrency)
        )
    )
    return counts[0]


def capacity(
    fake: RunningFake, requests: list[bytes], *, concurrency: int, latency: float, seconds: float
) -> Capacity:
    """Drive the fake with ``concurrency`` connections for ``seconds``; measure it."""
    for service in PER_EVENT_SERVICES:
        fake.remote.call("set_latency", service=service, seconds=latency)
    cpu_before, started = process_cpu(fake.process.pid), time.monotonic()
    served = asyncio.run(_load(fake, requests, concurrency, seconds))
    elapsed = time.monotonic() - started
    cpu = process_cpu(fake.process.pid) - cpu_before
    return Capacity(
        concurrency=concurrency,
        latency=latency,
        requests_per_second=served / elapsed,
        cpu_per_request=cpu / served if served else 0.0,
        little_bound=concurrency / latency if latency else None,
    )
