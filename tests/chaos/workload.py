"""What the soak publishes: a catalogue, learners with certificate stories, catalog changes.

Everything is drawn from one seeded generator, so a run can be repeated. The LMS keys
certificate records by course run, so one learner's events can sit in several partitions,
and Kafka orders nothing across partitions: the final program state of such a learner would
depend on timing, not on the log. So each learner takes runs of **one** partition of the
certificate topic (the partitions are learnt from warm-up records before the plan is made),
and every program is made of courses whose first run is in one partition. Then each key's
events are totally ordered by the log, and the audit can apply them in order.

The stories follow one more rule, so that a legitimate redelivery (re-applying a learner's
events from an uncommitted offset after a crash or a rebalance) ends in the same state as
the log applied once. A program award reads the learner's current course-run credentials; a
re-applied award may see a run that a *later* event awarded. That later event's own award
(every first award of a program run comes from a ``created`` event, which awards programs)
would then have awarded the same program, unless a revocation follows, which re-applies
too. So, on runs of program courses: the first event is ``created`` (downloadable),
``changed`` only confirms ``downloadable``, a ``revoked`` is the run's last event, and a
learner takes one run per course. Runs of courses outside every program take anything.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from consumer.events import EventType
from tests.support.lms import catalog_data, certificate_data

TopicRole = Literal["certificates", "catalog"]
CERTIFICATE_MODES = (
    "verified",
    "verified",
    "verified",
    "professional",
    "no-id-professional",
    "honor",
)
SEAT_TYPE = {"no-id-professional": "professional"}  # Discovery's name of that seat
BEHAVIORS = ("end", "end", "end", "end_with_date", "early_no_info")
FREE_STATUSES = ("downloadable", "notpassing", "unavailable", "audit_passing", "downloadable")


@dataclass(frozen=True, slots=True)
class Run:
    """A course run as the LMS, Studio and Credentials' catalogue know it."""

    key: str
    course: str
    mode: str
    """The run's one certificate mode: its LMS modes are ``audit`` and this one."""
    display_behavior: str
    certificate_available_date: str | None


@dataclass(frozen=True, slots=True)
class ProgramSpec:
    """A Discovery program: ``{course: {run: seat type}}``; configured in Credentials or not."""

    uuid: str
    courses: dict[str, dict[str, str]]
    in_credentials: bool = True


@dataclass(frozen=True, slots=True)
class LearnerSpec:
    """A learner; ``failing``: every Credentials request about them answers 500."""

    user_id: int
    username: str
    runs: tuple[str, ...]
    failing: bool = False


@dataclass(frozen=True, slots=True)
class Planned:
    """One event to publish the LMS's way."""

    topic: TopicRole
    event_type: EventType
    data: dict[str, Any]


@dataclass(slots=True)
class Catalogue:
    """Runs, programs and what the worker is configured to exclude."""

    tag: str
    runs: dict[str, Run]
    programs: dict[str, ProgramSpec] = field(default_factory=dict)
    excluded: frozenset[str] = frozenset()
    """``PROGRAMS_WITHOUT_CERTIFICATES``."""

    def program_runs(self) -> frozenset[str]:
        """Every run of a course that is in a program."""
        return frozenset(
            run
            for program in self.programs.values()
            for runs in program.courses.values()
            for run in runs
        )


def make_catalogue(tag: str, courses: int, rng: random.Random) -> Catalogue:
    """``courses`` courses of two runs each, with modes and Studio's display settings."""
    runs: dict[str, Run] = {}
    for number in range(courses):
        course = f"Chaos{tag}+C{number}"
        mode = rng.choice(CERTIFICATE_MODES)
        for term in ("2026_T1", "2026_T2"):
            behavior = rng.choice(BEHAVIORS)
            date = (
                f"2026-{rng.randint(7, 12):02d}-{rng.randint(1, 28):02d}T12:00:00+00:00"
                if behavior == "end_with_date"
                else None
            )
            key = f"course-v1:{course}+{term}"
            runs[key] = Run(key, course, mode, behavior, date)
    return Catalogue(tag=tag, runs=runs)


def warmup_events(catalogue: Catalogue) -> list[Planned]:
    """One ``changed`` event per run by a learner of its own, to learn the run's partition."""
    return [
        Planned(
            "certificates",
            EventType.CERTIFICATE_CHANGED,
            certificate_data(
                user_id=900_000 + index,
                username=warmup_username(catalogue.tag, index),
                course_key=run.key,
                mode=run.mode,
            ),
        )
        for index, run in enumerate(catalogue.runs.values())
    ]


def warmup_username(tag: str, index: int) -> str:
    """The warm-up learner of the ``index``-th run."""
    return f"learner-{tag}-w{index}"


