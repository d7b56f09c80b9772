"""What Credentials should hold: the worker's pure rules applied to the event log, in order.

``handlers`` turns each event into commands exactly as the worker does; this module is the
small model of what each command does to Credentials, given the fake's catalogue (course
modes, Studio's display settings, Discovery's programs, the LMS's certificates) and the
learners whose requests always fail. It follows the documented behaviour of the services
(reference/openedx-services.md, as the fake implements it) and of ``effects`` (completion
from Credentials' awarded course runs, modes from the event and the LMS):

- ``SyncCourseCertificate``: the learner's course-run credential takes the status; the run
  gets a certificate configuration of the posted mode if it had none.
- ``AwardPrograms``: the programs the held runs (plus the event's own passing certificate)
  complete, minus the awarded ones and the excluded ones, are awarded; a program Credentials
  has not configured is a skip.
- ``RevokePrograms``: the awarded programs containing the run are revoked.
- ``SyncCertificateAvailableDate``: the run's one certificate type from its modes, the date
  from pacing, end and Studio's display behaviour; a configuration of another type answers
  500 (a dead letter).

A learner whose requests always fail gets no state: each command that would ask
Credentials fails, and the event is dead-lettered once all commands were tried.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from consumer import rules
from consumer.commands import (
    AwardPrograms,
    Command,
    RevokePrograms,
    SyncCertificateAvailableDate,
    SyncCourseCertificate,
    iso_utc,
)
from consumer.events import Event
from consumer.handlers import Policy, make_handler
from consumer.programs import PassingCertificate, Program

Outcome = Literal["written", "skipped", "dead_letter"]
Target = tuple[str, str, str]
"""What a write changed: ``("course-run", username, run)``, ``("program", username, uuid)``
or ``("config", "", run)``."""


@dataclass(frozen=True, slots=True)
class World:
    """The fake's catalogue, which no event changes."""

    modes: Mapping[str, tuple[str, ...]]
    """Run → the LMS's course modes."""
    studio: Mapping[str, tuple[str | None, datetime | None]]
    """Run → Studio's (display behaviour, certificate available date)."""
    programs: tuple[Program, ...]
    configured: frozenset[str]
    """Programs Credentials has an active ProgramCertificate for."""
    excluded: frozenset[str]
    """``PROGRAMS_WITHOUT_CERTIFICATES``."""
    lms_certificates: Mapping[tuple[str, str], str]
    """(username, run) → mode of the learner's downloadable certificate in the LMS."""
    failing: frozenset[str]
    """Usernames every Credentials request about answers 500."""


@dataclass(frozen=True, slots=True)
class Expected:
    """What one event should do: its outcome, the writes it makes, the one it always makes."""

    outcome: Outcome
    writes: tuple[Target, ...] = ()
    certain: Target | None = None
    """The write the event makes whatever the state (a course-run or configuration sync)."""


class _Failed(Exception):
    """A command asked Credentials about a failing learner (or hit a config of another type)."""


@dataclass(frozen=True, slots=True)
class Config:
    """A run's course-certificate configuration in Credentials."""

    certificate_type: str
    certificate_available_date: str | None
    is_active: bool = True


