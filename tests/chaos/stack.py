"""The soak's own Kafka broker and schema registry, started by ``dev/stack`` on free ports.

The soak stops and restarts both, so it never touches the shared stack (9092/8081): it picks
four free loopback ports and a state directory of its own, and reuses the broker classpath
and the extracted registry of ``.local/stack`` (``DEV_CACHE_DIR``), so nothing is fetched
twice.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Literal

ROOT = Path(__file__).resolve().parents[2]
Component = Literal["kafka", "registry"]


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports nothing listens on right now."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


class PrivateStack:
    """A broker and a registry for one soak; ``stop``/``start`` one of them to inject a fault."""

    def __init__(self, state_dir: Path, log: Path) -> None:
        kafka, controller, registry, management = free_ports(4)
        self.state_dir = state_dir
        self.log = log
        self.kafka_port = kafka
        self.registry_port = registry
        self.env = {
            **os.environ,
            "DEV_STATE_DIR": str(state_dir),
            "DEV_CACHE_DIR": os.environ.get("DEV_CACHE_DIR", str(ROOT / ".local" / "stack")),
            "DEV_KAFKA_PORT": str(kafka),
            "DEV_KAFKA_CONTROLLER_PORT": str(controller),
            "DEV_REGISTRY_PORT": str(registry),
            "DEV_REGISTRY_MANAGEMENT_PORT": str(management),
            "DEV_STOP_TIMEOUT": "20",
        }

    @property
    def bootstrap_servers(self) -> str:
        """Where the soak's broker listens."""
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def registry_url(self) -> str:
        """The soak's registry, Confluent-compatible API."""
        return f"http://127.0.0.1:{self.registry_port}/apis/ccompat/v7"

    def _stack(self, *args: str) -> None:
        with self.log.open("a") as out:
            done = subprocess.run(
                [str(ROOT / "dev" / "stack"), *args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if done.returncode != 0:
            tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
            raise RuntimeError(f"dev/stack {' '.join(args)} failed:\n{tail}")

    def start(self, component: Component | None = None) -> None:
        """Start both (or one component) and wait until ready."""
        self._stack("start", *([component] if component else []))

    def stop(self, component: Component | None = None) -> None:
        """Stop both (or one component): TERM, then KILL after 20 s."""
        self._stack("stop", *([component] if component else []))

    def __enter__(self) -> PrivateStack:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
        shutil.rmtree(self.state_dir / "kafka" / "data", ignore_errors=True)
