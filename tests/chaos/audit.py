"""The audit of a soak's end state: lost, wrong, out of order, dead letters, leaks.

It reads only what the soak saved in its work directory, so ``python -m tests.chaos audit
DIR`` re-audits a run. Definitions:

- **Events applied**: events with at least one successful write to Credentials (by the
  fake's request log, ``X-Request-ID`` = event id). Events the rules skip write nothing.
- **Lost**: a non-poison event whose certain write (its course-run certificate or its
  run's certificate configuration: made whatever the state) never succeeded and which was
  not dead-lettered, plus any event at or above the group's final committed offset.
- **Wrong final states**: Credentials' final state against the model's (``model``: the
  worker's pure rules applied to the event log in offset order): each course-run credential's
  status, each run's configuration (type, date, active), and each learner's set of awarded
  programs (a program revoked or never awarded are the same: not held).
- **Per-key ordering violations**, over the requests of each ordering key (learner or course
  run), from the fake's log:

  - *backward steps*: the key's sequence of event offsets (by request start, consecutive
    requests of one event merged) may step back only to an offset the group had not yet
    committed when the step happened (a redelivery after a crash or a rebalance re-applies
    from the committed offset; committed offsets are sampled every second, and a sample is
    stamped after it was read, so it is a lower bound: a step below it is a violation
    for certain);
  - *overlaps*: a request of the key that starts while another request of the key, from
    another event or another delivery of the same event, is still being served. Only requests
    that reached the service count (an injected timeout or reset never did).

  The replay's requests (events of its time range, sent while it ran) are a stream of their
  own: it must never step back, and its requests may overlap no other of their key. Its
  range holds whole stories of learners of their own (``workload``), committed by the live
  group before it starts, so re-applying them in order ends in the same state.
- **Replay**: every certain write of its range made again while it ran, and exit code 0.

- **Dead letters**: read back from the dead-letter topics and matched record by record (by
  source topic, partition and offset) with the poison records published and the events of
  learners whose requests always fail; each must have the expected stage and reason. A
  record dead-lettered twice (its offset was not yet committed when a worker died) is
  counted, not an error.
- **Duplicate applications**: events whose same write succeeded more than once (allowed).
- **Time to drain**: from the end of the last fault to the first sample showing every
  partition committed to its end.
- **RSS**: of the worker's longest-consuming incarnation, 30 s after it began consuming and
  at its end.
- **Deaths and tracebacks**: a worker that exits on its own (it is restarted, as Kubernetes
  would) or any traceback in the workers' logs and the commands' output fails the audit.
- **Leaks**: each secret of the soak's configuration (OAuth secret, registry secret, SASL
  password) and every token the fake issued, searched in everything the soak's processes
  wrote (worker logs and output, ``check`` and ``dlq inspect --json`` output, dead-letter
  headers); learners' usernames and e-mail addresses searched in the same places.
"""

from __future__ import annotations

import bisect
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from consumer.commands import iso_utc
from consumer.events import Event, EventMeta, EventType, build_event, ordering_key
from consumer.programs import Program, ProgramCourse, ProgramRun
from tests.chaos.model import Config, CredentialsModel, Expected, Target, World

Position = tuple[str, int, int]
"""(topic, partition, offset)."""


# ============================================================================ inputs


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    with path.open() as source:
        for line in source:
            if line.strip():
                yield json.loads(line)


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def world_of(plan: Mapping[str, Any]) -> World:
    """The model's view of the fake's catalogue, from the soak's saved plan."""
    catalogue = plan["catalogue"]
    runs = catalogue["runs"]
    programs = tuple(
        Program(
            uuid=program["uuid"],
            courses=tuple(
                ProgramCourse(course, tuple(ProgramRun(run, seat) for run, seat in runs_.items()))
                for course, runs_ in program["courses"].items()
            ),
        )
        for program in catalogue["programs"]
    )
    learners = plan["learners"]
    by_key = {run["key"]: run for run in runs}
    return World(
        modes={run["key"]: ("audit", run["mode"]) for run in runs},
        studio={
            run["key"]: (run["display_behavior"], _when(run["certificate_available_date"]))
            for run in runs
        },
        programs=programs,
        configured=frozenset(p["uuid"] for p in catalogue["programs"] if p["in_credentials"]),
        excluded=frozenset(catalogue["excluded"]),
        lms_certificates={
            (learner["username"], run): by_key[run]["mode"]
            for learner in learners
            for run in learner["runs"]
        },
        failing=frozenset(learner["username"] for learner in learners if learner["failing"]),
    )


