"""The Helm chart, checked with the real helm and the Kubernetes schemas (``make test``).

Renders come from ``helm template`` (``tests.support.chart``); every core object is validated
strictly (unknown fields are errors) against the schemas of each Kubernetes version the README
claims; the worker's own ``config.load`` reads the environment the Deployment receives.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from consumer import config
from consumer.cli import dlq, replay, run
from consumer.cli.main import build_parser
from consumer.errors import ConfigError
from tests.support.chart import (
    ALL_FEATURES,
    CHART,
    ROOT,
    Manifest,
    Rendered,
    fullname,
    helm,
    refusal,
    render,
)

TUTOR = CHART / "ci" / "tutor-values.yaml"
RULES = CHART / "files" / "prometheus-rules.yaml"
DASHBOARD = CHART / "files" / "grafana-dashboard.json"
# Objects of operators (Prometheus Operator, KEDA) whose schemas kubernetes-validate lacks.
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule", "ScaledObject", "TriggerAuthentication"}
SECRET_NAMES = (
    "BACKEND_SERVICE_EDX_OAUTH2_KEY",
    "BACKEND_SERVICE_EDX_OAUTH2_SECRET",
    "EVENT_BUS_KAFKA_API_KEY",
    "EVENT_BUS_KAFKA_API_SECRET",
    "EVENT_BUS_KAFKA_SCHEMA_REGISTRY_API_KEY",
    "EVENT_BUS_KAFKA_SCHEMA_REGISTRY_API_SECRET",
)


def readme_section(title: str) -> str:
    return (ROOT / "README.md").read_text().split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def supported_kubernetes_versions() -> list[str]:
    """The versions the README claims: "Supported Kubernetes versions: 1.30 to 1.37"."""
    claim = re.search(
        r"Supported Kubernetes versions:\**\s*(\d+)\.(\d+) to (\d+)\.(\d+)",
        readme_section("Deploy on Kubernetes"),
    )
    assert claim, "the README's Deploy on Kubernetes section names no Kubernetes versions"
    major, low, _, high = (int(part) for part in claim.groups())
    return [f"{major}.{minor}.0" for minor in range(low, high + 1)]


def pod_specs(rendered: Rendered) -> list[tuple[str, Manifest]]:
    """Every pod the chart runs: the worker, the Jobs, the helm test."""
    specs = [
        (f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"]["spec"])
        for doc in rendered.documents
        if doc["kind"] in ("Deployment", "Job")
    ]
    specs += [(f"Pod/{doc['metadata']['name']}", doc["spec"]) for doc in rendered.of_kind("Pod")]
    return specs


def worker_settings(rendered: Rendered) -> config.Settings:
    deployment = rendered.one("Deployment")
    return config.load(rendered.container_env(deployment["spec"]["template"]["spec"]))


# ---------------------------------------------------------------------------- helm itself


@pytest.mark.parametrize("values", [[], [TUTOR], [ALL_FEATURES]], ids=["default", "tutor", "all"])
def test_helm_lint_strict_passes(values: list[Path]) -> None:
    """Helm lint --strict: templates, NOTES.txt and values.schema.json, warnings as errors."""
    args = ["lint", "--strict", str(CHART)]
    for path in values:
        args += ["--values", str(path)]
    linted = helm(*args)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert "0 chart(s) failed" in linted.stdout


def test_chart_versions_follow_the_project_and_the_readme() -> None:
    """AppVersion is the package version; kubeVersion starts where the README's claim starts."""
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert chart["appVersion"] == project["version"]
    lowest = supported_kubernetes_versions()[0]
    assert chart["kubeVersion"] == f">={lowest}-0"


# ---------------------------------------------------------------------------- Kubernetes schemas


