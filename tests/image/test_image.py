"""The container image as an operator runs it: ``make image-test`` (``dev/image test``).

Each test starts the image built by ``make image`` with podman, as the image's own numeric
non-root user, with a read-only root filesystem and no writable tmpfs at all, on the host
network against the local broker and registry (``dev/with-stack`` exports where they are).
Deselected from ``make test`` (marker ``image``): they need podman and the built image.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from consumer import __version__

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.image

# Nothing writable: no tmpfs on /tmp, /var/tmp or /run either (podman mounts them by default).
READ_ONLY = ("--read-only", "--read-only-tmpfs=false")


@dataclass(frozen=True)
class Stack:
    bootstrap_servers: str
    registry_url: str


def podman(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def image() -> str:
    name = os.environ.get("CREDENTIALS_CONSUMER_IMAGE")
    if not name:
        pytest.fail("CREDENTIALS_CONSUMER_IMAGE is not set: run these tests with `make image-test`")
    return name


@pytest.fixture(scope="module")
def stack() -> Stack:
    try:
        return Stack(
            bootstrap_servers=os.environ["EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS"],
            registry_url=os.environ["EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL"],
        )
    except KeyError as missing:
        pytest.fail(f"{missing} is not set: run these tests with `make image-test`")


@pytest.fixture(scope="module")
def samples(stack: Stack) -> tuple[str, set[str]]:
    """The sample events of examples/, published under a fresh prefix as `make run` does.

    Returns the prefix and the published event ids.
    """
    prefix = f"image-test-{uuid.uuid4().hex[:8]}"
    published = subprocess.run(
        [sys.executable, "-m", "tests.support.publish_samples", "examples"],
        cwd=ROOT,
        env={
            **os.environ,
            "EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap_servers,
            "EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL": stack.registry_url,
            "EVENT_BUS_TOPIC_PREFIX": prefix,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    ids = set(re.findall(r"\(([0-9a-f-]{36})\)$", published.stdout, flags=re.MULTILINE))
    assert ids, published.stdout
    return prefix, ids


def worker_env(stack: Stack, prefix: str, group: str, **extra: str) -> dict[str, str]:
    return {
        "EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap_servers,
        "EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL": stack.registry_url,
        "EVENT_BUS_TOPIC_PREFIX": prefix,
        "CONSUMER_GROUP_ID": group,
        "CONSUMER_DRY_RUN": "true",
        "CONSUMER_METRICS_PORT": "0",
        **extra,
    }


def env_args(env: dict[str, str]) -> list[str]:
    return [arg for name, value in env.items() for arg in ("--env", f"{name}={value}")]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_image_metadata_says_how_it_runs(image: str) -> None:
    """A numeric non-root USER (runAsNonRoot needs a number), the CLI entrypoint, the port."""
    inspected = podman("image", "inspect", image)
    assert inspected.returncode == 0, inspected.stderr
    config = json.loads(inspected.stdout)[0]["Config"]
    user = config["User"]
    assert re.fullmatch(r"[0-9]+(:[0-9]+)?", user), user
    assert int(user.split(":")[0]) != 0
    assert config["Entrypoint"] == ["credentials-consumer"]
    assert config["Cmd"] == ["run"]
    assert "9100/tcp" in config["ExposedPorts"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == __version__
    assert labels["org.opencontainers.image.title"] == "credentials-consumer"
    assert labels["org.opencontainers.image.licenses"] == "AGPL-3.0-only"
    assert re.fullmatch(r"[0-9a-f]{40}|unknown", labels["org.opencontainers.image.revision"])


def test_version_runs_read_only(image: str) -> None:
    """The entrypoint starts with nothing writable and prints the package version."""
    ran = podman("run", "--rm", *READ_ONLY, image, "--version")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == __version__


def test_final_stage_has_no_build_tools(image: str) -> None:
    """No compiler, no pip or setuptools in the runtime environment; the schemas are packaged."""
    probe = (
        "import importlib.util, json, shutil\n"
        "from consumer.wire import load_reader_schemas\n"
        "print(json.dumps({'modules': [m for m in ('pip', 'setuptools', 'wheel')"
        " if importlib.util.find_spec(m)], 'tools': [t for t in ('gcc', 'cc', 'make', 'pip',"
        " 'pip3') if shutil.which(t)], 'schemas': len(load_reader_schemas())}))"
    )
    ran = podman("run", "--rm", *READ_ONLY, "--entrypoint", "python3", image, "-c", probe)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout) == {"modules": [], "tools": [], "schemas": 4}


def test_dry_run_of_the_samples_matches_the_source_tree(
    image: str, stack: Stack, samples: tuple[str, set[str]]
) -> None:
    """The image decodes and handles every sample as the checked-out code does, byte for byte."""
    prefix, event_ids = samples
    run = ["run", "--stop-when-idle", "3"]
    in_image = podman(
        "run",
        "--rm",
        *READ_ONLY,
        "--network",
        "host",
        *env_args(worker_env(stack, prefix, f"{prefix}-image")),
        image,
        *run,
    )
    assert in_image.returncode == 0, in_image.stderr[-3000:]
    on_host = subprocess.run(
        [str(ROOT / ".venv/bin/credentials-consumer"), *run],
        env={**os.environ, **worker_env(stack, prefix, f"{prefix}-host")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert on_host.returncode == 0, on_host.stderr[-3000:]
    lines = sorted(in_image.stdout.splitlines())
    assert lines == sorted(on_host.stdout.splitlines())
    decoded = [json.loads(line) for line in lines]
    assert {line["event_id"] for line in decoded} == event_ids
    assert any("command" in line for line in decoded)
    assert "engine_stopped" in in_image.stderr


@pytest.fixture
def running_worker(image: str, stack: Stack, samples: tuple[str, set[str]]) -> Iterator[str]:
    """A detached worker container, ready (in its group); removed afterwards."""
    prefix, _ = samples
    name = f"credentials-consumer-test-{uuid.uuid4().hex[:8]}"
    port = free_port()
    # A group of its own: a member of an earlier test's group would hold the join for a session.
    env = worker_env(stack, prefix, name, CONSUMER_METRICS_PORT=str(port))
    started = podman(
        "run", "--detach", "--name", name, *READ_ONLY, "--network", "host", *env_args(env), image
    )
    assert started.returncode == 0, started.stderr
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"never ready: {podman('logs', name).stderr[-3000:]}")
            time.sleep(0.2)
        yield name
    finally:
        podman("rm", "--force", "--time", "10", name)


def test_runs_as_non_root_on_a_read_only_root(running_worker: str) -> None:
    """The worker's process is not uid 0, and nothing in its filesystem can be written."""
    uid = podman("exec", running_worker, "id", "-u")
    assert uid.returncode == 0, uid.stderr
    assert uid.stdout.strip() != "0"
    for path in ("/opt/venv/written", "/tmp/written"):
        touched = podman("exec", running_worker, "touch", path)
        assert touched.returncode != 0
        assert "Read-only file system" in touched.stderr


def test_sigterm_stops_the_container_cleanly_within_a_second(running_worker: str) -> None:
    """SIGTERM: drain (nothing in flight), leave the group, exit 0, in under a second."""
    # Signal the worker's process itself (from the host, as the kubelet's runtime does), so the
    # clock measures the worker and not podman's command line.
    pid = int(podman("inspect", "--format", "{{.State.Pid}}", running_worker).stdout)
    sent_at = time.time()
    os.kill(pid, signal.SIGTERM)
    waited = podman("wait", running_worker, timeout=30)
    assert waited.returncode == 0, waited.stderr
    assert waited.stdout.strip() == "0", podman("logs", running_worker).stderr[-3000:]
    finished = podman(
        "inspect", "--format", "{{.State.FinishedAt.UnixNano}}", running_worker
    ).stdout.strip()
    elapsed = int(finished) / 1e9 - sent_at
    print(f"stopped {elapsed:.3f} s after SIGTERM")
    assert 0 < elapsed < 1.0
    logs = podman("logs", running_worker).stderr
    assert '"reason": "SIGTERM"' in logs or "reason=SIGTERM" in logs, logs[-3000:]
    assert "engine_stopped" in logs
