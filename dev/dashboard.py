"""The Grafana dashboard of credentials-consumer, as code: ``python -m dev.dashboard > FILE``.

``make dashboard`` writes ``helm/credentials-consumer/files/grafana-dashboard.json``; a test
fails when the committed file differs from this script's output, or when a query reads a
metric the worker does not export, and the integration test runs every query on a real
Prometheus scraping a real worker.

Plain dictionaries, no library: the dashboard is a list of rows of panels, each panel a few
PromQL queries. It imports on any Grafana: the data source is the ``DS_PROMETHEUS`` input
(asked for on import) and also a data-source variable of the same name, so a dashboard
provisioned from a file (the Helm chart's ConfigMap) resolves it to the default Prometheus.
Every query is filtered by the ``namespace`` and ``job`` variables and aggregated over
replicas (``sum by``/``max by``), or split by ``instance`` where a replica's own value is
what matters.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any

DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
SELECTOR = 'namespace=~"$namespace", job=~"$job"'
WINDOW = "$__rate_interval"
WIDTH = 24


def m(name: str, extra: str = "") -> str:
    """A selector of the worker's metric ``name`` under the dashboard's variables."""
    labels = f"{SELECTOR}, {extra}" if extra else SELECTOR
    return f"{name}{{{labels}}}"


def rate(name: str, by: str, extra: str = "") -> str:
    """Per-second rate of a counter, summed ``by`` labels over every replica."""
    return f"sum by ({by}) (rate({m(name, extra)}[{WINDOW}]))"


def increase(name: str, by: str, extra: str = "") -> str:
    """Increase of a counter over the panel's interval, summed ``by`` labels."""
    return f"sum by ({by}) (increase({m(name, extra)}[{WINDOW}]))"


def quantile(q: float, histogram: str, by: str) -> str:
    """The ``q`` quantile of a histogram, over every replica, ``by`` labels."""
    buckets = f"rate({m(histogram + '_bucket')}[{WINDOW}])"
    return f"histogram_quantile({q}, sum by (le, {by}) ({buckets}))"


@dataclass(frozen=True)
class Query:
    """One PromQL query of a panel and its legend."""

    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    """A time series (or state timeline) panel."""

    title: str
    description: str
    queries: tuple[Query, ...]
    unit: str = "short"
    kind: str = "timeseries"
    width: int = 12
    mappings: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Row:
    """A titled row of panels."""

    title: str
    panels: tuple[Panel, ...] = field(default_factory=tuple)


def _q(expr: str, legend: str) -> tuple[Query, ...]:
    return (Query(expr, legend),)


CIRCUIT_STATES = (
    {
        "type": "value",
        "options": {
            "0": {"text": "closed", "color": "green", "index": 0},
            "1": {"text": "half-open", "color": "orange", "index": 1},
            "2": {"text": "open", "color": "red", "index": 2},
        },
    },
)