@dataclass(frozen=True, slots=True)
class LogEntry:
    """A record of the event log: its position, and its event or its decode failure."""

    position: Position
    event_id: str | None
    event: Event | None
    error: Mapping[str, str] | None
    timestamp_ms: int | None = None


def read_log(path: Path) -> list[LogEntry]:
    """The event log as the soak saved it, in (topic, partition, offset) order."""
    entries = []
    for line in _lines(path):
        position = (line["topic"], line["partition"], line["offset"])
        event = None
        if "data" in line:
            meta = EventMeta(id=line["ce_id"], type=EventType(line["ce_type"]))
            event = build_event(meta, line["data"])
        entries.append(
            LogEntry(
                position, line.get("ce_id"), event, line.get("error"), line.get("timestamp_ms")
            )
        )
    return sorted(entries, key=lambda entry: entry.position)


@dataclass(frozen=True, slots=True)
class Request:
    """A request the fake served or failed, reduced to what the audit uses."""

    event_id: str | None
    service: str
    endpoint: str
    method: str
    status: int | None
    fault: str | None
    started: float
    ended: float
    username: str | None
    course_run: str | None
    program_uuid: str | None

    @property
    def reached_service(self) -> bool:
        """The request was served by the service, not answered by an injected fault."""
        return self.fault is None

    def written(self) -> Target | None:
        """What a successful write changed, else None."""
        ok = self.status is not None and 200 <= self.status < 300 and self.reached_service
        if not ok or self.method != "POST" or self.service != "credentials":
            return None
        if self.endpoint == "course_certificates_post":
            return ("config", "", self.course_run or "")
        if self.program_uuid:
            return ("program", self.username or "", self.program_uuid)
        return ("course-run", self.username or "", self.course_run or "")


def read_requests(path: Path) -> list[Request]:
    """The fake's request log."""
    return [
        Request(
            event_id=line["request_id"],
            service=line["service"],
            endpoint=line["endpoint"],
            method=line["method"],
            status=line["status"],
            fault=line.get("fault"),
            started=line["started"],
            ended=line["ended"],
            username=line["username"],
            course_run=line["course_run"],
            program_uuid=line["program_uuid"],
        )
        for line in _lines(path)
    ]


class CommittedHistory:
    """The group's committed offsets over time, from the soak's samples (lower bounds)."""

    def __init__(self, samples: Iterable[Mapping[str, Any]]) -> None:
        usable = sorted(
            (sample["monotonic"], sample["committed"])
            for sample in samples
            if "committed" in sample
        )
        self._times = [time for time, _ in usable]
        self._values = [values for _, values in usable]

    def at(self, partition: str, when: float) -> int:
        """The committed offset of ``topic:partition`` known to hold at ``when`` (0 if none)."""
        index = bisect.bisect_right(self._times, when) - 1
        if index < 0:
            return 0
        return max(int(self._values[index].get(partition, 0)), 0)

    def final(self) -> Mapping[str, int]:
        """The last committed offsets sampled."""
        return {tp: max(int(offset), 0) for tp, offset in (self._values or [{}])[-1].items()}


# ============================================================================ checks


@dataclass(slots=True)
class Ordering:
    """Per-key ordering: legitimate redeliveries, and the two kinds of violation."""

    redeliveries: int = 0
    backward_steps: list[str] = field(default_factory=list)
    overlaps: list[str] = field(default_factory=list)

    @property
    def violations(self) -> int:
        """Backward steps below the committed offset, plus overlapping requests."""
        return len(self.backward_steps) + len(self.overlaps)