@pytest.mark.parametrize("version", supported_kubernetes_versions())
@pytest.mark.parametrize("values", [[], [ALL_FEATURES]], ids=["default", "all"])
def test_core_objects_are_valid_kubernetes_objects(values: list[Path], version: str) -> None:
    """Strict schemas: an unknown or misplaced field fails, for each claimed version."""
    rendered = render(*values, kube_version=version)
    kinds = {doc["kind"] for doc in rendered.documents}
    assert kinds - CUSTOM_KINDS, "nothing to validate"
    for doc in rendered.documents:
        if doc["kind"] in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(doc, version, strict=True)


def test_every_feature_renders_every_kind() -> None:
    """The every-feature values leave no template unrendered (so all of them are validated)."""
    kinds = {doc["kind"] for doc in render(ALL_FEATURES).documents}
    assert kinds == {
        "ConfigMap",
        "Deployment",
        "Job",
        "PodDisruptionBudget",
        "Pod",
        "PrometheusRule",
        "ScaledObject",
        "Secret",
        "Service",
        "ServiceAccount",
        "ServiceMonitor",
        "TriggerAuthentication",
    }


def test_custom_objects_have_the_shape_their_operators_read() -> None:
    """The CRDs kubernetes-validate cannot check: API groups and the fields their operators read."""
    rendered = render(ALL_FEATURES)
    monitor = rendered.one("ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    rule = rendered.one("PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(rule["spec"]) == {"groups"}
    scaled = rendered.one("ScaledObject")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"] == {
        "name": rendered.one("Deployment")["metadata"]["name"]
    }
    for trigger in scaled["spec"]["triggers"]:
        assert trigger["type"] == "kafka"
        # KEDA reads trigger metadata as strings only.
        assert all(isinstance(value, str) for value in trigger["metadata"].values())
    auth = rendered.one("TriggerAuthentication")
    assert auth["apiVersion"] == "keda.sh/v1alpha1"
    assert {ref["parameter"] for ref in auth["spec"]["secretTargetRef"]} == {"username", "password"}


# ---------------------------------------------------------------------------- the worker's view


