"""``explain``: why a learner has, or lacks, a program credential — a read-only decision trace.

Three steps, kept apart so that nothing here decides anything itself:

1. ``gather`` reads what the worker reads: the learner's LMS certificates (the list, then
   the per-run endpoint for every other run of the programs in question), Credentials'
   awarded course-run and program credentials, Discovery's programs; with ``--course-run``
   also the run's LMS course modes and Studio's course details. Only GETs (and the
   client-credentials token request every client makes).
2. ``judge`` hands those facts to the worker's own pure functions — ``rules`` and
   ``handlers``, the very ones ``effects`` and the engine call — and keeps every answer with
   its reason (the skip vocabulary). Where two sources disagree it says so, with the fix.
3. ``Trace.to_json`` (``--json``) and ``render`` (a tree) print the same facts.

The trace shows the username only because the operator passed it; logs carry the LMS user
id, never the username, and never a secret.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import structlog

from consumer import rules
from consumer.commands import SyncCourseCertificate, iso_utc
from consumer.errors import ConsumerError, InvalidEventError
from consumer.events import (
    CertificateEvent,
    EventMeta,
    EventType,
    Learner,
    Pacing,
    parse_course_key,
)
from consumer.handlers import Handler, Policy, award_gate, make_handler, revoke_gate
from consumer.programs import CompletionSource, LearnerCertificate, PassingCertificate, Program
from consumer.rules import ProgramCheck, RunCheck, Skip
from consumer.services.bundle import Services
from consumer.services.http import RejectedError
from consumer.services.studio import CourseDetails

log = structlog.get_logger(__name__)

Action = Literal["award", "revoke", "none"]
REQUEST_ID = "explain"
REPLAY_MARGIN = timedelta(hours=1)
"""A replay suggested from a certificate's last change starts this much earlier (clock skew)."""


class ExplainError(ConsumerError):
    """``explain`` cannot answer (a program Discovery does not know, ...): exit 1."""

    reason = "explain_failed"


@dataclass(frozen=True, slots=True)
class Question:
    """What the operator asked: the learner, and optionally one program or one course run."""

    lms_user_id: int
    username: str = field(repr=False)
    program: str | None = None
    course_run: str | None = None


# ============================================================================ 1. gather


@dataclass(frozen=True, slots=True)
class Sources:
    """What the services answered: facts only, no decision.

    ``certificates`` holds every LMS certificate read, by run: the list's (``listed``) and
    the per-run answers for the other runs of the programs in question. ``awarded_programs``
    are canonical UUIDs. ``course_modes``/``course_details`` only with a course run asked
    (``course_details`` None when Studio is not configured).
    """

    certificates: Mapping[str, LearnerCertificate]
    held_runs: frozenset[str]
    awarded_programs: frozenset[str]
    programs: tuple[Program, ...]
    programs_configured: bool = True
    programs_missing: tuple[str, ...] = ()
    course_modes: tuple[str, ...] = ()
    course_details: CourseDetails | None = None


def gather(services: Services, question: Question) -> Sources:
    """Read everything the trace needs; raises the services' errors (nothing is written)."""
    username = question.username
    lms, credentials = services.lms, services.credentials
    certificates = {
        cert.course_id: cert.as_learner(listed=True)
        for cert in lms.certificates(username=username, request_id=REQUEST_ID)
    }
    held = credentials.awarded_course_runs(username=username, request_id=REQUEST_ID)
    awarded = frozenset(
        rules.canonical_uuid(uuid)
        for uuid in credentials.awarded_program_uuids(username=username, request_id=REQUEST_ID)
    )
    asked_run = frozenset({question.course_run}) if question.course_run else frozenset[str]()
    programs, missing = _programs(
        services, question, certificates.keys() | held | asked_run, awarded
    )
    wanted = {run for program in programs for run in program.run_keys()} | asked_run
    for run in sorted(wanted - certificates.keys()):
        cert = lms.certificate(username=username, course_run=run, request_id=REQUEST_ID)
        if cert is not None:
            certificates[run] = cert.as_learner(listed=False)
    modes: tuple[str, ...] = ()
    details = None
    if question.course_run:
        modes = lms.course_modes(course_run=question.course_run, request_id=REQUEST_ID)
        if services.studio is not None:
            details = services.studio.course_details(
                course_run=question.course_run, request_id=REQUEST_ID
            )
    return Sources(
        certificates=certificates,
        held_runs=held,
        awarded_programs=awarded,
        programs=programs,
        programs_configured=services.programs is not None,
        programs_missing=missing,
        course_modes=modes,
        course_details=details,
    )