@dataclass(frozen=True, slots=True)
class KeyedRequest:
    """A request of a known event: its key and position, and when it was served."""

    key: str
    partition: str
    offset: int
    event_id: str
    started: float
    ended: float
    reached_service: bool


def _by_key(requests: Iterable[KeyedRequest]) -> dict[str, list[KeyedRequest]]:
    by_key: dict[str, list[KeyedRequest]] = defaultdict(list)
    for request in requests:
        by_key[request.key].append(request)
    for items in by_key.values():
        items.sort(key=lambda item: (item.started, item.ended))
    return by_key


def _steps(
    requests: Iterable[KeyedRequest], committed: CommittedHistory | None, result: Ordering
) -> None:
    """Steps back per key: a redelivery if above the committed offset, else a violation.

    ``committed`` None: a stream that must never step back (a replay nobody interrupted).
    """
    for key, items in _by_key(requests).items():
        previous: KeyedRequest | None = None
        for item in items:
            if (
                previous is not None
                and item.event_id != previous.event_id
                and item.offset < previous.offset
            ):
                floor = committed.at(item.partition, item.started) if committed else previous.offset
                if item.offset < floor:
                    result.backward_steps.append(
                        f"{key}: offset {previous.offset} then {item.offset} in "
                        f"{item.partition}, committed {floor} already"
                    )
                else:
                    result.redeliveries += 1
            previous = item


def _overlaps(requests: Iterable[KeyedRequest], result: Ordering) -> None:
    """Requests of one key served at once (only those that reached the service count)."""
    for key, items in _by_key(requests).items():
        active: list[KeyedRequest] = []
        for item in items:
            if not item.reached_service:
                continue
            active = [other for other in active if other.ended > item.started]
            if active:
                other = active[0]
                result.overlaps.append(
                    f"{key}: offset {item.offset} started while offset {other.offset} "
                    f"was in flight ({other.ended - item.started:.3f} s)"
                )
            active.append(item)


def check_ordering(
    requests: Iterable[KeyedRequest],
    committed: CommittedHistory,
    *,
    replayed: Iterable[KeyedRequest] = (),
) -> Ordering:
    """Backward steps below the committed offset, and overlapping requests, per key.

    ``replayed``: a replay's requests, a stream of their own: it must never step back, and
    no request of it may overlap another of its key, from either stream.
    """
    live, again = list(requests), list(replayed)
    result = Ordering()
    _steps(live, committed, result)
    _steps(again, None, result)
    _overlaps([*live, *again], result)
    return result


@dataclass(frozen=True, slots=True)
class ExpectedDeadLetter:
    """A record that must reach a dead-letter topic, and why."""

    stage: str
    reason: str


@dataclass(slots=True)
class DeadLetters:
    """Dead letters found against those expected."""

    expected: int = 0
    found: int = 0
    records: int = 0
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    wrong_reason: list[str] = field(default_factory=list)

    @property
    def differences(self) -> int:
        """Missing, unexpected, or with another stage or reason than expected."""
        return len(self.missing) + len(self.unexpected) + len(self.wrong_reason)


def check_dead_letters(
    expected: Mapping[Position, ExpectedDeadLetter], found: Iterable[Mapping[str, Any]]
) -> DeadLetters:
    """Match dead-letter records with the expected ones by source position."""
    result = DeadLetters(expected=len(expected))
    seen: dict[Position, list[Mapping[str, str]]] = defaultdict(list)
    for record in found:
        context = record["context"]
        position = (context["topic"], int(context["partition"]), int(context["offset"]))
        seen[position].append(context)
        result.records += 1
    result.found = len(seen)
    for position, want in expected.items():
        contexts = seen.get(position)
        if not contexts:
            result.missing.append(f"{position} ({want.stage}/{want.reason})")
            continue
        for context in contexts:
            if (context["stage"], context["reason"]) != (want.stage, want.reason):
                result.wrong_reason.append(
                    f"{position}: {context['stage']}/{context['reason']}, "
                    f"expected {want.stage}/{want.reason}"
                )
    result.unexpected = [
        f"{position} ({contexts[0]['stage']}/{contexts[0]['reason']}: "
        f"{contexts[0]['message'][:120]})"
        for position, contexts in seen.items()
        if position not in expected
    ]
    return result