def test_probes_hit_the_metrics_port_and_paths() -> None:
    """Liveness on /healthz, readiness on /readyz, on the port the worker serves them on."""
    for port in (None, 9200):
        settings = {"config.CONSUMER_METRICS_PORT": str(port)} if port else {}
        rendered = render(TUTOR, settings=settings)
        worker = worker_settings(rendered)
        container = rendered.one("Deployment")["spec"]["template"]["spec"]["containers"][0]
        assert container["ports"] == [
            {"name": "metrics", "containerPort": worker.metrics_port, "protocol": "TCP"}
        ]
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
        service = rendered.one("Service")
        assert service["spec"]["ports"][0]["port"] == worker.metrics_port
        assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    monitor = render(ALL_FEATURES).one("ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"


def test_a_metrics_port_of_zero_is_refused() -> None:
    """Port 0 turns the worker's server off: the probes would kill every pod."""
    assert "CONSUMER_METRICS_PORT" in refusal(settings={"config.CONSUMER_METRICS_PORT": "0"})


@pytest.mark.parametrize("values", [[TUTOR], [ALL_FEATURES]], ids=["tutor", "all"])
def test_the_deployment_environment_loads_with_the_worker_config(values: list[Path]) -> None:
    """config.load accepts what the pod receives, and KEDA watches what the worker consumes."""
    rendered = render(*values)
    settings = worker_settings(rendered)
    assert settings.services is not None
    assert not settings.dry_run
    if rendered.of_kind("ScaledObject"):
        triggers = rendered.one("ScaledObject")["spec"]["triggers"]
        assert [t["metadata"]["topic"] for t in triggers] == list(settings.kafka.full_topics)
        for trigger in triggers:
            assert trigger["metadata"]["consumerGroup"] == settings.kafka.group_id
            assert trigger["metadata"]["offsetResetPolicy"] == settings.kafka.auto_offset_reset
            assert trigger["metadata"]["bootstrapServers"] == settings.kafka.bootstrap_servers


def test_default_values_leave_the_required_settings_to_the_operator() -> None:
    """Nothing is guessed: with the defaults the worker stops at once, naming the variable."""
    rendered = render()
    with pytest.raises(ConfigError, match="EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS"):
        worker_settings(rendered)


@pytest.mark.parametrize(
    ("settings", "group"),
    [
        ({}, "credentials-consumer"),
        ({"config.EVENT_BUS_TOPIC_PREFIX": "prod"}, "prod-credentials-consumer"),
        ({"config.EVENT_BUS_TOPIC_PREFIX": "prod", "config.CONSUMER_GROUP_ID": "mine"}, "mine"),
    ],
)
def test_worker_and_keda_agree_on_the_consumer_group(settings: dict[str, str], group: str) -> None:
    """The group (prefixed by default, as the design says) is the one KEDA measures."""
    keda = {"keda.enabled": True, "keda.partitions": 3}
    rendered = render(TUTOR, settings={**settings, **keda})
    assert worker_settings(rendered).kafka.group_id == group
    triggers = rendered.one("ScaledObject")["spec"]["triggers"]
    assert {trigger["metadata"]["consumerGroup"] for trigger in triggers} == {group}


def test_termination_grace_outlasts_the_worker_shutdown() -> None:
    """Drain bound + the longest running request + the margin, from the values the pod gets."""
    cases: list[tuple[dict[str, Any], int]] = [
        ({}, 30 + 20 + 10),
        (
            {
                "config.CONSUMER_DRAIN_TIMEOUT_SECONDS": 45,
                "config.CONSUMER_HTTP_READ_TIMEOUT": 12.5,
            },
            68,
        ),
        ({"config.CONSUMER_HTTP_TOTAL_TIMEOUT": "40"}, 30 + 40 + 10),
        ({"terminationGraceMarginSeconds": 0}, 50),
        ({"terminationGracePeriodSeconds": 120}, 120),
    ]
    for settings, expected in cases:
        rendered = render(TUTOR, settings=settings)
        spec = rendered.one("Deployment")["spec"]["template"]["spec"]
        assert spec["terminationGracePeriodSeconds"] == expected, settings
        worker = worker_settings(rendered)
        assert worker.services is not None
        bound = worker.engine.drain_timeout_seconds + worker.services.read_timeout
        assert spec["terminationGracePeriodSeconds"] >= bound


def test_large_and_fractional_numbers_reach_the_worker_as_written() -> None:
    """YAML numbers are floats to helm: 604800000 must not become 6.048e+08."""
    data = render(ALL_FEATURES).config_map()
    assert data["CONSUMER_MAX_BUFFERED"] == "1000000"
    assert data["CONSUMER_DEAD_LETTER_RETENTION_MS"] == "604800000"
    assert data["CONSUMER_HTTP_CONNECT_TIMEOUT"] == "3.05"
    assert data["CONSUMER_MAX_IN_FLIGHT"] == "8"
    assert data["CONSUMER_SYNC_COURSE_CERTIFICATES"] == "false"


# ---------------------------------------------------------------------------- secrets


def sentinel(name: str) -> str:
    return f"sentinel-{name.lower().replace('_', '-')}-0f3a"


def test_secrets_appear_only_in_secrets() -> None:
    """Every secret value is in the Secret (and reaches the worker), in no other object."""
    secrets = {f"secrets.{name}": sentinel(name) for name in SECRET_NAMES}
    rendered = render(ALL_FEATURES, settings=secrets)
    assert rendered.secret_data(fullname()) == {name: sentinel(name) for name in SECRET_NAMES}
    for doc, text in rendered.texts():
        if doc["kind"] == "Secret":
            continue
        for name in SECRET_NAMES:
            assert sentinel(name) not in text, f"{name} in {doc['kind']}"
    env = rendered.container_env(rendered.one("Deployment")["spec"]["template"]["spec"])
    assert {name: env[name] for name in SECRET_NAMES} == rendered.secret_data(fullname())


def test_existing_secret_replaces_the_charts_secret() -> None:
    """existingSecret: no Secret rendered, every pod and KEDA read the operator's Secret."""
    settings: dict[str, Any] = {f"secrets.{name}": "" for name in SECRET_NAMES}
    settings |= {"existingSecret": "credentials-consumer-secrets", "keda.sasl": "plaintext"}
    rendered = render(ALL_FEATURES, settings=settings)
    assert not rendered.of_kind("Secret")
    for where, spec in pod_specs(rendered):
        refs = [
            s["secretRef"]["name"] for s in spec["containers"][0]["envFrom"] if "secretRef" in s
        ]
        assert refs == ["credentials-consumer-secrets"], where
    auth = rendered.one("TriggerAuthentication")
    assert {ref["name"] for ref in auth["spec"]["secretTargetRef"]} == {
        "credentials-consumer-secrets"
    }


def test_a_secret_in_the_config_map_is_refused() -> None:
    """The schema refuses secret names under config, so they never land in a ConfigMap."""
    message = refusal(settings={"config.BACKEND_SERVICE_EDX_OAUTH2_SECRET": "oops"})
    assert "BACKEND_SERVICE_EDX_OAUTH2_SECRET" in message


def test_secrets_and_existing_secret_together_are_refused() -> None:
    """One source of secrets: the chart's Secret or the operator's, never half of each."""
    message = refusal(TUTOR, settings={"existingSecret": "mine"})
    assert "either existingSecret or secrets" in message


# ---------------------------------------------------------------------------- toggles


def _job(component: str) -> Callable[[Rendered], set[tuple[str, str]]]:
    def ids(rendered: Rendered) -> set[tuple[str, str]]:
        return {("Job", rendered.one("Job", component)["metadata"]["name"])}

    return ids


def _named(*ids: tuple[str, str]) -> Callable[[Rendered], set[tuple[str, str]]]:
    return lambda _rendered: set(ids)


NAME = fullname()
TOGGLES: dict[str, tuple[dict[str, Any], Callable[[Rendered], set[tuple[str, str]]]]] = {
    "serviceMonitor": ({"serviceMonitor.enabled": True}, _named(("ServiceMonitor", NAME))),
    "prometheusRule": ({"prometheusRule.enabled": True}, _named(("PrometheusRule", NAME))),
    "grafanaDashboard": (
        {"grafanaDashboard.enabled": True},
        _named(("ConfigMap", f"{NAME}-dashboard")),
    ),
    "keda": ({"keda.enabled": True, "keda.partitions": 3}, _named(("ScaledObject", NAME))),
    "keda-sasl": (
        {
            "keda.enabled": True,
            "keda.partitions": 3,
            "secrets.EVENT_BUS_KAFKA_API_KEY": "k",
            "secrets.EVENT_BUS_KAFKA_API_SECRET": "s",
        },
        _named(("ScaledObject", NAME), ("TriggerAuthentication", f"{NAME}-kafka")),
    ),
    "replayJob": ({"replayJob.enabled": True, "replayJob.fromBeginning": True}, _job("replay")),
    "redriveJob": ({"redriveJob.enabled": True, "redriveJob.topic": "t.dlq"}, _job("redrive")),
    "podDisruptionBudget": (
        {"podDisruptionBudget.enabled": True},
        _named(("PodDisruptionBudget", NAME)),
    ),
    "serviceAccount": ({"serviceAccount.create": True}, _named(("ServiceAccount", NAME))),
    "tests": ({"tests.enabled": True}, _named(("Pod", f"{NAME}-check"))),
}
ALL_OFF = {
    "podDisruptionBudget.enabled": False,
    "serviceAccount.create": False,
    "tests.enabled": False,
}


@pytest.mark.parametrize("toggle", list(TOGGLES))
def test_each_toggle_adds_exactly_its_objects(toggle: str) -> None:
    """From everything off, switching one feature on adds its objects and nothing else."""
    on, expected = TOGGLES[toggle]
    # The Kafka credentials (keda-sasl) also add the worker's Secret: that is the Secret's doing.
    base = render(TUTOR, settings={**ALL_OFF, **{k: v for k, v in on.items() if "secrets." in k}})
    with_it = render(TUTOR, settings={**ALL_OFF, **on})
    assert with_it.ids() - base.ids() == expected(with_it)
    assert base.ids() <= with_it.ids()


@pytest.mark.parametrize(
    "off",
    [
        {"serviceMonitor.enabled": False},
        {"prometheusRule.enabled": False},
        {"grafanaDashboard.enabled": False},
        {"keda.enabled": False},
        {"replayJob.enabled": False},
        {"redriveJob.enabled": False},
        {"podDisruptionBudget.enabled": False},
        {"tests.enabled": False},
    ],
    ids=lambda off: next(iter(off)).split(".")[0],
)
def test_each_toggle_removes_its_objects(off: dict[str, Any]) -> None:
    """From every feature on, switching one off removes its objects and nothing else."""
    everything = render(ALL_FEATURES)
    without = render(ALL_FEATURES, settings=off)
    removed = everything.ids() - without.ids()
    assert removed
    assert without.ids() <= everything.ids()
    kinds = {
        "serviceMonitor": {"ServiceMonitor"},
        "prometheusRule": {"PrometheusRule"},
        "grafanaDashboard": {"ConfigMap"},
        "keda": {"ScaledObject", "TriggerAuthentication"},
        "replayJob": {"Job"},
        "redriveJob": {"Job"},
        "podDisruptionBudget": {"PodDisruptionBudget"},
        "tests": {"Pod"},
    }[next(iter(off)).split(".")[0]]
    assert {kind for kind, _ in removed} == kinds


def test_keda_owns_the_replica_count() -> None:
    """With KEDA the Deployment states no replicas, so an upgrade never resets KEDA's count."""
    assert render(TUTOR).one("Deployment")["spec"]["replicas"] == 1
    scaled = render(TUTOR, settings={"keda.enabled": True, "keda.partitions": 3})
    assert "replicas" not in scaled.one("Deployment")["spec"]


def test_keda_never_scales_past_the_partitions() -> None:
    """MaxReplicaCount above the partition count is refused; KEDA's own cap stays on."""
    message = refusal(
        TUTOR, settings={"keda.enabled": True, "keda.partitions": 2, "keda.maxReplicaCount": 3}
    )
    assert "exceeds keda.partitions" in message
    assert "keda.partitions" in refusal(TUTOR, settings={"keda.enabled": True})
    rendered = render(TUTOR, settings={"keda.enabled": True, "keda.partitions": 3})
    for trigger in rendered.one("ScaledObject")["spec"]["triggers"]:
        assert trigger["metadata"]["allowIdleConsumers"] == "false"
        assert trigger["metadata"]["excludePersistentLag"] == "true"


# ---------------------------------------------------------------------------- jobs


def job_args(rendered: Rendered, component: str) -> list[str]:
    args: list[str] = rendered.one("Job", component)["spec"]["template"]["spec"]["containers"][0][
        "args"
    ]
    return args


def test_the_worker_and_the_helm_test_run_their_commands() -> None:
    """The Deployment runs `run`, the helm test hook runs `check`: both parse with the CLI."""
    rendered = render(TUTOR)
    worker = rendered.one("Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert worker == ["run"]
    assert build_parser().parse_args(worker).func is run.cmd_run
    test_pod = rendered.one("Pod")
    assert test_pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert test_pod["spec"]["containers"][0]["args"] == ["check"]
    assert test_pod["spec"]["restartPolicy"] == "Never"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {
                "fromDatetime": "2026-01-31T00:00:00Z",
                "toDatetime": "2026-02-01T00:00:00Z",
                "topics": ["learning-certificate-lifecycle", "course-catalog-info-changed"],
                "maxRate": 5,
                "dryRun": True,
            },
            [
                "replay",
                "--from-datetime",
                "2026-01-31T00:00:00Z",
                "--to-datetime",
                "2026-02-01T00:00:00Z",
                "--topic",
                "learning-certificate-lifecycle",
                "--topic",
                "course-catalog-info-changed",
                "--max-rate",
                "5",
                "--dry-run",
            ],
        ),
        ({"fromOffset": "0:120,1:98"}, ["replay", "--from-offset", "0:120,1:98"]),
        (
            {"fromBeginning": True, "maxRate": 2.5},
            ["replay", "--from-beginning", "--max-rate", "2.5"],
        ),
    ],
    ids=["datetime", "offsets", "beginning"],
)
def test_the_replay_job_runs_the_replay_it_is_given(
    values: dict[str, Any], expected: list[str]
) -> None:
    """The arguments, then a stable --group-id so that a retried pod resumes the replay."""
    settings = {"replayJob.enabled": True, **{f"replayJob.{k}": v for k, v in values.items()}}
    args = job_args(render(TUTOR, settings=settings), "replay")
    assert args[:-2] == expected
    assert args[-2] == "--group-id"
    assert re.fullmatch(r"credentials-consumer\.replay\.[0-9a-f]{8}", args[-1])
    assert (
        build_parser().parse_args(args).func is replay.cmd_replay
    )  # the worker's own CLI takes them
    chosen = job_args(render(TUTOR, settings={**settings, "replayJob.groupId": "mine"}), "replay")
    assert chosen[-2:] == ["--group-id", "mine"]


