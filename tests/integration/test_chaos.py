"""The small soak of ``make chaos`` passes its audit, and leaks no secret (issue 14).

It runs ``python -m tests.chaos run --small`` as a process: its own broker and registry on
free ports (it stops and restarts both), the fake Open edX, the worker as processes; 3,000
events published the LMS's way with poison records and always-failing learners among them;
random 5xx, timeouts and resets on every service, a Credentials outage longer than the retry
budget, the registry and the broker stopped and restarted, a second worker joining and
leaving, a SIGKILL. The audit (``tests/chaos/audit.py``) then finds nothing lost, no wrong
final state, no ordering violation, the dead letters exactly as injected, and none of the
configuration's secrets (nor a JWT the fake issued, nor a learner's username or e-mail) in
any log line, command output or dead-letter header.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.chaos.stack import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(720)]


def test_the_small_soak_passes_its_audit_and_leaks_no_secret(tmp_path: Path) -> None:
    """Nothing lost, wrong, out of order or leaked; dead letters exactly as injected."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.chaos", "run", str(tmp_path), "--small"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=660,
        check=False,
    )

    assert done.returncode == 0, f"{done.stdout}\n{done.stderr[-4000:]}"
    assert "audit: PASS" in done.stdout
    secrets = json.loads((tmp_path / "private" / "secrets.json").read_text())
    # The secrets were in play, so finding none of them means something:
    assert json.loads((tmp_path / "private" / "tokens.json").read_text())  # OAuth secret used
    check = (tmp_path / "probes" / "check.txt").read_text()
    assert f"schema_registry_api_key = {secrets['registry_key']}" in check
    assert "schema_registry_api_secret = ***" in check
    assert "ok    registry" in check
    with_sasl = (tmp_path / "probes" / "check-sasl.txt").read_text()
    assert f"api_key = {secrets['sasl_key']}" in with_sasl
    assert "api_secret = ***" in with_sasl
    assert "FAIL  kafka        unreachable" in with_sasl  # SASL_SSL against a plaintext port
    for name in ("inspect-certificates", "inspect-catalog"):
        assert json.loads((tmp_path / "probes" / f"{name}.txt").read_text())["total"] >= 1