def _programs(
    services: Services, question: Question, runs: Iterable[str], awarded: frozenset[str]
) -> tuple[tuple[Program, ...], tuple[str, ...]]:
    """The programs in question, and the UUIDs Discovery failed to describe.

    The one asked for, or every program containing one of the learner's runs or held as
    awarded — from the worker's own program catalogue (``ProgramCache``), loaded once.
    """
    if services.discovery is None or services.programs is None:
        return (), ()
    if question.program:
        try:
            return (services.discovery.program(question.program, request_id=REQUEST_ID),), ()
        except RejectedError as error:
            if error.status == 404:
                raise ExplainError(
                    f"Discovery has no program {question.program}", reason="program_not_found"
                ) from None
            raise
    index = services.programs.index()
    found = {program.uuid: program for program in index.for_runs(runs)}
    for program in index.programs.values():
        if rules.canonical_uuid(program.uuid) in awarded:
            found.setdefault(program.uuid, program)
    return tuple(found[uuid] for uuid in sorted(found)), index.missing


# ============================================================================ 2. judge


@dataclass(frozen=True, slots=True)
class Decision:
    """What the worker would do, and why: ``reason`` is snake_case (the skip vocabulary)."""

    action: str
    reason: str
    detail: str

    def to_json(self) -> dict[str, str]:
        """The JSON form."""
        return {"action": self.action, "reason": self.reason, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Finding:
    """Two sources disagree (or a setting hides something): what, and how to fix it."""

    kind: str
    detail: str
    fixes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {"kind": self.kind, "detail": self.detail, "fixes": list(self.fixes)}


@dataclass(frozen=True, slots=True)
class RunTrace:
    """One program run: the learner's certificate, Credentials' copy, and the rules' check."""

    check: RunCheck
    certificate: LearnerCertificate | None
    in_credentials: bool
    counted: bool

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "key": self.check.key,
            "seat_type": self.check.seat_type,
            "required_mode": rules.run_seat_type(self.check.seat_type),
            "certificate": _certificate_json(self.certificate),
            "in_credentials": self.in_credentials,
            "counted": self.counted,
            "complete": self.check.complete,
            "reason": self.check.reason,
            "detail": self.check.detail,
        }


@dataclass(frozen=True, slots=True)
class ProgramTrace:
    """One program: its courses and runs as the rules judged them, and the verdict."""

    program: Program
    check: ProgramCheck
    runs: Mapping[str, RunTrace]
    awarded: bool
    excluded: bool
    verdict: Decision

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "uuid": self.check.uuid,
            "status": self.program.status,
            "complete": self.check.complete,
            "completion_reason": self.check.reason,
            "completion_detail": self.check.detail,
            "awarded": self.awarded,
            "excluded": self.excluded,
            "verdict": self.verdict.action,
            "reason": self.verdict.reason,
            "detail": self.verdict.detail,
            "courses": [
                {
                    "key": course.key,
                    "complete": course.complete,
                    "reason": course.reason,
                    "runs": [self.runs[run.key].to_json() for run in course.runs],
                }
                for course in self.check.courses
            ],
        }


@dataclass(frozen=True, slots=True)
class DateTrace:
    """The certificate available date a catalog event of the run would set, and why."""

    modes: tuple[str, ...]
    certificate_type: str | None
    decision: Decision
    value: datetime | None = None
    known: bool = False
    pacing: str | None = None
    end: datetime | None = None
    display_behavior: str | None = None
    assumed: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            **self.decision.to_json(),
            "course_modes": list(self.modes),
            "certificate_type": self.certificate_type,
            "certificate_available_date": iso_utc(self.value),
            "date_known": self.known,
            "pacing": self.pacing,
            "end": iso_utc(self.end),
            "display_behavior": self.display_behavior,
            "assumed": self.assumed,
        }


@dataclass(frozen=True, slots=True)
class CourseRunTrace:
    """The run asked with ``--course-run``: course-certificate sync and CAD."""

    key: str
    certificate: LearnerCertificate | None
    in_credentials: bool
    sync: Decision
    date: DateTrace

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "key": self.key,
            "certificate": _certificate_json(self.certificate),
            "in_credentials": self.in_credentials,
            "course_certificate": self.sync.to_json(),
            "certificate_available_date": self.date.to_json(),
        }


