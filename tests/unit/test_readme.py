"""The README's configuration table is the contract operators read: it must not drift."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path

from consumer import config

ROOT = Path(__file__).resolve().parents[2]


class RecordingEnv(Mapping[str, str]):
    """An environment that remembers every variable the loader asks for."""

    def __init__(self, values: dict[str, str]) -> None:
        self._values = values
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return self._values[key]

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        self.asked.add(key)
        return self._values.get(key, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def _read_by_config() -> set[str]:
    env = RecordingEnv(
        {
            "EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS": "kafka:9092",
            "BACKEND_SERVICE_EDX_OAUTH2_PROVIDER_URL": "http://lms/oauth2",
            "BACKEND_SERVICE_EDX_OAUTH2_KEY": "id",
            "BACKEND_SERVICE_EDX_OAUTH2_SECRET": "secret",
            "CREDENTIALS_INTERNAL_SERVICE_URL": "http://credentials",
            "LMS_ROOT_URL": "http://lms",
        }
    )
    config.load(env)
    return env.asked


def _documented() -> set[str]:
    table = (ROOT / "README.md").read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])}


def test_every_variable_config_reads_is_in_the_readme_table() -> None:
    """A variable added to config.py without a README row fails here."""
    assert _read_by_config() - _documented() == set()


def test_the_readme_table_documents_no_variable_config_ignores() -> None:
    """A README row for a variable nothing reads fails here."""
    assert _documented() - _read_by_config() == set()
