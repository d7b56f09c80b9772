"""Where the sources disagree, and how to fix it: the findings of an ``explain`` trace.

A finding compares what the LMS, Credentials and Discovery hold with what the worker's own
decisions (``judge``) say they should hold; each names the fix — where a lost event is
(a dead-letter topic), and how to apply it again (``dlq redrive`` or ``replay``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from consumer import rules
from consumer.commands import iso_utc
from consumer.explain.gather import Sources
from consumer.explain.trace import Decision, Finding, ProgramTrace
from consumer.programs import CompletionSource, LearnerCertificate

REPLAY_MARGIN = timedelta(hours=1)
"""A replay suggested from a certificate's last change starts this much earlier (clock skew)."""


@dataclass(frozen=True, slots=True)
class Findings:
    """Finds disagreements under one configuration: the completion source, the topics."""

    source: CompletionSource
    dead_letter_topics: tuple[str, ...]

    def fixes(self, runs: Iterable[str], since: datetime | None) -> tuple[str, ...]:
        """Where a lost event is, and how to apply it again (dead letters show course keys)."""
        start = iso_utc(since - REPLAY_MARGIN) if since else "<shortly before the certificate>"
        keys = ", ".join(sorted(runs)) or "the program's runs"
        fixes: list[str] = []
        for topic in self.dead_letter_topics:
            fixes += [
                f"look for a dead letter of {keys}: credentials-consumer dlq inspect {topic}",
                f"if there is one, fix its cause, then: credentials-consumer dlq redrive {topic}",
            ]
        fixes.append(
            "if there is none, the event was never consumed: credentials-consumer replay "
            f"--from-datetime {start} --plan, then without --plan (writes are upserts)"
        )
        return tuple(fixes)

    def runs(self, sources: Sources, syncs: Mapping[str, Decision]) -> list[Finding]:
        """Course certificates the LMS and Credentials disagree on.

        ``syncs`` holds, for every run of ``sources`` (certificates and held runs), what
        the worker's handler does with a certificate event carrying the LMS's certificate.
        """
        findings: list[Finding] = []
        for run in sorted(sources.certificates.keys() | sources.held_runs):
            cert = sources.certificates.get(run)
            held = run in sources.held_runs
            sync = syncs[run]
            if cert is not None and sync.action == "award" and not held:
                findings.append(
                    Finding(
                        "course_certificate_missing",
                        f"the LMS has a {cert.mode} {cert.status} certificate in {run} that "
                        "Credentials does not hold as awarded: its event was dead-lettered, "
                        "or never consumed",
                        self.fixes([run], cert.modified),
                    )
                )
            elif cert is not None and rules.is_passing_status(cert.status) and not held:
                findings.extend(self._unsynced(run, cert, sync))
            elif held and (cert is None or sync.action == "revoke"):
                status = cert.status if cert else "no certificate"
                findings.append(
                    Finding(
                        "course_certificate_stale",
                        f"Credentials holds an awarded course certificate in {run}, but the LMS "
                        f"has {status}: a revocation was dead-lettered or never consumed"
                        + ("" if cert else ", or the LMS certificate was deleted (no event)"),
                        self.fixes([run], cert.modified if cert else None),
                    )
                )
        return findings

    def _unsynced(self, run: str, cert: LearnerCertificate, sync: Decision) -> list[Finding]:
        """A passing certificate the worker rightly does not sync: say what that hides."""
        if sync.reason == "course_certificate_sync_disabled":
            return [
                Finding(
                    "course_certificate_missing",
                    f"the LMS has a {cert.mode} {cert.status} certificate in {run} that "
                    "Credentials does not hold; this worker does not sync course certificates "
                    "(CONSUMER_SYNC_COURSE_CERTIFICATES=false)",
                    ("check Credentials' own certificate-event consumer",),
                )
            ]
        if sync.reason == "learner_records_disabled" and self.source == "credentials":
            return [
                Finding(
                    "run_hidden_from_completion",
                    f"{run}'s org has learner records disabled, so Credentials never holds its "
                    "course certificate and completion (source credentials) counts it only on "
                    "its own certificate event",
                    ("CONSUMER_COMPLETION_SOURCE=lms counts every org's viewable certificates",),
                )
            ]
        return []

    def programs(
        self, programs: Iterable[ProgramTrace], sources: Sources, *, next_event: bool
    ) -> list[Finding]:
        """Programs owed, or held though not complete; ``next_event``: no run was asked."""
        findings: list[Finding] = []
        for trace in programs:
            uuid = trace.check.uuid
            if trace.verdict.action == "award":
                completing = [run for run in trace.runs.values() if run.check.complete]
                changes = [
                    cert.modified
                    for run in completing
                    if (cert := run.certificate) is not None and cert.modified is not None
                ]
                findings.append(
                    Finding(
                        "program_award_missing",
                        f"the learner completed program {uuid}, which Credentials does not "
                        "hold: the award was dead-lettered or never consumed, or Credentials "
                        "has no active program certificate for it (logged as "
                        "program_not_configured)"
                        + (
                            "; the learner's next certificate-created event awards it too"
                            if next_event
                            else ""
                        ),
                        self.fixes(
                            (run.check.key for run in completing),
                            max(changes) if changes else None,
                        ),
                    )
                )
            elif trace.awarded and not trace.check.complete:
                findings.append(
                    Finding(
                        "program_awarded_not_complete",
                        f"Credentials holds program {uuid} as awarded, but the sources do not "
                        f"complete it now ({trace.check.reason}): the worker revokes a program "
                        "only when a certificate of one of its runs is revoked (seed behaviour)",
                    )
                )
        if sources.programs_missing:
            findings.append(
                Finding(
                    "programs_unreadable",
                    f"Discovery failed to describe {len(sources.programs_missing)} programs; "
                    "they are left out of this trace",
                )
            )
        return findings