@dataclass(frozen=True, slots=True)
class Trace:
    """The whole answer: what the sources hold, each decision with its reason, and findings."""

    question: Question
    completion_source: CompletionSource
    judged_as: str
    sources: Sources
    programs: tuple[ProgramTrace, ...]
    programs_gate: Decision | None
    course_run: CourseRunTrace | None
    findings: tuple[Finding, ...]

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` form: the same facts as the tree."""
        sources = self.sources
        return {
            "learner": {
                "lms_user_id": self.question.lms_user_id,
                "username": self.question.username,
            },
            "completion_source": self.completion_source,
            "judged_as": self.judged_as,
            "sources": {
                "lms_certificates": [
                    _certificate_json(cert) for _, cert in sorted(sources.certificates.items())
                ],
                "credentials_course_runs": sorted(sources.held_runs),
                "credentials_programs": sorted(sources.awarded_programs),
                "programs_missing": list(sources.programs_missing),
            },
            "programs_gate": self.programs_gate.to_json() if self.programs_gate else None,
            "programs": [program.to_json() for program in self.programs],
            "course_run": self.course_run.to_json() if self.course_run else None,
            "findings": [finding.to_json() for finding in self.findings],
        }


def _certificate_json(cert: LearnerCertificate | None) -> dict[str, Any] | None:
    if cert is None:
        return None
    return {
        "course_run": cert.course_run,
        "mode": cert.mode,
        "status": cert.status,
        "listed": cert.listed,
        "modified": iso_utc(cert.modified),
    }


@dataclass(frozen=True, slots=True)
class Judge:
    """The worker's decisions under one configuration, applied to gathered ``Sources``."""

    policy: Policy
    source: CompletionSource
    dead_letter_topics: tuple[str, ...]
    handler: Handler

    @classmethod
    def build(
        cls, policy: Policy, source: CompletionSource, dead_letter_topics: tuple[str, ...]
    ) -> Judge:
        """The judge with the worker's own handler for ``policy``."""
        return cls(policy, source, dead_letter_topics, make_handler(policy))

    def __call__(self, sources: Sources, question: Question) -> Trace:
        """Judge the sources as the worker would; pure (no request)."""
        learner = Learner(user_id=question.lms_user_id, username=question.username)
        asked = sources.certificates.get(question.course_run) if question.course_run else None
        own = rules.event_certificate(asked.course_run, asked.mode, asked.status) if asked else None
        revoked_run = question.course_run if asked is not None and own is None else None
        judged_as = (
            f"a certificate event of {question.course_run} carrying the LMS's certificate"
            if question.course_run
            else "the learner's next certificate event"
        )
        counted = rules.counted_certificates(
            sources.certificates.values(),
            source=self.source,
            held_runs=sources.held_runs,
            own=own,
        )
        gate = award_gate(self.policy)
        programs = tuple(
            self._program(program, sources, counted, own, revoked_run)
            for program in sources.programs
        )
        course_run = (
            self._course_run(question.course_run, learner, sources) if question.course_run else None
        )
        findings = (
            *self._run_findings(learner, sources),
            *self._program_findings(programs, sources, next_event=question.course_run is None),
        )
        return Trace(
            question=question,
            completion_source=self.source,
            judged_as=judged_as,
            sources=sources,
            programs=programs,
            programs_gate=Decision("none", gate.reason, gate.detail) if gate else None,
            course_run=course_run,
            findings=findings,
        )

    # ------------------------------------------------------------------ programs

    def _program(
        self,
        program: Program,
        sources: Sources,
        counted: tuple[PassingCertificate, ...],
        own: PassingCertificate | None,
        revoked_run: str | None,
    ) -> ProgramTrace:
        skips = {
            run: skip
            for run in program.run_keys()
            if (own is None or run != own.course_run)
            and (
                skip := rules.completion_skip(
                    sources.certificates.get(run),
                    source=self.source,
                    held=run in sources.held_runs,
                )
            )
            is not None
        }
        check = rules.check_program(program, counted, skips=skips)
        counted_runs = {cert.course_run for cert in counted}
        runs = {
            run.key: RunTrace(
                check=run,
                certificate=sources.certificates.get(run.key),
                in_credentials=run.key in sources.held_runs,
                counted=run.key in counted_runs,
            )
            for course in check.courses
            for run in course.runs
        }
        excluded = self.policy.programs_without_certificates
        is_excluded = rules.award_skip(program.uuid, awarded=(), excluded=excluded) is not None
        return ProgramTrace(
            program=program,
            check=check,
            runs=runs,
            awarded=check.uuid in sources.awarded_programs,
            excluded=is_excluded,
            verdict=self._verdict(program, check, sources.awarded_programs, revoked_run),
        )

    def _verdict(
        self,
        program: Program,
        check: ProgramCheck,
        awarded: frozenset[str],
        revoked_run: str | None,
    ) -> Decision:
        """Award, revoke or nothing, from the rules' and the handler's own answers."""
        if program.status not in ("active", "retired"):
            return Decision(
                "none",
                "program_not_listed",
                f"Discovery lists only active and retired programs to the worker, not "
                f"{program.status} ones",
            )
        if (
            revoked_run is not None
            and revoke_gate(self.policy) is None
            and rules.revoke_skip(program, revoked_run, awarded) is None
        ):
            return Decision(
                "revoke",
                "run_certificate_revoked",
                f"the certificate of {revoked_run} is not passing: its certificate-revoked "
                "event revokes the program (the seed does not re-check completion)",
            )
        if not check.complete:
            return Decision("none", check.reason or "", check.detail)
        skip = award_gate(self.policy) or rules.award_skip(
            check.uuid, awarded=awarded, excluded=self.policy.programs_without_certificates
        )
        if skip is not None:
            return Decision("none", skip.reason, skip.detail)
        return Decision(
            "award",
            "program_completed",
            "every course is complete and Credentials does not hold the program",
        )

    # ------------------------------------------------------------------ course run

    def _sync(self, learner: Learner, course_run: str, cert: LearnerCertificate | None) -> Decision:
        """What the worker's handler does with a certificate event carrying ``cert``."""
        if cert is None:
            return Decision(
                "none",
                "no_certificate",
                "the LMS has no certificate of the learner in this run: no event, nothing to sync",
            )
        try:
            course_key = parse_course_key(course_run)
        except InvalidEventError:
            return Decision("none", "invalid_course_key", f"{course_run} is not a course key")
        event = CertificateEvent(
            meta=EventMeta(id=REQUEST_ID, type=EventType.CERTIFICATE_CHANGED),
            learner=learner,
            course_key=course_key,
            mode=cert.mode,
            status=cert.status,
        )
        handled = self.handler(event)
        for command in handled.commands:
            if isinstance(command, SyncCourseCertificate):
                action: Action = "award" if command.status == "awarded" else "revoke"
                return Decision(
                    action,
                    f"certificate_{cert.status}",
                    f"posts the course-run credential as {command.status}, mode {command.mode}",
                )
        skip = handled.skipped[0] if handled.skipped else Skip("no_command", "nothing to do")
        return Decision("none", skip.reason, skip.detail)

    def _course_run(self, course_run: str, learner: Learner, sources: Sources) -> CourseRunTrace:
        cert = sources.certificates.get(course_run)
        return CourseRunTrace(
            key=course_run,
            certificate=cert,
            in_credentials=course_run in sources.held_runs,
            sync=self._sync(learner, course_run, cert),
            date=self._date(sources),
        )

    def _date(self, sources: Sources) -> DateTrace:
        """The CAD a catalog event of the run would set: ``rules``' two answers, as effects."""
        modes = sources.course_modes
        certificate_type = rules.certificate_type(
            modes, honor_certificates_enabled=self.policy.honor_certificates_enabled
        )
        if isinstance(certificate_type, Skip):
            return DateTrace(
                modes, None, Decision("none", certificate_type.reason, certificate_type.detail)
            )
        details = sources.course_details
        if details is None:
            return DateTrace(
                modes,
                certificate_type,
                Decision(
                    "set",
                    "studio_not_configured",
                    "pacing and end come with the catalog event, and Studio (CMS_ROOT_URL) is "
                    "not configured: the worker assumes display behaviour end — the course end "
                    "for an instructor-paced run, no date for a self-paced one",
                ),
                assumed="studio_not_configured",
            )
        pacing: Pacing = "self" if details.self_paced else "instructor"
        decided = rules.certificate_available_date(
            pacing=pacing,
            end=details.end,
            display_behavior=details.display_behavior,
            available_date=details.certificate_available_date,
        )
        return DateTrace(
            modes,
            certificate_type,
            Decision("set", decided.reason, decided.detail),
            value=decided.value,
            known=True,
            pacing=pacing,
            end=details.end,
            display_behavior=details.display_behavior,
            assumed=decided.fallback,
        )

    # ------------------------------------------------------------------ findings

    def _fixes(self, runs: Iterable[str], since: datetime | None) -> tuple[str, ...]:
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

    def _run_findings(self, learner: Learner, sources: Sources) -> list[Finding]:
        """Course certificates the LMS and Credentials disagree on."""
        findings: list[Finding] = []
        for run in sorted(sources.certificates.keys() | sources.held_runs):
            cert = sources.certificates.get(run)
            held = run in sources.held_runs
            sync = self._sync(learner, run, cert)
            if cert is not None and sync.action == "award" and not held:
                findings.append(
                    Finding(
                        "course_certificate_missing",
                        f"the LMS has a {cert.mode} {cert.status} certificate in {run} that "
                        "Credentials does not hold as awarded: its event was dead-lettered, "
                        "or never consumed",
                        self._fixes([run], cert.modified),
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
                        self._fixes([run], cert.modified if cert else None),
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

    def _program_findings(
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
                        self._fixes(
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


# ============================================================================ 3. render


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


# ============================================================================ the command


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