def test_a_replay_job_is_renamed_when_what_it_runs_changes() -> None:
    """Jobs are immutable: same inputs, same Job (no second run); new inputs, a new Job."""
    base = {"replayJob.enabled": True, "replayJob.fromBeginning": True}

    def name(**more: Any) -> str:
        job: Manifest = render(TUTOR, settings={**base, **more}).one("Job", "replay")
        return str(job["metadata"]["name"])

    first = name()
    assert first == name()
    assert first.startswith(f"{fullname()}-replay-")
    assert len(first) <= 63
    assert name(**{"replayJob.maxRate": 3}) != first
    assert name(**{"image.tag": "0.2.0"}) != first
    assert name(**{"config.CONSUMER_MAX_IN_FLIGHT": "2"}) != first


@pytest.mark.parametrize(
    "starts",
    [{}, {"replayJob.fromBeginning": True, "replayJob.fromOffset": "0:1"}],
    ids=["none", "two"],
)
def test_a_replay_needs_exactly_one_start(starts: dict[str, Any]) -> None:
    message = refusal(TUTOR, settings={"replayJob.enabled": True, **starts})
    assert "exactly one of fromDatetime, fromOffset, fromBeginning" in message


def test_the_redrive_job_redrives_the_topic_it_is_given() -> None:
    """`dlq redrive TOPIC [--dry-run]`, parsed by the worker's own CLI."""
    for dry_run in (False, True):
        settings = {
            "redriveJob.enabled": True,
            "redriveJob.topic": "prod-x.dlq",
            "redriveJob.dryRun": dry_run,
        }
        args = job_args(render(TUTOR, settings=settings), "redrive")
        assert args == ["dlq", "redrive", "prod-x.dlq", *(["--dry-run"] if dry_run else [])]
        parsed = build_parser().parse_args(args)
        assert parsed.func is dlq.cmd_dlq_redrive
        assert (parsed.topic, parsed.dry_run) == ("prod-x.dlq", dry_run)
    assert "redriveJob.topic" in refusal(TUTOR, settings={"redriveJob.enabled": True})


