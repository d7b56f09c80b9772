"""A real Prometheus and promtool for the tests, as ``dev/prometheus fetch`` unpacks them.

``make test`` (and ``make unit``) fetch them first; a missing binary fails the test with the
command to run, it never skips it.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.metrics import MetricWrapperBase

from consumer.observability import Metrics

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".local" / "prometheus" / "root" / "usr" / "bin"
RULES = ROOT / "helm" / "credentials-consumer" / "files" / "prometheus-rules.yaml"
DASHBOARD = ROOT / "helm" / "credentials-consumer" / "files" / "grafana-dashboard.json"

# Names in PromQL that are metrics of the worker or of its standard collectors.
_METRIC_NAME = re.compile(r"\b((?:credentials_consumer|process|python)_[a-z0-9_]+)\b")


def binary(name: str) -> Path:
    """The path of ``prometheus`` or ``promtool``; fails with the command that fetches it."""
    path = BIN / name
    if not path.is_file():
        raise AssertionError(f"{path} is missing: run `dev/prometheus fetch` (make test does)")
    return path


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run promtool; the caller checks ``returncode`` (output in ``stdout``)."""
    return subprocess.run(  # noqa: PLW1510 - the caller asserts on the return code
        [str(binary("promtool")), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def metric_names(expr: str) -> set[str]:
    """The worker's metric names a PromQL expression reads."""
    return set(_METRIC_NAME.findall(expr))


def exported_families() -> dict[str, tuple[str, frozenset[str]]]:
    """Every family a worker's ``Metrics`` exports: exposed name → (type, label names).

    The exposed name is what Prometheus stores: counters with ``_total``, the build info
    with ``_info``; an info family is a gauge to Prometheus.
    """
    metrics = Metrics()
    declared = {
        metric._name: frozenset(metric._labelnames)  # private: no public accessor
        for metric in vars(metrics).values()
        if isinstance(metric, MetricWrapperBase)
    }
    families = {}
    for family in metrics.registry.collect():
        suffix = {"counter": "_total", "info": "_info"}.get(family.type, "")
        kind = "gauge" if family.type == "info" else family.type
        sampled = {label for sample in family.samples for label in sample.labels} - {"le"}
        labels = declared.get(family.name, frozenset()) | sampled
        families[family.name + suffix] = (kind, frozenset(labels))
    return families


def exported_series_names() -> set[str]:
    """Every series name a worker exports (histograms as ``_bucket``, ``_sum``, ``_count``)."""
    names = set()
    for name, (kind, _labels) in exported_families().items():
        names |= (
            {name + end for end in ("_bucket", "_sum", "_count")} if kind == "histogram" else {name}
        )
    return names


def free_port() -> int:
    """A loopback port free right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrometheusServer:
    """A Prometheus process scraping ``targets`` every second, with the worker's alert rules."""

    def __init__(self, workdir: Path, targets: list[str], *, job: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = workdir / "prometheus.yml"
        config.write_text(
            json.dumps(  # JSON is YAML
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(RULES)],
                    "scrape_configs": [{"job_name": job, "static_configs": [{"targets": targets}]}],
                }
            )
        )
        self.log_path = workdir / "prometheus.log"
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                str(binary("prometheus")),
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self._log,
            stderr=self._log,
        )
        self._wait_ready(timeout=60)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"prometheus exited: {self.log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"prometheus not ready after {timeout}s")
            time.sleep(0.2)

    def api(self, path: str, **params: str) -> Any:
        """GET ``/api/v1/<path>``; return ``data``, or raise with Prometheus' error."""
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:
                body = json.loads(answer.read())
        except urllib.error.HTTPError as error:
            body = json.loads(error.read())
        if body.get("status") != "success":
            raise PromQLError(f"{body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector (or scalar, as one sample) ``expr`` evaluates to now."""
        data = self.api("query", query=expr)
        if data["resultType"] == "vector":
            return list(data["result"])
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        raise PromQLError(f"{expr} returned a {data['resultType']}")

    def value(self, expr: str) -> float | None:
        """The single value of ``expr``, or None when it returns no series."""
        result = self.query(expr)
        if not result:
            return None
        assert len(result) == 1, result
        return float(result[0]["value"][1])

    def stop(self) -> None:
        """SIGTERM, then wait."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        self._log.close()


class PromQLError(Exception):
    """Prometheus refused a query (bad PromQL) or answered with an error."""
