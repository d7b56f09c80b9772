"""The benchmark's workload and world, as plain values (no I/O: unit-tested).

A workload is a reproducible sequence of event *specs* — which learner, which run, which
mode — that ``bench.lms`` turns into records exactly as the LMS writes them. The world is
what the fake Open edX must hold so that those events are applied, not dead-lettered:
learners, course runs with their certificate configurations, and programs.

Shape (the issue's defaults): 80% certificate events (created, or revoked for a share of
them) over 20,000 learners and 200 course runs, the runs grouped four to a program in 50
programs; 20% catalog changes of those runs. A learner takes most of their courses in one
"home" program, so programs get completed and awarded as in a real catalogue, and revoked.

The sequence is generated one event at a time from a seeded generator, so the first N
events of a large workload are the workload of N events: the live contenders' sample is a
prefix of the full workload.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

CREATED = "org.openedx.learning.certificate.created.v1"
REVOKED = "org.openedx.learning.certificate.revoked.v1"
CATALOG = "org.openedx.content_authoring.course.catalog_info.changed.v1"
ORG = "BenchX"
TERM = "1T2026"
SEAT = "verified"
PER_EVENT_SERVICES = ("credentials", "lms", "studio")
"""Services the worker calls for each event (OAuth and Discovery: at start-up)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Workload:
    """What to produce; defaults are the issue's."""

    events: int = 200_000
    partitions: int = 6
    certificate_share: float = 0.8
    """Certificate events among all events; the rest are catalog changes."""
    revoked_share: float = 0.1
    """Revocations among certificate events."""
    learners: int = 20_000
    course_runs: int = 200
    programs: int = 50
    home_share: float = 0.8
    """A learner's certificates in their home program's runs (the rest: any run)."""
    audit_share: float = 0.05
    """Certificates in audit mode (not eligible: skipped with a reason)."""
    honor_share: float = 0.05
    self_paced_share: float = 0.2
    """Catalog changes of self-paced runs."""
    seed: int = 13
    first_user_id: int = 1000

    def __post_init__(self) -> None:
        if self.course_runs % self.programs:
            raise ValueError("course_runs must be a multiple of programs")
        shares = (
            self.certificate_share,
            self.revoked_share,
            self.home_share,
            self.audit_share + self.honor_share,
            self.self_paced_share,
        )
        if not all(0.0 <= share <= 1.0 for share in shares):
            raise ValueError("shares must lie between 0 and 1")
        if min(self.events, self.partitions, self.learners, self.programs) < 1:
            raise ValueError("events, partitions, learners and programs must be positive")

    def prefix(self, events: int) -> Workload:
        """The same workload cut to its first ``events`` events."""
        return _replace(self, events=min(events, self.events))


def _replace(workload: Workload, **changes: int) -> Workload:
    fields = {name: getattr(workload, name) for name in Workload.__dataclass_fields__}
    fields.update(changes)
    return Workload(**fields)


@dataclass(frozen=True, slots=True)
class CertificateSpec:
    """A certificate created or revoked event."""

    event_type: str
    """``CREATED`` or ``REVOKED``."""
    user_id: int
    course_run: str
    mode: str

    @property
    def status(self) -> str:
        """The certificate's status after the event, as the LMS sets it."""
        return "downloadable" if self.event_type == CREATED else "unavailable"


@dataclass(frozen=True, slots=True)
class CatalogSpec:
    """A course catalog info changed event."""

    event_type: str
    """``CATALOG``."""
    course_run: str
    pacing: Literal["instructor", "self"]
    end: str


Spec = CertificateSpec | CatalogSpec


def run_key(index: int) -> str:
    """The course-run key of run ``index``: one course per run."""
    return f"course-v1:{ORG}+C{index:03d}+{TERM}"


def course_key(index: int) -> str:
    """The course (not run) key of run ``index``, as Discovery names courses."""
    return f"{ORG}+C{index:03d}"


def program_uuid(index: int) -> str:
    """The stable UUID of program ``index``."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://bench.invalid/programs/{index}"))


def program_runs(workload: Workload, program: int) -> tuple[int, ...]:
    """Run indexes of ``program``: runs whose index is the program's modulo the count."""
    return tuple(range(program, workload.course_runs, workload.programs))


def home_program(workload: Workload, user_id: int) -> int:
    """The program a learner takes most of their courses in."""
    return user_id % workload.programs