def test_jobs_never_restart_in_place_and_keep_their_pods_apart() -> None:
    """RestartPolicy Never; Job pods are not worker pods (the Service and PDB ignore them)."""
    rendered = render(ALL_FEATURES)
    worker_selector = rendered.one("Service")["spec"]["selector"]
    for component in ("replay", "redrive"):
        template = rendered.one("Job", component)["spec"]["template"]
        assert template["spec"]["restartPolicy"] == "Never"
        labels = template["metadata"]["labels"]
        assert not worker_selector.items() <= labels.items()


# ---------------------------------------------------------------------------- pods


def test_every_pod_runs_restricted() -> None:
    """The restricted Pod Security Standard, as the image's own numeric user, in every pod."""
    image_user = re.search(r"^USER (\d+)", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert image_user
    for where, spec in pod_specs(render(ALL_FEATURES)):
        assert spec["automountServiceAccountToken"] is False, where
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, where
        assert pod["runAsUser"] == int(image_user.group(1)), where
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, where
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["capabilities"] == {"drop": ["ALL"]}, where


def test_a_configuration_change_rolls_the_pods() -> None:
    """The pod template's checksums change with the ConfigMap or the Secret, and only then."""

    def checksums(**settings: Any) -> dict[str, str]:
        annotations: dict[str, str] = render(TUTOR, settings=settings).one("Deployment")["spec"][
            "template"
        ]["metadata"]["annotations"]
        return {k: v for k, v in annotations.items() if k.startswith("checksum/")}

    same = checksums()
    assert same == checksums()
    assert same == checksums(replicaCount=3)
    config_changed = checksums(**{"config.CONSUMER_MAX_IN_FLIGHT": "8"})
    assert config_changed["checksum/config"] != same["checksum/config"]
    secret_changed = checksums(**{"secrets.BACKEND_SERVICE_EDX_OAUTH2_SECRET": "rotated"})
    assert secret_changed["checksum/secret"] != same["checksum/secret"]
    assert secret_changed["checksum/config"] == same["checksum/config"]


# ---------------------------------------------------------------------------- rules, dashboard


def test_the_prometheus_rule_is_the_rules_file_byte_for_byte() -> None:
    """The spec is the rules file itself: what promtool tests is what Prometheus loads."""
    rendered = render(ALL_FEATURES)
    rule, text = next(
        (doc, text) for doc, text in rendered.texts() if doc["kind"] == "PrometheusRule"
    )
    spec_lines = text.split("\nspec:\n", 1)[1].split("\n")
    embedded = "\n".join(line.removeprefix("  ") for line in spec_lines).rstrip(" ")
    assert embedded.rstrip("\n") == RULES.read_text().rstrip("\n")
    assert rule["spec"] == yaml.safe_load(RULES.read_text())
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_the_dashboard_config_map_carries_the_dashboard_for_the_sidecar() -> None:
    rendered = render(ALL_FEATURES)
    board = next(
        doc
        for doc in rendered.of_kind("ConfigMap")
        if doc["metadata"]["name"] == f"{fullname()}-dashboard"
    )
    assert board["metadata"]["labels"]["grafana_dashboard"] == "1"
    (content,) = board["data"].values()
    assert content == DASHBOARD.read_text().strip()
    assert json.loads(content)["uid"]
    uid = render(ALL_FEATURES, settings={"grafanaDashboard.datasourceUid": "prom-uid"})
    replaced = next(
        doc for doc in uid.of_kind("ConfigMap") if doc["metadata"]["name"].endswith("-dashboard")
    )
    (text,) = replaced["data"].values()
    assert "${DS_PROMETHEUS}" not in text
    assert '"uid": "prom-uid"' in text


# ---------------------------------------------------------------------------- documentation


def test_the_chart_knows_every_documented_variable_and_no_other() -> None:
    """values.schema.json lists exactly the README's variables (config or secrets)."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    chart = set(schema["properties"]["config"]["properties"]) | set(
        schema["properties"]["secrets"]["properties"]
    )
    table = readme_section("Configuration")
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    documented = {n for row in rows for n in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])}
    assert chart == documented
    assert set(schema["properties"]["secrets"]["properties"]) == set(SECRET_NAMES)
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(values["config"]) <= documented
    assert set(values["secrets"]) == set(SECRET_NAMES)


def test_the_readme_values_table_lists_every_value() -> None:
    """Each top-level key of values.yaml has a row in the README's values table, and no more."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    section = readme_section("Deploy on Kubernetes")
    table = section.split("| value | meaning | default |", 1)[1].split("\n\n", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    documented = {
        name.split(".")[0]
        for row in rows
        for name in re.findall(r"`([a-zA-Z][\w.*]*)`", row.split("|")[1])
    }
    assert documented == set(values)
