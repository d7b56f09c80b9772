"""Run the real worker (``python -m consumer``) as a process, as Kubernetes would.

The engine's guarantees are about processes: SIGKILL, SIGTERM, two members of one group.
Each worker writes JSON log lines to a file that tests read back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from confluent_kafka import Consumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.openedx import FakeOpenEdx
from tests.fakes.openedx.settings import service_env

ROOT = Path(__file__).resolve().parents[2]

# Short budgets so outage and retry tests run in seconds; the semantics are the same.
FAST = {
    "CONSUMER_METRICS_PORT": "0",
    "CONSUMER_LOG_FORMAT": "json",
    "CONSUMER_LOG_LEVEL": "DEBUG",  # per-event lines (event_applied) are DEBUG; tests read them
    "CONSUMER_COMMIT_INTERVAL_SECONDS": "0.2",
    "CONSUMER_RETRY_MAX_ATTEMPTS": "4",
    "CONSUMER_RETRY_MAX_SECONDS": "3",
    "CONSUMER_RETRY_INITIAL_SECONDS": "0.05",
    "CONSUMER_RETRY_MAX_BACKOFF_SECONDS": "0.5",
    "CONSUMER_CIRCUIT_FAILURE_THRESHOLD": "5",
    "CONSUMER_CIRCUIT_OPEN_SECONDS": "0.5",
    "CONSUMER_CIRCUIT_MAX_OPEN_SECONDS": "2",
    "CONSUMER_DRAIN_TIMEOUT_SECONDS": "10",
    "CONSUMER_REVOKE_TIMEOUT_SECONDS": "10",
    "CONSUMER_HTTP_READ_TIMEOUT": "5",
}


def worker_env(
    bootstrap_servers: str,
    registry_url: str,
    fake: FakeOpenEdx | None,
    *,
    topics: list[str],
    group: str,
    **overrides: str,
) -> dict[str, str]:
    """The environment of a worker consuming ``topics`` in ``group`` against ``fake``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CONSUMER_", "EVENT_BUS_", "BACKEND_SERVICE_"))
    }
    env.update(FAST)
    env.update(
        {
            "EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers,
            "EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL": registry_url,
            "CONSUMER_TOPICS": ",".join(topics),
            "CONSUMER_GROUP_ID": group,
        }
    )
    if fake is None:
        env["CONSUMER_DRY_RUN"] = "true"
    else:
        env.update(service_env(fake.urls))
    env.update(overrides)
    return env


class WorkerProcess:
    """One ``credentials-consumer`` process with its logs in files.

    Every instance is remembered until ``kill_leftovers`` (an autouse fixture of the
    integration tests) runs: a test that fails half-way must not leave a worker running into
    the next tests, where it would hold a group or a port and write to shared topics.
    """

    running: ClassVar[list[WorkerProcess]] = []

    def __init__(self, env: Mapping[str, str], args: list[str], workdir: Path, name: str) -> None:
        WorkerProcess.running.append(self)
        self.name = name
        self.log_path = workdir / f"{name}.log"
        self.out_path = workdir / f"{name}.out"
        self._stderr = self.log_path.open("ab")
        self._stdout = self.out_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "consumer", *args],
            env=dict(env),
            cwd=ROOT,
            stdout=self._stdout,
            stderr=self._stderr,
        )

    def wait(self, timeout: float) -> int:
        """Wait for the exit code; on timeout, kill the process and fail with its log tail."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"{self.name} still running after {timeout}s; log tail:\n{self.tail()}"
            ) from None
        finally:
            self._close_files()

    def terminate(self) -> None:
        """SIGTERM: drain and stop."""
        self.process.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL: no drain, no commit (a node dying)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        self._close_files()

    def _close_files(self) -> None:
        self._stderr.close()
        self._stdout.close()

    def logs(self) -> list[dict[str, Any]]:
        """Every JSON log line so far."""
        lines = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    lines.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return lines

    def events(self, name: str) -> list[dict[str, Any]]:
        """Log lines whose event is ``name``."""
        return [line for line in self.logs() if line.get("event") == name]

    def tail(self, lines: int = 40) -> str:
        """The last lines of the log, for failure messages."""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def kill_leftovers() -> None:
    """SIGKILL every worker a test started and left running; close its log files."""
    while WorkerProcess.running:
        WorkerProcess.running.pop().kill()


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Poll ``condition`` until true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def committed_offsets(
    bootstrap_servers: str, group: str, topic: str, partitions: int
) -> dict[int, int]:
    """The group's committed offset per partition (-1001 when none)."""
    consumer = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": group})
    try:
        committed = consumer.committed(
            [TopicPartition(topic, partition) for partition in range(partitions)], timeout=15
        )
        return {tp.partition: tp.offset for tp in committed}
    finally:
        consumer.close()


def end_offsets(bootstrap_servers: str, topic: str, partitions: int) -> dict[int, int]:
    """The high watermark per partition."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap_servers, "group.id": f"probe-{uuid.uuid4().hex}"}
    )
    try:
        return {
            partition: consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=15)[
                1
            ]
            for partition in range(partitions)
        }
    finally:
        consumer.close()


def scrape(port: int, name: str, **labels: str) -> float | None:
    """The value of sample ``name`` with ``labels`` on a worker's ``/metrics``, if exported."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None
