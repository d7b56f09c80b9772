"""The lock files: in step with pyproject.toml, hash-pinned, and what the venv really holds.

Offline: the drift tests read pyproject.toml and requirements/*.txt only. ``make lock``
(``dev/lock``) rewrites the lock; these tests say when it must be run.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# The environment the lock is resolved for (dev/lock): CPython 3.11 on Linux.
TARGET = {
    **{key: str(value) for key, value in default_environment().items()},
    "python_version": "3.11",
    "sys_platform": "linux",
}
FROM_PYPROJECT = "credentials-consumer (pyproject.toml)"
FROM_BUILD_SYSTEM = "-r [build-system] requires"


@dataclass
class Pin:
    version: str
    hashes: list[str] = field(default_factory=list)
    via: set[str] = field(default_factory=set)


def read_lock(name: str) -> dict[str, Pin]:
    """``name==version``, its ``--hash`` lines and its ``# via`` sources, per package."""
    pins: dict[str, Pin] = {}
    current: Pin | None = None
    in_via = False
    for line in (ROOT / "requirements" / name).read_text().splitlines():
        if pinned := re.match(r"^([A-Za-z0-9._-]+)==(\S+)", line):
            current = pins[canonicalize_name(pinned.group(1))] = Pin(pinned.group(2))
            in_via = False
        elif current and (digest := re.search(r"--hash=(sha256:[0-9a-f]{64})", line)):
            current.hashes.append(digest.group(1))
        elif current and (via := re.match(r"^\s+# via( (.+))?$", line)):
            in_via = via.group(2) is None
            if via.group(2):
                current.via.add(via.group(2).strip())
        elif current and in_via and (source := re.match(r"^\s+#\s+(.+)$", line)):
            current.via.add(source.group(1).strip())
    return pins


def requirements(*groups: str, build: bool = False) -> list[Requirement]:
    """The requirements pyproject lists: the project's, the named extras', the build backend's."""
    listed = list(PYPROJECT["project"]["dependencies"]) if "runtime" in groups else []
    for extra in groups:
        listed += PYPROJECT["project"]["optional-dependencies"].get(extra, [])
    if build:
        listed += PYPROJECT["build-system"]["requires"]
    return [Requirement(text) for text in listed]


LOCKS = {
    "runtime.txt": (requirements("runtime"), {FROM_PYPROJECT}),
    "build.txt": (requirements(build=True), {FROM_BUILD_SYSTEM}),
    "dev.txt": (
        requirements("runtime", "test", "lint", "bench", build=True),
        {FROM_PYPROJECT, FROM_BUILD_SYSTEM},
    ),
}


@pytest.mark.parametrize("lock", list(LOCKS))
def test_the_lock_satisfies_every_range_of_pyproject(lock: str) -> None:
    """A requirement added, or a range moved past the pin, fails until `make lock`."""
    pins = read_lock(lock)
    wanted, _ = LOCKS[lock]
    for requirement in wanted:
        if requirement.marker and not requirement.marker.evaluate(TARGET):
            continue
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in requirements/{lock}: run make lock"
        assert requirement.specifier.contains(pins[name].version, prereleases=True), (
            f"requirements/{lock} pins {name}=={pins[name].version}, outside {requirement}: "
            "run make lock"
        )


@pytest.mark.parametrize("lock", list(LOCKS))
def test_the_lock_pins_nothing_pyproject_dropped(lock: str) -> None:
    """What the lock says comes straight from pyproject is exactly what pyproject lists."""
    pins = read_lock(lock)
    wanted, sources = LOCKS[lock]
    direct = {name for name, pin in pins.items() if pin.via & sources}
    listed = {
        canonicalize_name(r.name) for r in wanted if not r.marker or r.marker.evaluate(TARGET)
    }
    assert direct == listed, "pyproject.toml and the lock disagree: run make lock"


@pytest.mark.parametrize("lock", list(LOCKS))
def test_every_pin_is_hash_checked(lock: str) -> None:
    """With --require-hashes, pip installs nothing whose bytes the lock does not name."""
    pins = read_lock(lock)
    assert pins
    assert all(pin.hashes for pin in pins.values())


@pytest.mark.parametrize("subset", ["runtime.txt", "build.txt"])
def test_the_image_installs_what_development_tests(subset: str) -> None:
    """The image's pins (runtime, build backend) are the development lock's, hashes included."""
    development = read_lock("dev.txt")
    for name, pin in read_lock(subset).items():
        assert name in development, name
        assert (development[name].version, sorted(development[name].hashes)) == (
            pin.version,
            sorted(pin.hashes),
        ), name


def test_the_environment_holds_exactly_the_locked_versions() -> None:
    """`make install` leaves nothing unlocked and nothing at another version (pip freeze)."""
    frozen = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--all", "--exclude-editable"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    installed: dict[str, str] = {
        str(canonicalize_name(name)): version
        for name, version in re.findall(r"^([A-Za-z0-9._-]+)==(\S+)$", frozen, re.MULTILINE)
    }
    installed.pop("pip", None)  # the venv's own installer, not a dependency
    locked = {str(name): pin.version for name, pin in read_lock("dev.txt").items()}
    assert installed == locked, "the venv is not the lock: run make install (or make lock)"
    assert "credentials-consumer" not in installed  # the project itself: editable, no deps
