"""The dashboard and the alert rules on a real Prometheus scraping a real worker.

The worker runs as a process (``python -m consumer run``) against the fake Open edX and
consumes sample events published the LMS way; Prometheus (from ``dev/prometheus fetch``)
scrapes it every second with the worker's alert rules loaded. Every query of the dashboard
then runs through Prometheus' HTTP API: each must be valid PromQL and return at least one
series. The test also watches lag return to 0 and the oldest pending age rise while
Credentials is held slow. A short Credentials outage at the start opens its circuit, so the
circuit panels have data too.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from consumer.events import EventType
from tests.fakes.openedx import FakeOpenEdx
from tests.integration.conftest import Stack
from tests.support.kafka import produce_raw
from tests.support.lms import LmsProducer, catalog_data, certificate_data
from tests.support.prometheus import DASHBOARD, PrometheusServer, free_port
from tests.support.worker import WorkerProcess, wait_for, worker_env

pytestmark = pytest.mark.integration

JOB = "credentials-consumer"
PARTITIONS = 3
SLOW_SECONDS = 10.0

# Panels that are empty by design in this run, and why. Everything else must return a series.
ALLOWED_EMPTY = {
    "Replay progress": "replay gauges are set only by the replay command",
    "Replay records remaining": "replay gauges are set only by the replay command",
    "Seconds since the replay's last progress": "replay gauges are set only by the replay command",
}


def substitute(expr: str) -> str:
    """A dashboard query with Grafana's variables as Grafana would fill them for this run."""
    return expr.replace("$__rate_interval", "30s").replace("$namespace", ".*").replace("$job", ".+")


def dashboard_queries() -> list[tuple[str, str]]:
    board = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in board["panels"]
        for target in panel.get("targets", [])
    ]


def test_the_dashboard_and_alerts_work_on_a_real_prometheus(
    stack: Stack, lms: LmsProducer, fake: FakeOpenEdx, topic: str, tmp_path: Path
) -> None:
    """Every dashboard query is valid and returns data; lag drains; a slow Credentials shows."""
    tag = uuid.uuid4().hex[:6]
    runs = [f"course-v1:Prom{tag}+C{index}+2026_T1" for index in range(6)]
    for run in runs:
        fake.add_course_run(run, modes=("audit", "verified"))
    learners = [(20_000 + index, f"prom-{tag}-{index}") for index in range(12)]
    for user_id, username in learners:
        fake.add_user(username, user_id)
    fake.set_error("credentials", 500, times=1)  # one retry, so the retries panel has data
    fake.set_outage("credentials", "503")  # until its circuit opens: the openings panel

    published = 0
    for index, (user_id, username) in enumerate(learners):
        kind = EventType.CERTIFICATE_CREATED if index % 3 == 0 else EventType.CERTIFICATE_CHANGED
        mode = "audit" if index == 5 else "verified"  # a skip
        data = certificate_data(
            user_id=user_id, username=username, course_key=runs[index % len(runs)], mode=mode
        )
        lms.send(kind, data, topic)
        published += 1
    lms.send(EventType.CATALOG_INFO_CHANGED, catalog_data(course_key=runs[0]), topic)
    published += 1
    lms.flush()
    produce_raw(stack.bootstrap_servers, topic, b"not avro", partition=1)  # a dead letter
    published += 1

    port = free_port()
    env = worker_env(
        stack.bootstrap_servers,
        stack.registry_url,
        fake,
        topics=[topic],
        group=f"prom-{tag}",
        CONSUMER_METRICS_PORT=str(port),
        CONSUMER_HTTP_READ_TIMEOUT="30",
    )
    worker = WorkerProcess(env, ["run"], tmp_path, "worker")
    prometheus = PrometheusServer(tmp_path, [f"127.0.0.1:{port}"], job=JOB)
    try:
        wait_for(lambda: prometheus.value(f'up{{job="{JOB}"}}') == 1, timeout=60, what="a scrape")
        wait_for(
            lambda: any(line["state"] == "open" for line in worker.events("circuit_changed")),
            timeout=60,
            what="the Credentials circuit open",
        )
        fake.clear_outage("credentials")
        done = f'sum(credentials_consumer_events_done_total{{topic="{topic}"}})'
        wait_for(lambda: prometheus.value(done) == published, timeout=90, what="every event done")
        lag = f'credentials_consumer_lag_records{{topic="{topic}"}}'
        # Every owned partition has a lag series, an empty one too (it starts at its end).
        wait_for(
            lambda: (
                prometheus.value(f"count({lag})") == PARTITIONS
                and prometheus.value(f"max({lag})") == 0
            ),
            timeout=30,
            what="lag back to 0 on every partition",
        )
        time.sleep(3)  # a few more scrapes, so every rate window holds two samples

        empty, invalid = [], []
        for title, expr in dashboard_queries():
            try:
                result = prometheus.query(substitute(expr))
            except Exception as error:  # noqa: BLE001 - collected, reported together
                invalid.append(f"{title}: {error}")
                continue
            if not result and title not in ALLOWED_EMPTY:
                empty.append(f"{title}: {expr}")
        assert invalid == [], "\n".join(invalid)
        assert empty == [], "queries without a series:\n" + "\n".join(empty)

        rules = prometheus.api("rules")["groups"]
        loaded = [rule for group in rules for rule in group["rules"]]
        assert len(loaded) == 9
        wait_for(
            lambda: all(
                rule["health"] == "ok"
                for group in prometheus.api("rules")["groups"]
                for rule in group["rules"]
            ),
            timeout=15,
            what="every alert rule evaluated without error",
        )

        # Credentials held slow: the new event stays pending, its age rises on the dashboard.
        fake.set_latency("credentials", SLOW_SECONDS)
        user_id, username = learners[0]
        lms.send(
            EventType.CERTIFICATE_CHANGED,
            certificate_data(user_id=user_id, username=username, course_key=runs[0]),
            topic,
        )
        lms.flush()
        age = f'max(credentials_consumer_oldest_pending_age_seconds{{topic="{topic}"}})'
        wait_for(lambda: (prometheus.value(age) or 0) > 1, timeout=20, what="a pending event")
        first = prometheus.value(age)
        assert prometheus.value("sum(credentials_consumer_in_flight_events)") == 1
        wait_for(
            lambda: (prometheus.value(age) or 0) > (first or 0) + 2,
            timeout=SLOW_SECONDS,
            what="the pending age to rise",
        )
        fake.set_latency("credentials", 0)
        wait_for(lambda: prometheus.value(age) == 0, timeout=30, what="the event done")
        wait_for(lambda: prometheus.value(f"max({lag})") == 0, timeout=30, what="lag back to 0")
    finally:
        worker.terminate()
        try:
            assert worker.wait(timeout=60) == 0, worker.tail()
        finally:
            prometheus.stop()