ROWS = (
    Row(
        "Throughput",
        (
            Panel(
                "Events done by outcome",
                "Events finished per second: applied, skipped (a stated reason) or dead-lettered.",
                _q(rate("credentials_consumer_events_done_total", "outcome"), "{{outcome}}"),
                unit="ops",
            ),
            Panel(
                "Events received by topic",
                "Records consumed per second.",
                _q(rate("credentials_consumer_events_received_total", "topic"), "{{topic}}"),
                unit="ops",
            ),
            Panel(
                "Commands by result",
                "Commands (course certificate, programs, certificate available date) per "
                "second, by result.",
                _q(
                    rate("credentials_consumer_commands_total", "command, result"),
                    "{{command}} {{result}}",
                ),
                unit="ops",
            ),
            Panel(
                "Skips by reason",
                "Commands or events skipped on purpose, per interval.",
                _q(increase("credentials_consumer_skips_total", "reason"), "{{reason}}"),
            ),
        ),
    ),
    Row(
        "Lag and pending events",
        (
            Panel(
                "Lag per partition",
                "Records between each partition's end and the group's committed offset, "
                "refreshed every few seconds from the broker.",
                _q(
                    f"max by (topic, partition) ({m('credentials_consumer_lag_records')})",
                    "{{topic}}/{{partition}}",
                ),
                width=8,
            ),
            Panel(
                "Lag by topic",
                "The lag of every partition of a topic, summed.",
                _q(
                    "sum by (topic) (max by (topic, partition) "
                    f"({m('credentials_consumer_lag_records')}))",
                    "{{topic}}",
                ),
                width=8,
            ),
            Panel(
                "Oldest pending event age per partition",
                "Seconds since the oldest event not yet done was consumed: a stuck event "
                "shows here at once, and holds its partition's commits.",
                _q(
                    "max by (topic, partition) "
                    f"({m('credentials_consumer_oldest_pending_age_seconds')})",
                    "{{topic}}/{{partition}}",
                ),
                unit="s",
                width=8,
            ),
        ),
    ),
    Row(
        "Event age and processing time",
        (
            Panel(
                "Event age when done (p50, p99)",
                "Time from the event's ce_time (when the LMS emitted it) to done.",
                (
                    Query(
                        quantile(0.5, "credentials_consumer_event_age_seconds", "event_type"),
                        "p50 {{event_type}}",
                    ),
                    Query(
                        quantile(0.99, "credentials_consumer_event_age_seconds", "event_type"),
                        "p99 {{event_type}}",
                    ),
                ),
                unit="s",
            ),
            Panel(
                "Processing time (p50, p99)",
                "From the moment a worker thread picks the event up to its outcome, "
                "retries included.",
                (
                    Query(
                        quantile(
                            0.5, "credentials_consumer_processing_duration_seconds", "event_type"
                        ),
                        "p50 {{event_type}}",
                    ),
                    Query(
                        quantile(
                            0.99, "credentials_consumer_processing_duration_seconds", "event_type"
                        ),
                        "p99 {{event_type}}",
                    ),
                ),
                unit="s",
            ),
        ),
    ),
    Row(
        "HTTP",
        (
            Panel(
                "HTTP latency by service (p50, p99)",
                "Latency of the requests to each Open edX service.",
                (
                    Query(
                        quantile(
                            0.5, "credentials_consumer_http_request_duration_seconds", "service"
                        ),
                        "p50 {{service}}",
                    ),
                    Query(
                        quantile(
                            0.99, "credentials_consumer_http_request_duration_seconds", "service"
                        ),
                        "p99 {{service}}",
                    ),
                ),
                unit="s",
            ),
            Panel(
                "HTTP requests by service and status class",
                "Requests per second; 'error' is no answer (refused, reset, timeout).",
                _q(
                    rate("credentials_consumer_http_requests_total", "service, status_class"),
                    "{{service}} {{status_class}}",
                ),
                unit="reqps",
            ),
        ),
    ),
    Row(
        "Retries and dead letters",
        (
            Panel(
                "Retries by service and reason",
                "Transient failures retried, per interval.",
                _q(
                    increase("credentials_consumer_retries_total", "service, reason"),
                    "{{service}} {{reason}}",
                ),
                width=6,
            ),
            Panel(
                "Dead letters by stage and error class",
                "Records written to a dead-letter topic, per interval.",
                _q(
                    increase(
                        "credentials_consumer_dead_letters_total", "topic, stage, error_class"
                    ),
                    "{{topic}} {{stage}} {{error_class}}",
                ),
                width=6,
            ),
            Panel(
                "Dead letters by reason",
                "Dead-lettered events by reason (http_400, bad_magic_byte, ...), per interval.",
                _q(
                    increase(
                        "credentials_consumer_events_done_total",
                        "reason",
                        'outcome="dead_lettered"',
                    ),
                    "{{reason}}",
                ),
                width=6,
            ),
            Panel(
                "Dead-letter write errors",
                "Failed attempts to write a dead-letter record (retried; the offset waits).",
                _q(
                    increase("credentials_consumer_dead_letter_produce_errors_total", "topic"),
                    "{{topic}}",
                ),
                width=6,
            ),
        ),
    ),
    Row(
        "Circuits",
        (
            Panel(
                "Circuit state by service",
                "Closed, half-open (a probe is out) or open (the service is treated as down, "
                "consumption pauses).",
                _q(
                    f"max by (service) ({m('credentials_consumer_circuit_state')})",
                    "{{service}}",
                ),
                kind="state-timeline",
                mappings=CIRCUIT_STATES,
            ),
            Panel(
                "Circuit openings by cause",
                "Times a service's circuit opened, by cause (HTTP status class or error), "
                "per interval.",
                _q(
                    increase("credentials_consumer_circuit_opened_total", "service, cause"),
                    "{{service}} {{cause}}",
                ),
            ),
        ),
    ),
    Row(
        "Work in progress",
        (
            Panel(
                "In flight by replica",
                "Events running on a worker thread now (at most CONSUMER_MAX_IN_FLIGHT).",
                _q(
                    f"sum by (instance) ({m('credentials_consumer_in_flight_events')})",
                    "{{instance}}",
                ),
                width=6,
            ),
            Panel(
                "Queued by replica",
                "Events accepted but not started: waiting for a thread or behind an earlier "
                "event of their key.",
                _q(
                    f"sum by (instance) ({m('credentials_consumer_queued_events')})",
                    "{{instance}}",
                ),
                width=6,
            ),
            Panel(
                "Buffered by replica",
                "Events in memory (running, queued, awaiting a dead-letter ack); partitions "
                "pause at CONSUMER_MAX_BUFFERED.",
                _q(
                    f"sum by (instance) ({m('credentials_consumer_buffered_events')})",
                    "{{instance}}",
                ),
                width=6,
            ),
            Panel(
                "Paused and assigned partitions by replica",
                "Partitions paused (backpressure, open circuit, registry wait) of those assigned.",
                (
                    Query(
                        f"sum by (instance) ({m('credentials_consumer_paused_partitions')})",
                        "paused {{instance}}",
                    ),
                    Query(
                        f"sum by (instance) ({m('credentials_consumer_assigned_partitions')})",
                        "assigned {{instance}}",
                    ),
                ),
                width=6,
            ),
        ),
    ),
    Row(
        "Commits and rebalances",
        (
            Panel(
                "Seconds since the last commit by replica",
                "A replica with lag whose commits stop has stopped making progress.",
                _q(
                    "time() - max by (instance) "
                    f"({m('credentials_consumer_last_commit_timestamp_seconds')} > 0)",
                    "{{instance}}",
                ),
                unit="s",
                width=8,
            ),
            Panel(
                "Commits by result",
                "Offset commits per second that landed or failed.",
                _q(rate("credentials_consumer_commits_total", "result"), "{{result}}"),
                unit="ops",
                width=8,
            ),
            Panel(
                "Rebalances by kind",
                "Partition assignments, revocations and losses, per interval.",
                _q(increase("credentials_consumer_rebalances_total", "kind"), "{{kind}}"),
                width=8,
            ),
        ),
    ),
    Row(
        "Dependencies and process",
        (
            Panel(
                "Schema registry waits",
                "Times a partition waited because the schema registry could not be reached.",
                _q(
                    increase("credentials_consumer_schema_registry_unavailable_total", "instance"),
                    "{{instance}}",
                ),
                width=6,
            ),
            Panel(
                "Program cache stale",
                "1 while the Discovery program cache serves its last good copy.",
                _q(
                    f"max by (instance) ({m('credentials_consumer_program_cache_stale')})",
                    "{{instance}}",
                ),
                width=6,
            ),
            Panel(
                "CPU by replica",
                "CPU seconds used per second.",
                _q(
                    f"sum by (instance) (rate({m('process_cpu_seconds_total')}[{WINDOW}]))",
                    "{{instance}}",
                ),
                unit="percentunit",
                width=6,
            ),
            Panel(
                "Resident memory by replica",
                "Resident set size.",
                _q(
                    f"sum by (instance) ({m('process_resident_memory_bytes')})",
                    "{{instance}}",
                ),
                unit="bytes",
                width=6,
            ),
        ),
    ),
    Row(
        "Replay",
        (
            Panel(
                "Replay progress",
                "Records of the replay's range: planned and done (below the committed watermark).",
                (
                    Query(
                        f"sum by (topic) ({m('credentials_consumer_replay_planned_records')})",
                        "planned {{topic}}",
                    ),
                    Query(
                        f"sum by (topic) ({m('credentials_consumer_replay_done_records')})",
                        "done {{topic}}",
                    ),
                ),
                width=8,
            ),
            Panel(
                "Replay records remaining",
                "Planned minus done.",
                _q(
                    f"sum by (topic) ({m('credentials_consumer_replay_planned_records')}) - "
                    f"sum by (topic) ({m('credentials_consumer_replay_done_records')})",
                    "{{topic}}",
                ),
                width=8,
            ),
            Panel(
                "Seconds since the replay's last progress",
                "A replay whose records remain and whose progress stops has stalled.",
                _q(
                    "time() - max by (instance) "
                    f"({m('credentials_consumer_replay_last_progress_timestamp_seconds')} > 0)",
                    "{{instance}}",
                ),
                unit="s",
                width=8,
            ),
        ),
    ),
)