def add_programs(catalogue: Catalogue, partition_of: dict[str, int], rng: random.Random) -> None:
    """Programs of 2-3 courses, each program's courses homed in one partition (first run).

    About a third of the courses stay outside every program. The first program is not
    configured in Credentials (a skip), the second is excluded by configuration.
    """
    homes: dict[int, list[str]] = {}
    first_runs = {run.course: run.key for run in reversed(catalogue.runs.values())}
    for course, first in sorted(first_runs.items()):
        homes.setdefault(partition_of[first], []).append(course)
    programs: list[ProgramSpec] = []
    for partition in sorted(homes):
        courses = homes[partition]
        rng.shuffle(courses)
        while len(courses) >= 3 or (len(courses) == 2 and rng.random() < 0.7):
            size = 2 if len(courses) < 5 else rng.choice((2, 3))
            chosen, courses = courses[:size], courses[size:]
            program_courses = {
                course: {
                    run.key: SEAT_TYPE.get(run.mode, run.mode)
                    for run in catalogue.runs.values()
                    if run.course == course
                }
                for course in chosen
            }
            programs.append(
                ProgramSpec(str(uuid.UUID(int=rng.getrandbits(128), version=4)), program_courses)
            )
    if len(programs) >= 3:
        programs[0] = ProgramSpec(programs[0].uuid, programs[0].courses, in_credentials=False)
        catalogue.excluded = frozenset({programs[1].uuid})
    catalogue.programs = {program.uuid: program for program in programs}


def _interleave(sequences: Sequence[list[Planned]], rng: random.Random) -> list[Planned]:
    """Merge sequences at random, keeping each one's order."""
    tokens = [index for index, sequence in enumerate(sequences) for _ in sequence]
    rng.shuffle(tokens)
    positions = [0] * len(sequences)
    merged = []
    for index in tokens:
        merged.append(sequences[index][positions[index]])
        positions[index] += 1
    return merged


