"""Step 2 of ``explain``: the worker's own decisions, applied to what was gathered.

``Judge`` hands the gathered facts to the worker's pure functions — ``rules`` and
``handlers``, the very ones ``effects`` and the engine call — and keeps every answer with
its reason (the skip vocabulary); ``findings`` says where two sources disagree, with the
fix. Nothing here decides anything itself, and nothing here sends a request.
"""

from __future__ import annotations

from dataclasses import dataclass

from consumer import rules
from consumer.commands import SyncCourseCertificate
from consumer.errors import InvalidEventError
from consumer.events import (
    CertificateEvent,
    EventMeta,
    EventType,
    Learner,
    Pacing,
    parse_course_key,
)
from consumer.explain.findings import Findings
from consumer.explain.gather import REQUEST_ID, Question, Sources
from consumer.explain.trace import (
    Action,
    CourseRunTrace,
    DateTrace,
    Decision,
    ProgramTrace,
    RunTrace,
    Trace,
)
from consumer.handlers import Handler, Policy, award_gate, make_handler, revoke_gate
from consumer.programs import CompletionSource, LearnerCertificate, PassingCertificate, Program
from consumer.rules import ProgramCheck, Skip


@dataclass(frozen=True, slots=True)
class Judge:
    """The worker's decisions under one configuration, applied to gathered ``Sources``.

    ``policy`` is the worker's own (its ``completion_source`` included); ``handler`` is the
    handler the worker builds from it.
    """

    policy: Policy
    handler: Handler
    findings: Findings

    @classmethod
    def build(cls, policy: Policy, dead_letter_topics: tuple[str, ...]) -> Judge:
        """The judge with the worker's own handler for ``policy``."""
        return cls(
            policy, make_handler(policy), Findings(policy.completion_source, dead_letter_topics)
        )

    @property
    def source(self) -> CompletionSource:
        """Where completion learns the learner's runs (``CONSUMER_COMPLETION_SOURCE``)."""
        return self.policy.completion_source

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
        syncs = {
            run: self._sync(learner, run, sources.certificates.get(run))
            for run in sources.certificates.keys() | sources.held_runs
        }
        findings = (
            *self.findings.runs(sources, syncs),
            *self.findings.programs(programs, sources, next_event=question.course_run is None),
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