def _variable(name: str, label: str, query: str, all_value: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-variable"},
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": all_value,
        "current": {},
        "options": [],
        "sort": 1,
        "hide": 0,
    }


def _panel(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    custom: dict[str, Any] = (
        {"fillOpacity": 70, "lineWidth": 0}
        if panel.kind == "state-timeline"
        else {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never"}
    )
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {
            "defaults": {"unit": panel.unit, "custom": custom, "mappings": list(panel.mappings)},
            "overrides": [],
        },
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": [
            {
                "refId": chr(ord("A") + index),
                "datasource": DATASOURCE,
                "expr": query.expr,
                "legendFormat": query.legend,
                "range": True,
            }
            for index, query in enumerate(panel.queries)
        ],
    }


def build() -> dict[str, Any]:
    """The dashboard, as the JSON object Grafana imports."""
    panels: list[dict[str, Any]] = []
    y = 0
    panel_id = 1
    for row in ROWS:
        panels.append(
            {
                "id": panel_id,
                "type": "row",
                "title": row.title,
                "collapsed": False,
                "panels": [],
                "gridPos": {"h": 1, "w": WIDTH, "x": 0, "y": y},
            }
        )
        panel_id += 1
        y += 1
        x = 0
        for panel in row.panels:
            if x + panel.width > WIDTH:
                x, y = 0, y + 8
            panels.append(_panel(panel, panel_id, x, y))
            panel_id += 1
            x += panel.width
        y += 8
    return {
        "__inputs": [
            {
                "name": "DS_PROMETHEUS",
                "label": "Prometheus",
                "description": "The Prometheus that scrapes credentials-consumer",
                "type": "datasource",
                "pluginId": "prometheus",
                "pluginName": "Prometheus",
            }
        ],
        "__requires": [
            {"type": "grafana", "id": "grafana", "name": "Grafana", "version": "9.1.0"},
            {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
            {"type": "panel", "id": "timeseries", "name": "Time series", "version": ""},
            {"type": "panel", "id": "state-timeline", "name": "State timeline", "version": ""},
        ],
        "uid": "credentials-consumer",
        "title": "credentials-consumer",
        "description": "Open edX event bus → Credentials worker: throughput, lag, latency, "
        "retries, dead letters, circuits, commits, process, replay.",
        "tags": ["open-edx", "kafka", "credentials-consumer"],
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 37,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "annotations": {"list": []},
        "links": [],
        "templating": {
            "list": [
                {
                    "name": "DS_PROMETHEUS",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "options": [],
                    "refresh": 1,
                    "regex": "",
                    "hide": 0,
                },
                _variable(
                    "namespace",
                    "Namespace",
                    "label_values(credentials_consumer_build_info, namespace)",
                    ".*",
                ),
                _variable(
                    "job",
                    "Job",
                    'label_values(credentials_consumer_build_info{namespace=~"$namespace"}, job)',
                    ".+",
                ),
            ]
        },
        "panels": panels,
    }


def render() -> str:
    """The dashboard file's exact text."""
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expression) of every query of a dashboard object."""
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]


if __name__ == "__main__":
    sys.stdout.write(render())
