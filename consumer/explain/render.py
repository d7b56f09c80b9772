"""Step 3 of ``explain``: the trace as a tree for a person (``--json`` prints ``to_json``)."""

from __future__ import annotations

from typing import Any

from consumer.commands import iso_utc
from consumer.explain.trace import CourseRunTrace, ProgramTrace, RunTrace, Trace
from consumer.programs import LearnerCertificate


def render(trace: Trace) -> str:
    """The trace as a tree for a person: every decision with its reason, then the findings."""
    question = trace.question
    sources = trace.sources
    lines = [
        f"learner {question.lms_user_id} (username {question.username}, as given)",
        f"  completion source: {trace.completion_source}; judged as the worker would on "
        f"{trace.judged_as}",
        f"  LMS: {len(sources.certificates)} certificates read; Credentials: "
        f"{len(sources.held_runs)} course runs and {len(sources.awarded_programs)} programs "
        "awarded",
        "",
    ]
    if trace.programs_gate is not None:
        gate = trace.programs_gate
        lines += [f"programs: {gate.action} ({gate.reason}): {gate.detail}", ""]
    if not trace.programs and sources.programs_configured:
        lines += ["programs: none contains a run of this learner", ""]
    for program in trace.programs:
        lines += [*_tree(_program_node(program)), ""]
    if trace.course_run is not None:
        lines += [*_tree(_course_run_node(trace.course_run)), ""]
    if trace.findings:
        lines += _tree(
            (
                "sources disagree",
                [
                    (
                        f"! {finding.kind}",
                        [(finding.detail, []), *((f"fix: {fix}", []) for fix in finding.fixes)],
                    )
                    for finding in trace.findings
                ],
            )
        )
    else:
        lines.append("sources agree: nothing to fix")
    return "\n".join(lines) + "\n"


Node = tuple[str, list[Any]]


def _tree(node: Node, prefix: str = "", last: bool = True, root: bool = True) -> list[str]:
    label, children = node
    if root:
        lines = [label]
        inner = ""
    else:
        lines = [f"{prefix}{'└── ' if last else '├── '}{label}"]
        inner = prefix + ("    " if last else "│   ")
    for index, child in enumerate(children):
        lines += _tree(child, inner, index == len(children) - 1, root=False)
    return lines


def _mark(ok: bool) -> str:
    return "✓" if ok else "✗"


def _certificate_text(cert: LearnerCertificate | None, in_credentials: bool) -> str:
    lms = (
        f"LMS: {cert.mode}, {cert.status}" + ("" if cert.listed else " (not yet viewable)")
        if cert
        else "LMS: no certificate"
    )
    return f"{lms}; Credentials: {'holds it' if in_credentials else 'does not hold it'}"


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def _program_node(trace: ProgramTrace) -> Node:
    verdict, check = trace.verdict, trace.check
    complete = _yes(check.complete) + (f" ({check.reason})" if check.reason else "")
    facts = (
        f"complete: {complete}; awarded in Credentials: {_yes(trace.awarded)}; "
        f"excluded (PROGRAMS_WITHOUT_CERTIFICATES): {_yes(trace.excluded)}"
    )
    courses: list[Node] = [
        (
            f"{_mark(course.complete)} course {course.key}"
            + ("" if course.complete else f" ({course.reason})"),
            [_run_node(trace.runs[run.key]) for run in course.runs],
        )
        for course in check.courses
    ]
    return (
        f"program {check.uuid} ({trace.program.status}): {verdict.action.upper()} "
        f"({verdict.reason})",
        [(f"why: {verdict.detail}", []), (facts, []), *courses],
    )


def _run_node(run: RunTrace) -> Node:
    check = run.check
    outcome = (
        f"✓ counts: mode {check.mode} matches seat type {check.seat_type}"
        if check.complete
        else f"✗ {check.reason}: {check.detail}"
    )
    return (
        f"run {check.key} (seat type {check.seat_type or 'none'})",
        [(_certificate_text(run.certificate, run.in_credentials), []), (outcome, [])],
    )


def _course_run_node(trace: CourseRunTrace) -> Node:
    sync, date = trace.sync, trace.date
    when = (
        f"{iso_utc(date.value) or 'no date (null)'}"
        if date.known
        else "depends on the catalog event"
    )
    date_lines: list[Node] = [
        (
            f"course modes: {', '.join(date.modes) or 'none'}; certificate type: "
            f"{date.certificate_type or 'none'}",
            [],
        ),
    ]
    if date.decision.action == "set":
        date_lines.append(
            (f"would set: {when} ({date.decision.reason}: {date.decision.detail})", [])
        )
        if date.known:
            date_lines.append(
                (
                    f"from Studio: pacing {date.pacing}, end {iso_utc(date.end) or 'none'}, "
                    f"display behaviour {date.display_behavior or 'none'}",
                    [],
                )
            )
    else:
        date_lines.append((f"✗ nothing set ({date.decision.reason}: {date.decision.detail})", []))
    return (
        f"course run {trace.key}",
        [
            (
                "course certificate",
                [
                    (_certificate_text(trace.certificate, trace.in_credentials), []),
                    (f"{sync.action.upper()} ({sync.reason}): {sync.detail}", []),
                ],
            ),
            ("certificate available date (on a catalog event)", date_lines),
        ],
    )
