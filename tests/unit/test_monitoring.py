"""What operators watch stays true: the README's metric table, the alert rules, the dashboard.

Each is checked against what the worker exports, so a metric renamed in the code and not in
the README, an alert or a dashboard query fails here. ``promtool`` (from ``dev/prometheus
fetch``) checks and unit-tests the rules; the queries run on a real Prometheus in
``tests/integration/test_prometheus.py``.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from dev import dashboard
from tests.support.prometheus import (
    DASHBOARD,
    ROOT,
    RULES,
    exported_families,
    exported_series_names,
    metric_names,
    promtool,
)

RULES_TEST = ROOT / "tests" / "prometheus" / "prometheus-rules.test.yaml"
README = (ROOT / "README.md").read_text()


def _section(heading: str) -> str:
    return README.split(f"\n{heading}\n", 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]


def _alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


# ---------------------------------------------------------------------------- README table


def _documented_metrics() -> dict[str, tuple[str, frozenset[str]]]:
    rows = [line for line in _section("### Metrics").splitlines() if line.startswith("| `")]
    documented = {}
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        name = cells[0].strip("`")
        labels = frozenset(re.findall(r"`([a-z_]+)`", cells[2]))
        documented[name] = (cells[1], labels)
    return documented


def test_the_readme_metric_table_is_what_the_worker_exports() -> None:
    """Every exported family has a README row with its type and labels, and no row is stale."""
    exported = exported_families()
    documented = _documented_metrics()
    assert set(documented) - set(exported) == set(), "README rows for metrics not exported"
    assert set(exported) - set(documented) == set(), "exported metrics missing from the README"
    assert {name: documented[name] for name in exported} == exported


def test_metric_names_follow_prometheus_conventions() -> None:
    """One prefix; counters end in _total; no _created series; durations in seconds."""
    for name, (kind, labels) in exported_families().items():
        if name.startswith(("process_", "python_")):
            continue
        assert name.startswith("credentials_consumer_"), name
        assert (kind == "counter") == name.endswith("_total"), name
        assert not name.endswith("_created"), name
        if kind == "histogram":
            assert name.endswith("_seconds"), name
        assert not labels & {"user", "username", "email", "lms_user_id", "name"}, name


# ---------------------------------------------------------------------------- alert rules


def test_promtool_accepts_the_rules() -> None:
    """`promtool check rules` passes on the shipped rules file."""
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    """`promtool test rules`: every alert fires where it should and stays quiet elsewhere."""
    result = promtool("test", "rules", str(RULES_TEST))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_unit_tested_firing_and_quiet() -> None:
    """Each alert has at least one promtool case that fires it and one that does not."""
    cases = [
        case
        for test in yaml.safe_load(RULES_TEST.read_text())["tests"]
        for case in test["alert_rule_test"]
    ]
    for alert in _alerts():
        mine = [case for case in cases if case["alertname"] == alert["alert"]]
        assert any(case["exp_alerts"] for case in mine), f"{alert['alert']} never fires"
        assert any(not case["exp_alerts"] for case in mine), f"{alert['alert']} never quiet"


def test_every_alert_has_a_runbook_in_the_readme() -> None:
    """runbook_url points to a README heading named after the alert, with text under it."""
    runbooks = _section("### Runbooks")
    for alert in _alerts():
        name = alert["alert"]
        assert alert["annotations"]["runbook_url"] == f"README.md#{name.lower()}"
        assert f"\n#### {name}\n" in runbooks, f"no runbook for {name}"
        body = runbooks.split(f"\n#### {name}\n", 1)[1].split("\n#### ", 1)[0]
        assert len(body.split()) > 30, f"the runbook of {name} is too thin"
        assert {"summary", "description", "runbook_url"} <= set(alert["annotations"])
        assert alert["labels"]["severity"] in {"warning", "critical"}


def test_the_alerts_read_only_metrics_the_worker_exports() -> None:
    """An alert on a renamed or missing metric would never fire: fail here instead."""
    exported = exported_series_names()
    for alert in _alerts():
        names = metric_names(alert["expr"])
        assert names or "up{" in alert["expr"], alert["alert"]
        assert names - exported == set(), alert["alert"]


# ---------------------------------------------------------------------------- dashboard


def test_the_dashboard_file_is_the_generators_output() -> None:
    """The committed JSON is exactly what `make dashboard` writes (edit dev/dashboard.py)."""
    assert DASHBOARD.read_text() == dashboard.render()


def test_the_dashboard_imports_on_any_grafana() -> None:
    """A DS_PROMETHEUS input (and variable) is the data source of every panel and query."""
    board = json.loads(DASHBOARD.read_text())
    assert [item["name"] for item in board["__inputs"]] == ["DS_PROMETHEUS"]
    assert board["__inputs"][0]["pluginId"] == "prometheus"
    variables = {item["name"]: item for item in board["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    source = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
    for panel in board["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == source, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == source, panel["title"]
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))


def test_the_dashboard_has_the_rows_operators_need() -> None:
    """The issue's rows are all there, each with panels."""
    board = json.loads(DASHBOARD.read_text())
    rows = [panel["title"] for panel in board["panels"] if panel["type"] == "row"]
    assert rows == [row.title for row in dashboard.ROWS]
    text = json.dumps(board)
    for needed in (
        "events_done_total",
        "lag_records",
        "oldest_pending_age_seconds",
        "event_age_seconds_bucket",
        "http_request_duration_seconds_bucket",
        "http_requests_total",
        "retries_total",
        "dead_letters_total",
        "circuit_state",
        "in_flight_events",
        "queued_events",
        "buffered_events",
        "paused_partitions",
        "commits_total",
        "rebalances_total",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "replay_done_records",
    ):
        assert needed in text, needed


@pytest.mark.parametrize(("title", "expr"), dashboard.queries(dashboard.build()))
def test_each_dashboard_query_reads_only_exported_metrics(title: str, expr: str) -> None:
    """A panel on a metric the worker does not export would stay empty: fail here instead."""
    names = metric_names(expr)
    assert names, f"{title}: no metric of the worker"
    assert names - exported_series_names() == set(), title
    assert 'namespace=~"$namespace", job=~"$job"' in expr, f"{title}: not filtered"
