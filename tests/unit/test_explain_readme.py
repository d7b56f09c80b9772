"""The README's example trace is what ``explain`` prints today for the world it describes."""

from __future__ import annotations

import re
from pathlib import Path

from consumer.explain import Judge, Question, explain, render
from consumer.handlers import Policy
from consumer.services.bundle import build_services
from tests.fakes.openedx import FakeOpenEdx
from tests.fakes.openedx.settings import service_settings

ROOT = Path(__file__).resolve().parents[2]
A1, B1, C1, D1, E1 = (f"course-v1:edX+{course}+1T2026" for course in "ABCDE")
EXCLUDED = "33333333-3333-4333-8333-333333333333"
_DATETIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def _readme_example() -> str:
    section = (ROOT / "README.md").read_text().split("## Support:", 1)[1].split("\n## ", 1)[0]
    blocks = section.split("```")
    return next(block for block in blocks if block.startswith("\nlearner ")).lstrip("\n")


def test_the_readme_example_is_the_commands_output(fake: FakeOpenEdx) -> None:
    """Rebuilding the README's world on the fake prints the README's trace (times aside)."""
    fake.add_user("alice", 42)
    for run in (A1, B1, C1, D1, E1):
        fake.add_course_run(run, modes=("audit", "verified"), end="2026-06-30T00:00:00Z")
    fake.add_program(
        "11111111-1111-4111-8111-111111111111",
        {"edX+A": {A1: "verified"}, "edX+B": {B1: "verified"}, "edX+E": {E1: "verified"}},
    )
    fake.add_program(
        "22222222-2222-4222-8222-222222222222",
        {"edX+A": {A1: "verified"}, "edX+C": {C1: "verified"}},
    )
    fake.add_program(EXCLUDED, {"edX+B": {B1: "verified"}})
    fake.add_program("44444444-4444-4444-8444-444444444444", {"edX+D": {D1: "verified"}})
    for run, mode in ((A1, "verified"), (B1, "verified"), (D1, "honor")):
        fake.add_lms_certificate("alice", run, mode=mode)
        fake.add_credential("alice", course_run=run, mode=mode)
    fake.add_lms_certificate("alice", E1, mode="verified")
    services = build_services(service_settings(fake))
    policy = Policy(programs_without_certificates=frozenset({EXCLUDED}))
    judge = Judge.build(policy, ("learning-certificate-lifecycle.dlq",))
    try:
        text = render(explain(services, judge, Question(42, "alice", course_run=E1)))
    finally:
        services.close()
    expected = _readme_example()
    assert _DATETIME.sub("<time>", text) == _DATETIME.sub("<time>", expected)