class CredentialsModel:
    """Credentials' state as the rules make it, one event at a time, in log order."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._handle = make_handler(
            Policy(programs_without_certificates=world.excluded, programs_enabled=True)
        )
        self.course_runs: dict[tuple[str, str], str] = {}
        self.programs: dict[tuple[str, str], str] = {}
        self.configs: dict[str, Config] = {}
        self._by_run: dict[str, list[Program]] = {}
        for program in sorted(world.programs, key=lambda item: item.uuid):
            for run in program.run_keys():
                self._by_run.setdefault(run, []).append(program)

    def apply(self, event: Event) -> Expected:
        """Apply one event; return what it should have done."""
        handled = self._handle(event)
        if handled.is_skipped:
            return Expected("skipped")
        writes: list[Target] = []
        certain: Target | None = None
        failed = False
        for command in handled.commands:
            try:
                made = self._apply(command)
            except _Failed:
                failed = True
                continue
            if isinstance(command, SyncCourseCertificate | SyncCertificateAvailableDate):
                certain = made[0] if made else None
            writes += made
        if failed:
            return Expected("dead_letter", tuple(writes))
        return Expected("written" if writes else "skipped", tuple(writes), certain)

    # ------------------------------------------------------------------ commands

    def _apply(self, command: Command) -> list[Target]:
        if isinstance(command, SyncCourseCertificate):
            return self._sync(command)
        if isinstance(command, AwardPrograms):
            return self._award(command)
        if isinstance(command, RevokePrograms):
            return self._revoke(command)
        return self._available_date(command)

    def _ask(self, username: str) -> None:
        if username in self.world.failing:
            raise _Failed

    def _sync(self, command: SyncCourseCertificate) -> list[Target]:
        username = command.learner.username
        self._ask(username)
        self.configs.setdefault(command.course_run, Config(command.mode, None))
        self.course_runs[(username, command.course_run)] = command.status
        return [("course-run", username, command.course_run)]

    def _programs_for(self, runs: Iterable[str]) -> tuple[Program, ...]:
        found = {program.uuid: program for run in runs for program in self._by_run.get(run, ())}
        return tuple(found[uuid] for uuid in sorted(found))

    def _awarded_programs(self, username: str) -> set[str]:
        return {
            uuid
            for (owner, uuid), status in self.programs.items()
            if owner == username and status == "awarded"
        }

    def _award(self, command: AwardPrograms) -> list[Target]:
        username = command.learner.username
        self._ask(username)  # the held runs are read first
        held = {
            run
            for (owner, run), status in self.course_runs.items()
            if owner == username and status == "awarded"
        }
        own = (
            PassingCertificate(command.course_run, command.mode)
            if rules.is_passing_status(command.status)
            else None
        )
        mine = {own.course_run} if own else set()
        runs = held | mine
        if not runs:
            return []
        candidates = rules.completable_programs(self._programs_for(runs), runs)
        needed = {run for program in candidates for run in program.run_keys()}
        others = [
            PassingCertificate(run, self.world.lms_certificates[(username, run)])
            for run in sorted((needed & held) - mine)
            if (username, run) in self.world.lms_certificates
        ]
        passing = ([own] if own else []) + others
        if not passing:
            return []
        completed = rules.completed_programs(candidates, passing)
        if not completed:
            return []
        to_award = rules.programs_to_award(
            completed, self._awarded_programs(username), self.world.excluded
        )
        written: list[Target] = []
        for uuid in to_award:
            if uuid not in self.world.configured:
                continue  # 400 "No active ProgramCertificate": a skip
            self.programs[(username, uuid)] = "awarded"
            written.append(("program", username, uuid))
        return written

    def _revoke(self, command: RevokePrograms) -> list[Target]:
        username = command.learner.username
        containing = self._programs_for((command.course_run,))
        if not containing:
            return []
        self._ask(username)
        to_revoke = rules.programs_to_revoke(
            containing, command.course_run, self._awarded_programs(username)
        )
        for uuid in to_revoke:
            self.programs[(username, uuid)] = "revoked"
        return [("program", username, uuid) for uuid in to_revoke]

    def _available_date(self, command: SyncCertificateAvailableDate) -> list[Target]:
        run = command.course_run
        certificate_type = rules.certificate_type(
            self.world.modes.get(run, ()), honor_certificates_enabled=True
        )
        if isinstance(certificate_type, rules.Skip):
            return []
        behavior, available = (None, None) if command.pacing == "self" else self.world.studio[run]
        decided = rules.certificate_available_date(
            pacing=command.pacing,
            end=command.end,
            display_behavior=behavior,
            available_date=available,
        )
        existing = self.configs.get(run)
        if existing is not None and existing.certificate_type != certificate_type:
            raise _Failed  # one configuration per run: Credentials answers 500
        self.configs[run] = Config(certificate_type, iso_utc(decided.value))
        return [("config", "", run)]