def compare_states(model: CredentialsModel, state: Mapping[str, Any]) -> list[str]:
    """Every difference between Credentials' final state and the model's."""
    wrong: list[str] = []
    actual_runs: dict[tuple[str, str], str] = {}
    actual_programs: dict[str, set[str]] = defaultdict(set)
    for item in state["credentials"]:
        if item["type"] == "course-run":
            actual_runs[(item["username"], item["key"])] = item["status"]
        elif item["status"] == "awarded":
            actual_programs[item["username"]].add(item["key"])
    wrong += [
        f"course run {key[1]} of {key[0]}: {actual_runs.get(key)}, "
        f"expected {model.course_runs.get(key)}"
        for key in sorted(set(actual_runs) | set(model.course_runs))
        if actual_runs.get(key) != model.course_runs.get(key)
    ]
    expected_programs: dict[str, set[str]] = defaultdict(set)
    for (username, uuid), status in model.programs.items():
        if status == "awarded":
            expected_programs[username].add(uuid)
    wrong += [
        f"programs of {username}: {sorted(actual_programs.get(username, set()))}, "
        f"expected {sorted(expected_programs.get(username, set()))}"
        for username in sorted(set(actual_programs) | set(expected_programs))
        if actual_programs.get(username, set()) != expected_programs.get(username, set())
    ]
    actual_configs = {
        run: Config(
            config["certificate_type"],
            iso_utc(_when(config["certificate_available_date"])),
            config["is_active"],
        )
        for run, config in state["configs"].items()
    }
    wrong += [
        f"configuration of {run}: {actual_configs.get(run)}, expected {model.configs.get(run)}"
        for run in sorted(set(actual_configs) | set(model.configs))
        if actual_configs.get(run) != model.configs.get(run)
    ]
    return wrong


