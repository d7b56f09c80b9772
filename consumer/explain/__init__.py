"""``explain``: why a learner has, or lacks, a program credential — a read-only decision trace.

Three steps, kept apart so that nothing here decides anything itself:

1. ``gather`` reads what the worker reads (GETs only).
2. ``judge`` hands those facts to the worker's own pure functions — ``rules`` and
   ``handlers`` — and keeps every answer with its reason; ``findings`` says where two
   sources disagree, with the fix.
3. ``Trace.to_json`` (``--json``) and ``render`` (a tree) print the same facts.

The trace shows the username only because the operator passed it; logs carry the LMS user
id, never the username, and never a secret.
"""

from __future__ import annotations

import structlog

from consumer.explain.gather import Question, Sources, gather
from consumer.explain.judge import Judge
from consumer.explain.render import render
from consumer.explain.trace import Trace
from consumer.services.bundle import Services

__all__ = ["Judge", "Question", "Sources", "Trace", "explain", "gather", "render"]

log = structlog.get_logger("consumer.explain")


def explain(services: Services, judge: Judge, question: Question) -> Trace:
    """Gather, then judge. Raises the services' errors and ``ExplainError``; writes nothing."""
    log.info("explain_started", lms_user_id=question.lms_user_id)
    trace = judge(gather(services, question), question)
    log.info(
        "explain_done",
        lms_user_id=question.lms_user_id,
        programs=len(trace.programs),
        findings=len(trace.findings),
    )
    return trace
