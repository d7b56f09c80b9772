"""Render the Helm chart with the real ``helm`` (``dev/helm``) and read back what it produced.

``Chart.render`` runs ``helm template`` and returns the manifests both as parsed documents
and as the exact text helm wrote, so tests can check values and bytes alike.
"""

from __future__ import annotations

import base64
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "credentials-consumer"
ALL_FEATURES = CHART / "ci" / "all-features-values.yaml"
RELEASE = "cc"

Manifest = dict[str, Any]


@cache
def helm_binary() -> str:
    """The path of the real helm, built from the Go module proxy on first use (cached)."""
    built = subprocess.run(
        [str(ROOT / "dev" / "helm")], capture_output=True, text=True, timeout=900, check=True
    )
    return built.stdout.strip()


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    """Run helm with its state kept under .local/ (as ``dev/helm`` does)."""
    home = ROOT / ".local" / "helm" / "home"
    env = {
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
        "PATH": "/usr/bin:/bin",
    }
    return subprocess.run(
        [helm_binary(), *args], capture_output=True, text=True, timeout=120, check=False, env=env
    )


@dataclass(frozen=True)
class Rendered:
    """The output of one ``helm template``."""

    text: str

    @property
    def documents(self) -> list[Manifest]:
        """Every object, in helm's order."""
        return [doc for doc in yaml.safe_load_all(self.text) if doc]

    def texts(self) -> Iterator[tuple[Manifest, str]]:
        """Each object with the exact text helm wrote for it."""
        for chunk in self.text.split("\n---\n"):
            doc = yaml.safe_load(chunk)
            if doc:
                yield doc, chunk

    def ids(self) -> set[tuple[str, str]]:
        """(kind, name) of every object."""
        return {(doc["kind"], doc["metadata"]["name"]) for doc in self.documents}

    def of_kind(self, kind: str) -> list[Manifest]:
        """Every object of ``kind``."""
        return [doc for doc in self.documents if doc["kind"] == kind]

    def one(self, kind: str, component: str | None = None) -> Manifest:
        """The single object of ``kind`` (and ``app.kubernetes.io/component``, if given)."""
        found = [
            doc
            for doc in self.of_kind(kind)
            if component is None
            or doc["metadata"]["labels"].get("app.kubernetes.io/component") == component
        ]
        assert len(found) == 1, f"{len(found)} {kind} objects ({component})"
        return found[0]

    def config_map(self) -> dict[str, str]:
        """The worker's ConfigMap data."""
        maps = [doc for doc in self.of_kind("ConfigMap") if doc["metadata"]["name"] == fullname()]
        assert len(maps) == 1
        data: dict[str, str] = maps[0].get("data") or {}
        return data

    def secret_data(self, name: str) -> dict[str, str]:
        """A rendered Secret's values, decoded."""
        for secret in self.of_kind("Secret"):
            if secret["metadata"]["name"] == name:
                return {
                    key: base64.b64decode(value).decode()
                    for key, value in (secret.get("data") or {}).items()
                }
        raise AssertionError(f"no Secret {name}")

    def container_env(self, pod_spec: Manifest) -> dict[str, str]:
        """The environment the first container of ``pod_spec`` receives, as Kubernetes builds it.

        envFrom sources in order (a later one wins), then ``env`` (wins over envFrom). References
        to objects the chart does not render (an optional ConfigMap, a fieldRef) are left out.
        """
        container = pod_spec["containers"][0]
        env: dict[str, str] = {}
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                name = source["configMapRef"]["name"]
                for doc in self.of_kind("ConfigMap"):
                    if doc["metadata"]["name"] == name:
                        env.update(doc.get("data") or {})
            elif "secretRef" in source:
                name = source["secretRef"]["name"]
                if any(doc["metadata"]["name"] == name for doc in self.of_kind("Secret")):
                    env.update(self.secret_data(name))
        for variable in container.get("env", []):
            if "value" in variable:
                env[variable["name"]] = variable["value"]
        return env


def fullname() -> str:
    """The release's full name as the chart computes it for RELEASE."""
    return f"{RELEASE}-credentials-consumer"


def _nested(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``{"a.b": 1}`` -> ``{"a": {"b": 1}}``: dotted keys as helm's --set reads them."""
    nested: dict[str, Any] = {}
    for dotted, value in settings.items():
        *parents, leaf = dotted.split(".")
        node = nested
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return nested


def _run(
    values: Sequence[Path], settings: Mapping[str, Any], kube_version: str | None
) -> subprocess.CompletedProcess[str]:
    """``helm template``; settings go through a values file, so types and commas survive."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as overrides:
        yaml.safe_dump(_nested(settings), overrides)
        overrides.flush()
        args = ["template", RELEASE, str(CHART)]
        for path in (*values, Path(overrides.name)):
            args += ["--values", str(path)]
        if kube_version:
            args += ["--kube-version", kube_version]
        return helm(*args)


def render(
    *values: Path, settings: Mapping[str, Any] | None = None, kube_version: str | None = None
) -> Rendered:
    """``helm template`` the chart; fail the test with helm's message if it refuses."""
    done = _run(values, settings or {}, kube_version)
    assert done.returncode == 0, done.stderr
    return Rendered(done.stdout)


def refusal(*values: Path, settings: Mapping[str, Any] | None = None) -> str:
    """``helm template`` that must fail; returns helm's message."""
    done = _run(values, settings or {}, None)
    assert done.returncode != 0, "helm rendered values it should refuse"
    return done.stderr