class Planner:
    """Learners and their stories, catalog changes, all in publication order."""

    def __init__(
        self, catalogue: Catalogue, partition_of: dict[str, int], rng: random.Random
    ) -> None:
        self.catalogue = catalogue
        self.rng = rng
        program_runs = catalogue.program_runs()
        self._programs_by_partition: dict[int, list[ProgramSpec]] = {}
        for program in catalogue.programs.values():
            home = next(iter(next(iter(program.courses.values()))))
            self._programs_by_partition.setdefault(partition_of[home], []).append(program)
        self._free_by_partition: dict[int, list[Run]] = {}
        for run in catalogue.runs.values():
            if run.key not in program_runs:
                self._free_by_partition.setdefault(partition_of[run.key], []).append(run)
        self._partitions = sorted(set(self._programs_by_partition) | set(self._free_by_partition))

    def learner_story(self, spec_id: int) -> tuple[LearnerSpec, list[Planned]]:
        """A learner of one partition, with 1-8 runs' worth of certificate events."""
        rng = self.rng
        partition = rng.choice(self._partitions)
        user_id = 100_000 + spec_id
        username = f"learner-{self.catalogue.tag}-{spec_id}"
        sequences: list[list[Planned]] = []
        runs: list[str] = []
        programs = self._programs_by_partition.get(partition, [])
        free = self._free_by_partition.get(partition, [])
        if programs and (not free or rng.random() < 0.7):
            program = rng.choice(programs)
            courses = list(program.courses)
            if len(courses) > 1 and rng.random() < 0.25:
                courses.pop(rng.randrange(len(courses)))  # this learner will not complete it
            for course in courses:
                run = self.catalogue.runs[next(iter(program.courses[course]))]
                runs.append(run.key)
                sequences.append(self._program_run_events(user_id, username, run))
            extra = rng.choice((0, 1, 1, 2))
        else:
            extra = rng.choice((1, 1, 2))
        for run in rng.sample(free, k=min(len(free), extra)):
            runs.append(run.key)
            sequences.append(self._free_run_events(user_id, username, run))
        return LearnerSpec(user_id, username, tuple(runs)), _interleave(sequences, rng)

    def _event(
        self, event_type: EventType, user_id: int, username: str, run: Run, status: str, mode: str
    ) -> Planned:
        data = certificate_data(
            user_id=user_id, username=username, course_key=run.key, mode=mode, status=status
        )
        return Planned("certificates", event_type, data)

    def _program_run_events(self, user_id: int, username: str, run: Run) -> list[Planned]:
        rng = self.rng
        created = self._event(
            EventType.CERTIFICATE_CREATED, user_id, username, run, "downloadable", run.mode
        )
        events = [created]
        if rng.random() < 0.2:
            events.append(
                self._event(
                    EventType.CERTIFICATE_CHANGED, user_id, username, run, "downloadable", run.mode
                )
            )
        if rng.random() < 0.15:
            events.append(created)
        if rng.random() < 0.15:
            events.append(
                self._event(
                    EventType.CERTIFICATE_REVOKED, user_id, username, run, "unavailable", run.mode
                )
            )
        return events

    def _free_run_events(self, user_id: int, username: str, run: Run) -> list[Planned]:
        rng = self.rng
        events = []
        for _ in range(rng.randint(1, 4)):
            mode = "audit" if rng.random() < 0.1 else run.mode
            kind = rng.random()
            if kind < 0.4:
                status = "generating" if rng.random() < 0.05 else "downloadable"
                events.append(
                    self._event(EventType.CERTIFICATE_CREATED, user_id, username, run, status, mode)
                )
            elif kind < 0.85:
                status = rng.choice(FREE_STATUSES)
                events.append(
                    self._event(EventType.CERTIFICATE_CHANGED, user_id, username, run, status, mode)
                )
            else:
                events.append(
                    self._event(
                        EventType.CERTIFICATE_REVOKED, user_id, username, run, "unavailable", mode
                    )
                )
        return events

    def failing_story(self, spec_id: int) -> tuple[LearnerSpec, list[Planned]]:
        """A learner whose Credentials requests always fail: one run, one or two events.

        Short on purpose: each of its events is retried to the end of its budget, one attempt
        per probe of the circuit its failures keep open once nothing else is left to apply.
        """
        run = self.rng.choice(list(self.catalogue.runs.values()))
        user_id = 100_000 + spec_id
        username = f"learner-{self.catalogue.tag}-{spec_id}"
        events = [
            self._event(
                EventType.CERTIFICATE_CREATED, user_id, username, run, "downloadable", run.mode
            )
        ]
        if self.rng.random() < 0.5:
            events.append(
                self._event(
                    EventType.CERTIFICATE_CHANGED, user_id, username, run, "notpassing", run.mode
                )
            )
        return LearnerSpec(user_id, username, (run.key,), failing=True), events

    def catalog_event(self) -> Planned:
        """A Studio publish of a random run: pacing and end change."""
        rng = self.rng
        run = rng.choice(list(self.catalogue.runs.values()))
        end = (
            None
            if rng.random() < 0.05
            else f"2026-{rng.randint(6, 12):02d}-{rng.randint(1, 28):02d}T00:00:00+00:00"
        )
        pacing = "self" if rng.random() < 0.2 else "instructor"
        return Planned(
            "catalog",
            EventType.CATALOG_INFO_CHANGED,
            catalog_data(course_key=run.key, pacing=pacing, end=end),
        )

    def plan(
        self, events: int, *, failing_share: float = 0.002, burst: tuple[float, int] | None = None
    ) -> Plan:
        """Learners and about ``events`` events in publication order (2 % catalog changes).

        ``burst=(at, count)``: about ``count`` of the events are the whole stories of learners
        of their own, published together at fraction ``at`` of the stream, with nothing else
        in between: a time range a replay can take again without touching any other key.
        """
        catalog_count = max(10, events // 50)
        cohort_count = burst[1] if burst else 0
        stories: list[list[Planned]] = []
        learners: list[LearnerSpec] = []
        cohort: list[list[Planned]] = []
        total = 0
        while total < events - catalog_count - cohort_count:
            learner, story = self.learner_story(len(learners))
            learners.append(learner)
            stories.append(story)
            total += len(story)
        while sum(map(len, cohort)) < cohort_count:
            learner, story = self.learner_story(len(learners))
            learners.append(learner)
            cohort.append(story)
        for _ in range(max(2, round(len(learners) * failing_share))):
            learner, story = self.failing_story(len(learners))
            learners.append(learner)
            stories.append(story)
        catalog = [[self.catalog_event()] for _ in range(catalog_count)]
        stream = _interleave([*stories, *catalog], self.rng)
        if not cohort or burst is None:
            return Plan(learners, stream)
        at = int(len(stream) * burst[0])
        together = _interleave(cohort, self.rng)
        return Plan(learners, [*stream[:at], *together, *stream[at:]], (at, at + len(together)))


@dataclass(frozen=True, slots=True)
class Plan:
    """What to publish, in order; ``burst``: the [start, end) indices of the replay's range."""

    learners: list[LearnerSpec]
    stream: list[Planned]
    burst: tuple[int, int] | None = None


def lms_certificates(
    learners: Sequence[LearnerSpec], catalogue: Catalogue
) -> Iterator[tuple[str, str, str]]:
    """(username, run, mode) of the LMS's certificate of each learner in each of their runs.

    Downloadable, in the run's certificate mode: the worker asks the LMS for the modes of
    the runs a learner holds in Credentials, and those never go back from revoked.
    """
    for learner in learners:
        for run in learner.runs:
            yield learner.username, run, catalogue.runs[run].mode