def find_leaks(paths: Iterable[Path], needles: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """``{what: [file, ...]}`` for each needle found in a file (needles shorter than 8: none)."""
    leaks: dict[str, list[str]] = defaultdict(list)
    for path in paths:
        text = path.read_text(errors="replace")
        for what, values in needles.items():
            if any(len(value) >= 8 and value in text for value in values):
                leaks[what].append(path.name)
    return dict(leaks)


# ============================================================================ the audit


@dataclass(slots=True)
class Report:
    """Every figure of the audit, and the rows of its table."""

    rows: list[tuple[str, str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    details: dict[str, list[str]] = field(default_factory=dict)

    def row(self, name: str, value: object, *, must_be_zero: bool = False) -> None:
        """Add a row; a non-zero figure that must be zero fails the audit."""
        self.rows.append((name, str(value)))
        if must_be_zero and value not in (0, "0"):
            self.failures.append(name)

    @property
    def passed(self) -> bool:
        """Nothing lost, wrong, out of order, leaked; dead letters exactly as injected."""
        return not self.failures

    def table(self) -> str:
        """The audit as a Markdown table (as the README quotes it)."""
        width = max(len(name) for name, _ in self.rows)
        lines = [f"| {'figure':<{width}} | value |", f"|{'-' * (width + 2)}|-------|"]
        lines += [f"| {name:<{width}} | {value} |" for name, value in self.rows]
        verdict = "PASS" if self.passed else f"FAIL ({', '.join(self.failures)})"
        return "\n".join([*lines, "", f"audit: {verdict}"])


@dataclass(frozen=True, slots=True)
class Soaked:
    """What a soak saved, loaded, with the model's verdict on every event."""

    workdir: Path
    plan: Mapping[str, Any]
    timeline: Sequence[Mapping[str, Any]]
    samples: Sequence[Mapping[str, Any]]
    log: Sequence[LogEntry]
    requests: Sequence[Request]
    events: Mapping[str, LogEntry]
    """Decodable events by id."""
    model: CredentialsModel
    expected: Mapping[str, Expected]
    """The model's verdict on each event, in log order."""

    @classmethod
    def load(cls, workdir: Path) -> Soaked:
        """Read the work directory and run the model over the log."""
        plan = json.loads((workdir / "plan.json").read_text())
        log = read_log(workdir / "log.jsonl")
        model = CredentialsModel(world_of(plan))
        events: dict[str, LogEntry] = {}
        expected: dict[str, Expected] = {}
        for entry in log:
            if entry.event is not None and entry.event_id:
                events[entry.event_id] = entry
                expected[entry.event_id] = model.apply(entry.event)
        return cls(
            workdir=workdir,
            plan=plan,
            timeline=json.loads((workdir / "timeline.json").read_text()),
            samples=list(_lines(workdir / "samples.jsonl")),
            log=log,
            requests=read_requests(workdir / "requests.jsonl"),
            events=events,
            model=model,
            expected=expected,
        )


def _expected_dead_letters(soaked: Soaked) -> tuple[dict[Position, ExpectedDeadLetter], ...]:
    """(poison published, events of always-failing learners), by position."""
    poison = json.loads((soaked.workdir / "poison.json").read_text())
    by_id = {entry.event_id: entry.position for entry in soaked.log if entry.event_id}
    poison_at = {
        (item["topic"], item["partition"], item["offset"]): ExpectedDeadLetter(
            "decode", item["reason"]
        )
        for item in poison["raw"]
    }
    for event_id in poison["lms_ids"]:
        poison_at[by_id[event_id]] = ExpectedDeadLetter("decode", "date_out_of_range")
    failing_at = {
        soaked.events[event_id].position: ExpectedDeadLetter("apply", "http_500")
        for event_id, outcome in soaked.expected.items()
        if outcome.outcome == "dead_letter"
    }
    return poison_at, failing_at


def _injected(
    report: Report, soaked: Soaked, poison_at: Mapping[Position, Any], failing: int
) -> None:
    faults = Counter(request.fault for request in soaked.requests if request.fault)
    undecodable = {entry.position for entry in soaked.log if entry.event is None}
    kinds = len({want.reason for want in poison_at.values()})
    report.row("events published (certificate + catalog)", len(soaked.events))
    report.row("poison records published", f"{len(poison_at)} ({kinds} kinds)")
    report.row(
        "learners whose requests always fail",
        f"{len(soaked.model.world.failing)} ({failing} events)",
    )
    report.row("faults injected", fault_summary(soaked.timeline))
    report.row(
        "random service failures injected",
        f"{faults['error']} 5xx, {faults['timeout']} timeouts, {faults['reset']} resets "
        f"(+{faults['outage']} answers 503 or reset by outages)",
    )
    mismatch = sorted(undecodable ^ set(poison_at))
    report.row(
        "poison decoded as poison (audit's decoder)", f"no: {mismatch[:5]}" if mismatch else "yes"
    )


def _writes(soaked: Soaked) -> dict[str, Counter[Target]]:
    """Successful writes of each event, by what they changed."""
    writes: dict[str, Counter[Target]] = defaultdict(Counter)
    for request in soaked.requests:
        target = request.written()
        if target is not None and request.event_id and request.event_id in soaked.events:
            writes[request.event_id][target] += 1
    return writes


def _applied_and_lost(
    report: Report, soaked: Soaked, writes: Mapping[str, Counter[Target]], final: Mapping[str, int]
) -> None:
    """Lost: neither written nor dead-lettered, or above the final committed offset.

    An event dead-lettered unexpectedly is not lost: it is a difference among the dead
    letters, and a wrong state until redriven.
    """
    dead = {
        (c["topic"], int(c["partition"]), int(c["offset"]))
        for c in (line["context"] for line in _lines(soaked.workdir / "dlq.jsonl"))
    }
    lost: list[str] = []
    for event_id, outcome in soaked.expected.items():
        position = soaked.events[event_id].position
        topic, partition, offset = position
        if offset >= final.get(f"{topic}:{partition}", 0):
            lost.append(f"{event_id} at {position}: not committed at the end")
        elif (
            outcome.outcome != "dead_letter"
            and outcome.certain is not None
            and position not in dead
            and not writes.get(event_id, Counter()).get(outcome.certain)
        ):
            lost.append(f"{event_id} at {position}: {outcome.certain} never written")
    skipped = sum(1 for outcome in soaked.expected.values() if outcome.outcome == "skipped")
    report.row(
        "events applied (wrote to Credentials)", sum(1 for e in soaked.events if writes.get(e))
    )
    report.row("events the rules skip (nothing to write)", skipped)
    report.row("lost", len(lost), must_be_zero=True)
    report.details["lost"] = lost


@dataclass(frozen=True, slots=True)
class Replay:
    """The replay fault: the events of its range, and when it ran (monotonic seconds)."""

    events: frozenset[str]
    started: float
    finished: float
    exit_code: int | None

    @classmethod
    def of(cls, soaked: Soaked) -> Replay | None:
        """The soak's replay, if one ran: its range's events are the burst's, by timestamp."""
        marks = {entry["what"]: entry for entry in soaked.timeline}
        begun, done = marks.get("replay_started"), marks.get("replay_finished")
        if begun is None:
            return None
        low = datetime.fromisoformat(begun["from_datetime"]).timestamp() * 1000
        high = datetime.fromisoformat(begun["to_datetime"]).timestamp() * 1000
        topic = soaked.plan["topics"]["certificates"]
        events = frozenset(
            event_id
            for event_id, entry in soaked.events.items()
            if entry.position[0] == topic
            and entry.timestamp_ms is not None
            and low <= entry.timestamp_ms < high
        )
        return cls(
            events=events,
            started=begun["monotonic"],
            finished=done["monotonic"] if done else float("inf"),
            exit_code=done["exit_code"] if done else None,
        )

    def holds(self, request: Request) -> bool:
        """The request is the replay's: an event of its range, sent while it ran."""
        return request.event_id in self.events and self.started <= request.started <= self.finished


def _keyed(soaked: Soaked, request: Request) -> KeyedRequest | None:
    entry = soaked.events.get(request.event_id or "")
    if entry is None or entry.event is None or request.service == "oauth":
        return None
    topic, partition, offset = entry.position
    return KeyedRequest(
        key=ordering_key(entry.event),
        partition=f"{topic}:{partition}",
        offset=offset,
        event_id=entry.event_id or "",
        started=request.started,
        ended=request.ended,
        reached_service=request.reached_service,
    )


def _ordering(
    report: Report, soaked: Soaked, committed: CommittedHistory, replay: Replay | None
) -> None:
    live: list[KeyedRequest] = []
    replayed: list[KeyedRequest] = []
    for request in soaked.requests:
        keyed = _keyed(soaked, request)
        if keyed is not None:
            (replayed if replay and replay.holds(request) else live).append(keyed)
    ordering = check_ordering(live, committed, replayed=replayed)
    report.row("per-key ordering violations", ordering.violations, must_be_zero=True)
    report.row("  backward steps below the committed offset", len(ordering.backward_steps))
    report.row("  two requests of one key in flight at once", len(ordering.overlaps))
    report.row("steps back to an uncommitted offset (redeliveries, allowed)", ordering.redeliveries)
    report.details["ordering"] = ordering.backward_steps + ordering.overlaps


def _replayed(report: Report, soaked: Soaked, replay: Replay | None) -> None:
    """The replay re-made every certain write of its range (within its run), and exited 0."""
    if replay is None:
        return
    again: dict[str, set[Target]] = defaultdict(set)
    for request in soaked.requests:
        target = request.written()
        if target is not None and request.event_id and replay.holds(request):
            again[request.event_id].add(target)
    missed = [
        f"{event_id}: {soaked.expected[event_id].certain} not re-applied by the replay"
        for event_id in sorted(replay.events)
        if soaked.expected[event_id].certain is not None
        and soaked.expected[event_id].certain not in again.get(event_id, set())
    ]
    applied = sum(1 for event_id in replay.events if again.get(event_id))
    report.row(
        "replay beside the live group: events of its range re-applied",
        f"{applied} of {len(replay.events)} (exit code {replay.exit_code})",
    )
    failed = 0 if replay.exit_code == 0 else 1
    report.row(
        "replay: writes not re-made, or a failed exit", len(missed) + failed, must_be_zero=True
    )
    report.details["replay"] = missed


def _dead_letters(
    report: Report, soaked: Soaked, expected: Mapping[Position, ExpectedDeadLetter]
) -> None:
    dead = check_dead_letters(expected, _lines(soaked.workdir / "dlq.jsonl"))
    report.row(
        "dead letters (expected = poison + always-failing events)",
        f"{dead.found} of {dead.expected} expected ({dead.records} records)",
    )
    report.row("dead letters differing from what was injected", dead.differences, must_be_zero=True)
    report.details["dead letters"] = dead.missing + dead.unexpected + dead.wrong_reason


def _duplicates(report: Report, writes: Mapping[str, Counter[Target]]) -> None:
    twice = {event_id: counts for event_id, counts in writes.items() if max(counts.values()) > 1}
    extra = sum(sum(counts.values()) - len(counts) for counts in twice.values())
    report.row("duplicate applications (allowed)", f"{len(twice)} events ({extra} extra writes)")


def _drain_and_processes(report: Report, soaked: Soaked) -> None:
    timeline = soaked.timeline
    drained = [entry["monotonic"] for entry in timeline if entry["what"] == "drained"]
    fault_ends = [entry["monotonic"] for entry in timeline if entry["what"] == "fault"]
    if drained and fault_ends:
        report.row("time to drain after the last fault", f"{drained[0] - max(fault_ends):.1f} s")
    else:
        report.row("time to drain after the last fault", "did not drain", must_be_zero=True)
    report.row("worker RSS 30 s into consuming / at the end", _rss(soaked))
    exits = [
        f"{entry['worker']}={entry['exit_code']}"
        for entry in timeline
        if entry["what"] == "worker_stopped"
    ]
    report.row("workers stopped with SIGTERM: exit codes", ", ".join(exits))
    written = [*(soaked.workdir / "workers").iterdir(), *(soaked.workdir / "probes").iterdir()]
    deaths = [
        f"{entry['worker']} exited {entry['exit_code']}"
        for entry in timeline
        if entry["what"] == "worker_died"
    ]
    report.row("workers that died on their own (restarted)", len(deaths), must_be_zero=True)
    crashes = [path.name for path in written if "Traceback" in path.read_text(errors="replace")]
    report.row("tracebacks (worker logs, command output)", len(crashes), must_be_zero=True)
    report.details["crashes"] = deaths + crashes


def audit(workdir: Path) -> Report:
    """Audit the soak saved in ``workdir``: every figure, in the table's order."""
    soaked = Soaked.load(workdir)
    report = Report()
    poison_at, failing_at = _expected_dead_letters(soaked)
    _injected(report, soaked, poison_at, len(failing_at))
    writes = _writes(soaked)
    committed = CommittedHistory(soaked.samples)
    _applied_and_lost(report, soaked, writes, committed.final())
    wrong = compare_states(soaked.model, json.loads((workdir / "state.json").read_text()))
    report.row("wrong final states", len(wrong), must_be_zero=True)
    report.details["wrong final states"] = wrong
    replay = Replay.of(soaked)
    _ordering(report, soaked, committed, replay)
    _replayed(report, soaked, replay)
    _dead_letters(report, soaked, {**poison_at, **failing_at})
    _duplicates(report, writes)
    _drain_and_processes(report, soaked)
    report.row(
        "secrets or personal data in logs, output, dead-letter headers",
        _leaks(workdir, soaked.plan),
        must_be_zero=True,
    )
    return report


FAULT_NAMES = {
    "noise": "random 5xx, timeouts and resets on every service",
    "credentials_refused": "Credentials refusing connections",
    "credentials_503": "Credentials answering 503 + Retry-After",
    "discovery_down": "Discovery down",
    "studio_slow": "Studio slow",
    "registry_down": "schema registry stopped",
    "broker_down": "broker stopped",
    "kill_worker": "worker SIGKILLed and restarted",
    "second_worker": "second worker in the group",
    "replay": "replay alongside the live group",
}


def fault_summary(timeline: Sequence[Mapping[str, Any]]) -> str:
    """Each fault with how long it lasted (a restart until ready), in the order they started."""
    opened: dict[str, list[float]] = defaultdict(list)
    spans: dict[str, list[str]] = {}
    for entry in timeline:
        if entry["what"] != "fault":
            continue
        kind = entry["kind"]
        spans.setdefault(kind, [])
        if entry["phase"] == "start":
            opened[kind].append(entry["monotonic"])
        elif entry["phase"] == "end" and opened[kind]:
            spans[kind].append(f"{entry['monotonic'] - opened[kind].pop(0):.0f} s")
        else:
            spans[kind].append(entry["phase"])
    return "; ".join(
        f"{FAULT_NAMES.get(kind, kind)} {' + '.join(lengths)}" for kind, lengths in spans.items()
    )


def _consuming_since(log: Path) -> float | None:
    """Wall time of the worker's first assignment with partitions (from its JSON log)."""
    for line in log.read_text(errors="replace").splitlines():
        if '"partitions_assigned"' not in line:
            continue
        entry = json.loads(line)
        if entry.get("partitions"):
            return datetime.fromisoformat(entry["timestamp"]).timestamp()
    return None


def _rss(soaked: Soaked) -> str:
    """RSS of the longest-consuming incarnation: 30 s after it began consuming, at its end.

    A worker waiting for its group (after a SIGKILL, 45 s) has not grown its thread pool and
    connection pools yet: its first readings are no baseline.
    """
    since: dict[str, float] = {}
    for path in (soaked.workdir / "workers").glob("worker-*.log"):
        began = _consuming_since(path)
        if began is not None:
            since[path.stem] = began + 30
    readings: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for sample in soaked.samples:
        for name, kb in sample.get("rss", {}).items():
            if name in since and sample["wall"] >= since[name]:
                readings[name].append((sample["wall"], kb))
    if not readings:
        return "n/a"
    name = max(readings, key=lambda key: readings[key][-1][0] - readings[key][0][0])
    values = readings[name]
    return (
        f"{values[0][1] / 1024:.0f} MiB / {values[-1][1] / 1024:.0f} MiB "
        f"(peak {max(kb for _, kb in values) / 1024:.0f} MiB; {name}, "
        f"{values[-1][0] - values[0][0]:.0f} s apart)"
    )


def _leaks(workdir: Path, plan: Mapping[str, Any]) -> int | str:
    secrets = json.loads((workdir / "private" / "secrets.json").read_text())
    tokens = json.loads((workdir / "private" / "tokens.json").read_text())
    needles: dict[str, list[str]] = {
        "OAuth secret": [secrets["oauth_secret"]],
        "registry secret": [secrets["registry_secret"]],
        "SASL password": [secrets["sasl_password"]],
        "JWT": [*tokens, *(token.rsplit(".", 1)[-1] for token in tokens if "." in token)],
    }
    paths = [
        *sorted((workdir / "workers").iterdir()),
        *sorted((workdir / "probes").iterdir()),
        workdir / "dlq-headers.txt",
    ]
    _dead_letter_headers(workdir)
    leaks = find_leaks(paths, needles)
    usernames = re.compile(rf"learner-{re.escape(plan['tag'])}-w?\d+|learner\d+@example\.com")
    personal = [path.name for path in paths if usernames.search(path.read_text(errors="replace"))]
    if personal:
        leaks["username or e-mail"] = personal
    if not leaks:
        return 0
    return "; ".join(f"{what} in {', '.join(files[:3])}" for what, files in leaks.items())


def _dead_letter_headers(workdir: Path) -> None:
    """The dead-letter records' header values as text (the record value holds the PII)."""
    with (workdir / "dlq-headers.txt").open("w") as out:
        for record in _lines(workdir / "dlq.jsonl"):
            for name, value in record["headers"]:
                out.write(f"{name}: {value}\n")
