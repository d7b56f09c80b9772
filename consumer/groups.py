"""``offsets show`` and ``offsets reset``: a consumer group's offsets, seen and moved.

``show`` lists, per partition of the consumed topics (and of any other topic the group has
committed offsets for), the committed offset, the end offset and the lag, with the group's
state and active members. ``reset`` computes new offsets (a time, given offsets, the
earliest or the latest) and prints the plan; only with ``--execute`` does it write them,
and it refuses while the group has active members — as ``kafka-consumer-groups
--reset-offsets`` does (the broker would refuse too).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from consumer.errors import ConsumerError
from consumer.kafka_admin import GroupInfo, KafkaAdmin, TopicInfo
from consumer.kafka_types import TP
from consumer.positions import Position, describe, resolve


@dataclass(frozen=True, slots=True)
class PartitionLag:
    """One partition of a group: committed offset (None: none yet), end offset, lag."""

    topic: str
    partition: int
    committed: int | None
    end: int
    start: int

    @property
    def lag(self) -> int:
        """Records between the committed offset (or the log start) and the end."""
        return max(0, self.end - (self.committed if self.committed is not None else self.start))


@dataclass(frozen=True, slots=True)
class GroupOffsets:
    """What ``offsets show`` prints."""

    info: GroupInfo
    partitions: tuple[PartitionLag, ...]

    def to_json(self) -> dict[str, object]:
        """For machines (``--json``)."""
        return {
            "group": self.info.group,
            "state": self.info.state,
            "members": [
                {
                    "client_id": member.client_id,
                    "host": member.host,
                    "partitions": [
                        f"{topic}:{partition}" for topic, partition in member.partitions
                    ],
                }
                for member in self.info.members
            ],
            "partitions": [
                {
                    "topic": item.topic,
                    "partition": item.partition,
                    "committed": item.committed,
                    "end": item.end,
                    "lag": item.lag,
                }
                for item in self.partitions
            ],
            "lag": sum(item.lag for item in self.partitions),
        }

    def render(self) -> str:
        """For people."""
        info = self.info
        lines = [f"group {info.group}: {info.state}, {len(info.members)} active member(s)"]
        width = max([len("topic"), *(len(item.topic) for item in self.partitions)])
        lines.append(
            f"  {'topic':<{width}}  {'partition':>9}  {'committed':>10}  {'end':>10}  {'lag':>8}"
        )
        for item in self.partitions:
            committed = "-" if item.committed is None else str(item.committed)
            lines.append(
                f"  {item.topic:<{width}}  {item.partition:>9}  {committed:>10}  "
                f"{item.end:>10}  {item.lag:>8}"
            )
        lines.append(f"  total lag {sum(item.lag for item in self.partitions)}")
        for member in info.members:
            owned = ", ".join(f"{topic}:{partition}" for topic, partition in member.partitions)
            lines.append(f"  member {member.client_id} at {member.host}: {owned or 'nothing'}")
        return "\n".join(lines)


def show(admin: KafkaAdmin, group: str, topics: Iterable[str]) -> GroupOffsets:
    """The group's offsets over ``topics`` and whatever else it committed.

    Raises ``missing_group`` when the group has neither members nor committed offsets.
    """
    info = admin.group(group)
    committed = admin.committed(group)
    if not info.exists and not committed:
        raise ConsumerError(
            f"consumer group {group} does not exist (no members, no committed offsets)",
            reason="missing_group",
        )
    known = admin.topics(topics)
    others = {topic for topic, _ in committed} - set(known)
    known.update(admin.existing_topics(others))
    tps = sorted(
        {(name, partition) for name, topic in known.items() for partition in topic.partitions}
    )
    watermarks = admin.watermarks(tps)
    rows = tuple(
        PartitionLag(
            topic=tp[0],
            partition=tp[1],
            committed=committed[tp].offset if tp in committed else None,
            end=watermarks[tp][1],
            start=watermarks[tp][0],
        )
        for tp in tps
    )
    return GroupOffsets(info=info, partitions=rows)


@dataclass(frozen=True, slots=True)
class ResetPlan:
    """What ``offsets reset`` would write: per partition, the current and the new offset."""

    info: GroupInfo
    target: str
    changes: tuple[tuple[TP, int | None, int], ...]  # (partition, current, new)

    def to_json(self) -> dict[str, object]:
        """For machines (``--json``)."""
        return {
            "group": self.info.group,
            "state": self.info.state,
            "active_members": len(self.info.members),
            "to": self.target,
            "partitions": [
                {"topic": tp[0], "partition": tp[1], "current": current, "new": new}
                for tp, current, new in self.changes
            ],
        }

    def render(self) -> str:
        """For people."""
        lines = [
            f"reset of group {self.info.group} ({self.info.state}, "
            f"{len(self.info.members)} active member(s)) to {self.target}:"
        ]
        width = max([len("topic"), *(len(tp[0]) for tp, _, _ in self.changes)])
        lines.append(f"  {'topic':<{width}}  {'partition':>9}  {'current':>10}  {'new':>10}")
        for (topic, partition), current, new in self.changes:
            shown = "-" if current is None else str(current)
            lines.append(f"  {topic:<{width}}  {partition:>9}  {shown:>10}  {new:>10}")
        return "\n".join(lines)


def reset_plan(
    admin: KafkaAdmin, group: str, topics: Mapping[str, TopicInfo], target: Position
) -> ResetPlan:
    """The new offsets of ``group`` over ``topics``; nothing is written."""
    info = admin.group(group)
    committed = admin.committed(group)
    new = resolve(admin, topics, target)
    changes = tuple(
        (tp, committed[tp].offset if tp in committed else None, offset)
        for tp, offset in sorted(new.items())
    )
    return ResetPlan(info=info, target=describe(target), changes=changes)


def execute(admin: KafkaAdmin, plan: ResetPlan) -> None:
    """Write ``plan``; refused (``group_active``) while the group has active members."""
    info = admin.group(plan.info.group)
    if info.members:
        clients = ", ".join(sorted({member.client_id for member in info.members}))
        raise ConsumerError(
            f"refused: group {info.group} has {len(info.members)} active member(s) "
            f"({clients}); stop every worker of the group, then run the reset again",
            reason="group_active",
        )
    admin.alter_offsets(info.group, {tp: (new, None) for tp, _, new in plan.changes})
