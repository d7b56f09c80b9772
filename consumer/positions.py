"""Positions in a topic, as an operator names them: a time, offsets, or an end of the log.

``replay --from-datetime/--from-offset/--from-beginning/--to-datetime`` and ``offsets reset
--to-datetime/--to-offset/--to-earliest/--to-latest`` share these: ``parse_*`` turn the
command line into values (``argparse`` reports a bad one, exit 2), ``resolve`` turns a value
into one offset per partition, asking the broker. A time means what it means to
``kafka-consumer-groups --to-datetime`` and edx-event-bus-kafka's ``offset_time``: the first
offset whose record timestamp is at or after it, or the end of the partition when every
record is older.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from consumer.errors import UsageError
from consumer.kafka_admin import KafkaAdmin, TopicInfo
from consumer.kafka_types import TP

log = structlog.get_logger("consumer.positions")

_PARTITION_OFFSET = re.compile(
    r"(?:(?P<topic>[a-zA-Z0-9._-]+):)?(?P<partition>\d+):(?P<offset>\d+)"
)


@dataclass(frozen=True, slots=True)
class Earliest:
    """The first offset still in the log."""


@dataclass(frozen=True, slots=True)
class Latest:
    """One past the last offset: the end of the log."""


@dataclass(frozen=True, slots=True)
class AtTime:
    """The first offset whose record timestamp is at or after ``timestamp_ms``."""

    timestamp_ms: int
    text: str  # ISO-8601 UTC, for plans and logs


@dataclass(frozen=True, slots=True)
class PartitionOffset:
    """``[TOPIC:]PARTITION:OFFSET`` as given; no topic means the only topic in play."""

    topic: str | None
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class AtOffsets:
    """Given offsets of given partitions; other partitions are left out."""

    offsets: tuple[PartitionOffset, ...]


Position = Earliest | Latest | AtTime | AtOffsets


def parse_datetime(text: str) -> AtTime:
    """``2026-03-01T10:00:00Z``, ``2026-03-01T12:00+02:00``, ``2026-03-01`` (no zone: UTC)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO-8601 date and time (e.g. 2026-03-01T10:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return AtTime(
        timestamp_ms=round(moment.timestamp() * 1000),
        text=moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    )


def parse_offsets(text: str) -> AtOffsets:
    """``P:O[,P:O...]``, each optionally ``TOPIC:P:O``."""
    items = []
    for item in text.split(","):
        match = _PARTITION_OFFSET.fullmatch(item.strip())
        if match is None:
            raise argparse.ArgumentTypeError(
                f"{item.strip()!r} is not PARTITION:OFFSET (or TOPIC:PARTITION:OFFSET)"
            )
        items.append(PartitionOffset(match["topic"], int(match["partition"]), int(match["offset"])))
    return AtOffsets(tuple(items))


def resolve(
    admin: KafkaAdmin, topics: Mapping[str, TopicInfo], position: Position
) -> dict[TP, int]:
    """One offset per partition of ``topics`` (the listed partitions only, for offsets).

    Offsets outside a partition's log are clamped into it (logged), as kafka-consumer-groups
    does. Raises ``UsageError`` for ``P:O`` with several topics in play, and for a partition
    or topic that is not in play.
    """
    if isinstance(position, AtOffsets):
        wanted = _listed(position, topics)
        watermarks = admin.watermarks(wanted)
        resolved = {}
        for tp, offset in wanted.items():
            low, high = watermarks[tp]
            resolved[tp] = min(max(offset, low), high)
            if resolved[tp] != offset:
                log.warning(
                    "offset_clamped",
                    topic=tp[0],
                    partition=tp[1],
                    asked=offset,
                    used=resolved[tp],
                    log_start=low,
                    log_end=high,
                )
        return resolved
    tps = [(name, partition) for name, info in topics.items() for partition in info.partitions]
    if isinstance(position, AtTime):
        found = admin.offsets_for_time(tps, position.timestamp_ms)
        missing = [tp for tp, offset in found.items() if offset is None]
        ends = admin.watermarks(missing) if missing else {}
        return {tp: offset if offset is not None else ends[tp][1] for tp, offset in found.items()}
    watermarks = admin.watermarks(tps)
    index = 0 if isinstance(position, Earliest) else 1
    return {tp: marks[index] for tp, marks in watermarks.items()}


def _listed(position: AtOffsets, topics: Mapping[str, TopicInfo]) -> dict[TP, int]:
    wanted: dict[TP, int] = {}
    for item in position.offsets:
        if item.topic is None and len(topics) != 1:
            raise UsageError(
                f"{item.partition}:{item.offset} names no topic, and {len(topics)} topics are "
                "in play: write TOPIC:PARTITION:OFFSET, or choose one topic with --topic"
            )
        topic = item.topic if item.topic is not None else next(iter(topics))
        info = topics.get(topic)
        if info is None:
            raise UsageError(f"topic {topic} is not one of {', '.join(sorted(topics))}")
        if item.partition not in info.partitions:
            raise UsageError(
                f"topic {topic} has no partition {item.partition} (it has {len(info.partitions)})"
            )
        wanted[(topic, item.partition)] = item.offset
    return wanted


def describe(position: Position) -> str:
    """The position in words, for plans."""
    if isinstance(position, Earliest):
        return "the beginning of the log"
    if isinstance(position, Latest):
        return "the end of the log"
    if isinstance(position, AtTime):
        return position.text
    return ", ".join(
        f"{item.topic + ':' if item.topic else ''}{item.partition}:{item.offset}"
        for item in position.offsets
    )