def run_end(index: int) -> str:
    """A run's end date (ISO, UTC): runs end on different days of 2026."""
    return f"2026-{index % 12 + 1:02d}-{index % 28 + 1:02d}T00:00:00+00:00"


def username(user_id: int) -> str:
    """The learner's username, as ``tests.support.lms.certificate_data`` spells it."""
    return f"learner{user_id}"


def generate(workload: Workload) -> Iterator[Spec]:
    """Yield the workload's events, one at a time, reproducibly."""
    rng = random.Random(workload.seed)
    for _ in range(workload.events):
        if rng.random() < workload.certificate_share:
            yield _certificate(workload, rng)
        else:
            index = rng.randrange(workload.course_runs)
            pacing: Literal["instructor", "self"] = (
                "self" if rng.random() < workload.self_paced_share else "instructor"
            )
            yield CatalogSpec(CATALOG, run_key(index), pacing, run_end(index))


def _certificate(workload: Workload, rng: random.Random) -> CertificateSpec:
    user_id = workload.first_user_id + rng.randrange(workload.learners)
    if rng.random() < workload.home_share:
        index = rng.choice(program_runs(workload, home_program(workload, user_id)))
    else:
        index = rng.randrange(workload.course_runs)
    draw = rng.random()
    if draw < workload.audit_share:
        mode = "audit"
    elif draw < workload.audit_share + workload.honor_share:
        mode = "honor"
    else:
        mode = SEAT
    event_type = REVOKED if rng.random() < workload.revoked_share else CREATED
    return CertificateSpec(event_type, user_id, run_key(index), mode)


# ---------------------------------------------------------------------------- the world


def history(workload: Workload, user_id: int) -> tuple[str, ...]:
    """Runs a learner passed before the benchmark: the first ``user_id % 4`` of their home.

    Held as awarded course-run credentials in Credentials and passing certificates in the
    LMS, so that a new certificate in the home program sometimes completes it (and is
    awarded), as in a catalogue that has been running for a while.
    """
    runs = program_runs(workload, home_program(workload, user_id))
    held = user_id % len(runs)
    return tuple(run_key(index) for index in runs[:held])


Call = dict[str, object]


def world_calls(workload: Workload, specs: list[Spec], *, latency: float) -> list[Call]:
    """The fake's ``/_fake/call`` list for ``specs``: world, learners' history, latency L.

    Learners are those of the specs. The LMS holds a certificate for each certificate
    event (its last status wins), as it would when it sends the event.
    """
    calls: list[Call] = []
    for index in range(workload.course_runs):
        calls.append(
            {
                "method": "add_course_run",
                "kwargs": {
                    "key": run_key(index),
                    "modes": ["audit", SEAT],
                    "end": run_end(index),
                    "display_behavior": "end",
                },
            }
        )
        # One verified config per run, as course teams set up: posts in other modes file
        # under it, and catalog changes update its date.
        calls.append(
            {
                "method": "add_course_certificate_config",
                "kwargs": {"course_id": run_key(index), "certificate_type": SEAT},
            }
        )
    for program in range(workload.programs):
        courses = {
            course_key(index): {run_key(index): SEAT} for index in program_runs(workload, program)
        }
        calls.append(
            {"method": "add_program", "kwargs": {"uuid": program_uuid(program), "courses": courses}}
        )
    learners = sorted({spec.user_id for spec in specs if isinstance(spec, CertificateSpec)})
    for user_id in learners:
        name = username(user_id)
        calls.append({"method": "add_user", "kwargs": {"username": name, "lms_user_id": user_id}})
        for run in history(workload, user_id):
            calls.append(
                {
                    "method": "add_credential",
                    "kwargs": {"username": name, "course_run": run, "mode": SEAT},
                }
            )
            calls.append(
                {
                    "method": "add_lms_certificate",
                    "kwargs": {"username": name, "course_id": run, "mode": SEAT},
                }
            )
    calls += [
        {
            "method": "add_lms_certificate",
            "kwargs": {
                "username": username(spec.user_id),
                "course_id": spec.course_run,
                "mode": spec.mode,
                "status": spec.status,
            },
        }
        for spec in specs
        if isinstance(spec, CertificateSpec)
    ]
    # Latency on the services called per event; OAuth and Discovery are called at start-up
    # (a token, the program cache), outside the measured window.
    calls += [
        {"method": "set_latency", "kwargs": {"service": service, "seconds": latency}}
        for service in PER_EVENT_SERVICES
    ]
    return calls
