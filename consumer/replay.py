"""``replay``: a bounded, resumable, previewable replay through the same pipeline.

A replay is a *plan* and a *group* of its own (ADR 0009):

- The plan fixes, per partition, a start offset (from a time, from given offsets, or the
  beginning) and an end offset (the end of the log when the replay starts, or the first
  offset at ``--to-datetime``). Records produced later are not replayed.
- Before anything is consumed, the plan is committed as the group's offsets: each
  partition's start, with its range (``{"credentials_consumer_replay":1,"start":S,"end":E}``)
  as the offset's commit metadata. The engine commits every watermark with the same
  metadata, so the group holds both how far the replay got and where it must stop;
  ``--group-id G`` reads them back and finishes the same range, after SIGTERM or SIGKILL.
- The engine consumes the partitions by ``assign`` at those offsets (no group
  membership, no rebalancing), takes nothing at or past an end, and stops once every
  partition is done up to its end. Everything else — decoding, key-ordered lanes,
  retries, circuit breakers, dead letters (with the replay's group in their headers) — is
  the worker's own pipeline.

The live group's offsets are never read for planning nor written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog
from confluent_kafka import TopicPartition

from consumer.errors import ConsumerError
from consumer.kafka_admin import KafkaAdmin, TopicInfo
from consumer.kafka_types import TP
from consumer.observability import Metrics
from consumer.positions import AtTime, Position, describe, resolve
from consumer.progress import Progress

log = structlog.get_logger("consumer.replay")

METADATA_KEY = "credentials_consumer_replay"


def default_group(live_group: str, now: datetime) -> str:
    """``<group>.replay.<UTC timestamp>``, e.g. ``credentials-consumer.replay.20260301T100000Z``."""
    return f"{live_group}.replay.{now.astimezone(UTC):%Y%m%dT%H%M%SZ}"


@dataclass(frozen=True, slots=True)
class PartitionRange:
    """Offsets ``start`` (included) to ``end`` (excluded) of one partition."""

    topic: str
    partition: int
    start: int
    end: int

    @property
    def tp(self) -> TP:
        """(topic, partition)."""
        return (self.topic, self.partition)

    @property
    def count(self) -> int:
        """Records in the range (fewer on a compacted topic)."""
        return max(0, self.end - self.start)

    def metadata(self) -> str:
        """The range as commit metadata (well below the broker's 4 KiB limit)."""
        return json.dumps(
            {METADATA_KEY: 1, "start": self.start, "end": self.end}, separators=(",", ":")
        )


def range_from_metadata(tp: TP, metadata: str) -> PartitionRange | None:
    """The range a replay committed with ``tp``'s offset, or None if it is not a replay's."""
    try:
        stored = json.loads(metadata)
        start, end = int(stored["start"]), int(stored["end"])
    except (ValueError, TypeError, KeyError):
        return None
    if not isinstance(stored, dict) or stored.get(METADATA_KEY) != 1:
        return None
    return PartitionRange(tp[0], tp[1], start, end)


@dataclass(frozen=True, slots=True)
class Plan:
    """What a replay will do: ranges, where this run starts in each, and in which group."""

    group: str
    ranges: tuple[PartitionRange, ...]
    positions: Mapping[TP, int]
    resumed: bool
    start_text: str
    end_text: str
    dry_run: bool = False
    _by_tp: dict[TP, PartitionRange] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_tp", {item.tp: item for item in self.ranges})

    def get(self, tp: TP) -> PartitionRange | None:
        """The range of ``tp``, if it is part of the replay."""
        return self._by_tp.get(tp)

    def position(self, item: PartitionRange) -> int:
        """Where this run starts in ``item`` (its start, or where an earlier run stopped)."""
        return min(
            max(self.positions.get(item.tp, item.start), item.start), max(item.end, item.start)
        )

    @property
    def total(self) -> int:
        """Records in the whole range."""
        return sum(item.count for item in self.ranges)

    @property
    def remaining(self) -> int:
        """Records this run still has to do."""
        return sum(max(0, item.end - self.position(item)) for item in self.ranges)

    def to_json(self) -> dict[str, object]:
        """The plan for machines (``--json``)."""
        return {
            "group": self.group,
            "resumed": self.resumed,
            "dry_run": self.dry_run,
            "from": self.start_text,
            "to": self.end_text,
            "partitions": [
                {
                    "topic": item.topic,
                    "partition": item.partition,
                    "start": item.start,
                    "end": item.end,
                    "count": item.count,
                    "position": self.position(item),
                }
                for item in self.ranges
            ],
            "total": self.total,
            "remaining": self.remaining,
        }

    def render(self) -> str:
        """The plan for people."""
        how = "resumed" if self.resumed else "new"
        lines = [
            f"replay plan: group {self.group} ({how}{', dry-run' if self.dry_run else ''})",
            f"  from {self.start_text}",
            f"  to   {self.end_text}",
        ]
        width = max([len("topic"), *(len(item.topic) for item in self.ranges)])
        lines.append(
            f"  {'topic':<{width}}  {'partition':>9}  {'start':>10}  {'end':>10}  "
            f"{'count':>10}  {'done':>10}"
        )
        for item in self.ranges:
            done = self.position(item) - item.start
            lines.append(
                f"  {item.topic:<{width}}  {item.partition:>9}  {item.start:>10}  "
                f"{item.end:>10}  {item.count:>10}  {done:>10}"
            )
        lines.append(f"  total {self.total} records, {self.remaining} to do")
        return "\n".join(lines)


def new_plan(
    admin: KafkaAdmin,
    topics: Mapping[str, TopicInfo],
    *,
    group: str,
    start: Position,
    to: AtTime | None,
    now: datetime,
    dry_run: bool,
) -> Plan:
    """Plan a replay of ``topics`` from ``start`` to ``to`` (or to the end of the log now)."""
    starts = resolve(admin, topics, start)
    watermarks = admin.watermarks(starts)
    ends = resolve(admin, topics, to) if to is not None else {}
    ranges = []
    for tp in sorted(starts):
        low, high = watermarks[tp]
        first = min(max(starts[tp], low), high)
        last = min(max(ends.get(tp, high), first), high)
        ranges.append(PartitionRange(tp[0], tp[1], first, last))
    end_text = (
        to.text
        if to is not None
        else f"the end of each partition at {now.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"
    )
    return Plan(
        group=group,
        ranges=tuple(ranges),
        positions={item.tp: item.start for item in ranges},
        resumed=False,
        start_text=describe(start),
        end_text=end_text,
        dry_run=dry_run,
    )


def stored_plan(admin: KafkaAdmin, group: str, *, dry_run: bool) -> Plan | None:
    """The plan an earlier run of ``group`` committed, with how far it got; None if new.

    Raises ``ConsumerError`` when ``group`` has committed offsets that are not a replay's
    (say, the live group): a replay must never move them.
    """
    committed = admin.committed(group)
    ranges = []
    positions = {}
    for tp, entry in sorted(committed.items()):
        item = range_from_metadata(tp, entry.metadata)
        if item is not None:
            ranges.append(item)
            positions[tp] = entry.offset
    if not ranges:
        if committed:
            raise ConsumerError(
                f"group {group} has committed offsets but no replay range: it is not a "
                "replay's group, and a replay never moves another group's offsets; "
                "choose another --group-id",
                reason="not_a_replay_group",
            )
        return None
    return Plan(
        group=group,
        ranges=tuple(ranges),
        positions=positions,
        resumed=True,
        start_text="the ranges stored in the group (as first planned)",
        end_text="the ends stored in the group (fixed when the replay started)",
        dry_run=dry_run,
    )


def record(admin: KafkaAdmin, plan: Plan) -> None:
    """Commit the plan's start offsets with its ranges: from now on, the group holds both."""
    admin.alter_offsets(
        plan.group, {item.tp: (plan.position(item), item.metadata()) for item in plan.ranges}
    )
    log.info("replay_plan_recorded", group=plan.group, partitions=len(plan.ranges))


class ReplayBounds:
    """The engine's ``Bounds`` for a plan: assign, stop at the ends, keep the ranges."""

    def __init__(self, plan: Plan, progress: Progress) -> None:
        self._plan = plan
        self._progress = progress

    def assignment(self) -> list[TopicPartition]:
        """Every partition with something left, at the offset to resume from."""
        return [
            TopicPartition(item.topic, item.partition, self._plan.position(item))
            for item in self._plan.ranges
            if self._plan.position(item) < item.end
        ]

    def end(self, tp: TP) -> int:
        """The first offset not to replay (0 outside the plan: nothing is taken)."""
        item = self._plan.get(tp)
        return item.end if item is not None else 0

    def commit_metadata(self, tp: TP) -> str | None:
        """The range, committed with every watermark (so a restart finds it)."""
        item = self._plan.get(tp)
        return item.metadata() if item is not None else None

    def committed(self, tp: TP, offset: int) -> None:
        """A watermark landed: progress."""
        self._progress.committed(tp, offset)


def progress_of(plan: Plan, metrics: Metrics) -> Progress:
    """A ``Progress`` for ``plan``, starting where this run starts."""
    return Progress(
        [(item.tp, item.start, item.end) for item in plan.ranges],
        {item.tp: plan.position(item) for item in plan.ranges},
        metrics,
    )


# ---------------------------------------------------------------------------- summary


@dataclass(frozen=True, slots=True)
class Summary:
    """What a replay did, printed when it ends."""

    group: str
    completed: bool
    dry_run: bool
    elapsed_seconds: float
    planned: int
    done: int
    events: Mapping[str, int]
    commands: Mapping[str, Mapping[str, int]]
    dead_letters: int

    @property
    def rate(self) -> float:
        """Events finished per second by this run."""
        return sum(self.events.values()) / self.elapsed_seconds if self.elapsed_seconds else 0.0

    def to_json(self) -> dict[str, object]:
        """The summary for machines (``--json``)."""
        return {
            "group": self.group,
            "completed": self.completed,
            "dry_run": self.dry_run,
            "planned": self.planned,
            "done": self.done,
            "events": dict(self.events),
            "commands": {name: dict(results) for name, results in self.commands.items()},
            "dead_letters": self.dead_letters,
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "rate": round(self.rate, 2),
        }

    def render(self) -> str:
        """The summary for people."""
        verdict = "complete" if self.completed else "NOT complete"
        lines = [
            f"replay {verdict}: group {self.group}, {self.done}/{self.planned} records done"
            f"{' (dry-run)' if self.dry_run else ''}",
            "  events: " + ", ".join(f"{name} {count}" for name, count in self.events.items()),
            "  commands: "
            + (
                "; ".join(
                    f"{name} "
                    + ", ".join(f"{result} {count}" for result, count in sorted(results.items()))
                    for name, results in sorted(self.commands.items())
                )
                or "none"
            ),
            f"  dead letters: {self.dead_letters}",
            f"  elapsed {self.elapsed_seconds:.1f}s, {self.rate:.1f} events/s",
        ]
        if not self.completed:
            lines.append(f"  resume with: credentials-consumer replay --group-id {self.group}")
        return "\n".join(lines)


def commands_by_kind(metrics: Metrics) -> dict[str, dict[str, int]]:
    """Commands counted by the processors, by command name and result."""
    counts: dict[str, dict[str, int]] = {}
    for family in metrics.commands.collect():
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.value:
                results = counts.setdefault(sample.labels["command"], {})
                results[sample.labels["result"]] = int(sample.value)
    return counts
