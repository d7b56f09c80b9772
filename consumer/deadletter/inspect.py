"""``dlq inspect``: a person's view of a dead-letter topic.

Reads the topic from its start to the end offsets seen when the command started (no
consumer group offsets are touched), and summarises the context headers that ``producer``
wrote (format: ``records``): counts by stage, error class and reason, source topics, the
oldest and newest failure, and a few samples. It never prints a record's value (it holds the
learner's personal data), only headers and the course key. No record can make it fail: a
dead-letter topic holds poison by definition (any key, any header bytes, headers missing).
"""

from __future__ import annotations

import io
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import fastavro
from confluent_kafka import Consumer, KafkaError, TopicPartition

from consumer.deadletter.records import context_of
from consumer.errors import ConsumerError
from consumer.wire import FRAME_HEADER_SIZE, MAGIC_BYTE, Record

_STRING_SCHEMA = fastavro.parse_schema({"type": "string"})


def course_key_of(key: bytes | None) -> str:
    """The record key as text: a Confluent-framed Avro string (the LMS's), or raw UTF-8.

    Never raises: a dead-letter topic holds whatever was poison, keys included.
    """
    if not key:
        return ""
    if len(key) > FRAME_HEADER_SIZE and key[0] == MAGIC_BYTE:
        try:
            value = fastavro.schemaless_reader(
                io.BytesIO(key[FRAME_HEADER_SIZE:]), _STRING_SCHEMA, None
            )
        except Exception:  # noqa: BLE001 - fastavro raises anything on garbage; shown raw below
            value = None
        if isinstance(value, str):
            return value
    return key.decode("utf-8", errors="replace")


@dataclass
class DlqSummary:
    """What a dead-letter topic holds."""

    topic: str
    total: int = 0
    partitions: Counter[int] = field(default_factory=Counter)
    stages: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)
    oldest: str | None = None
    newest: str | None = None
    samples: list[dict[str, str]] = field(default_factory=list)

    def add(self, record: Record, *, samples: int) -> None:
        """Count one dead-letter record."""
        context = context_of(record.headers)
        self.total += 1
        self.partitions[record.partition] += 1
        self.stages[context.get("stage", "?")] += 1
        self.errors[f"{context.get('class', '?')}/{context.get('reason', '?')}"] += 1
        self.sources[context.get("topic", "?")] += 1
        when = context.get("last_failure")
        if when:
            self.oldest = min(self.oldest or when, when)
            self.newest = max(self.newest or when, when)
        if len(self.samples) < samples:
            ce_type = record.header("ce_type")
            ce_id = record.header("ce_id")
            self.samples.append(
                {
                    "dlq_position": f"{record.partition}:{record.offset}",
                    "source": ":".join(
                        context.get(name, "?") for name in ("topic", "partition", "offset")
                    ),
                    "event_type": ce_type[0].decode("utf-8", "replace") if ce_type else "",
                    "event_id": ce_id[0].decode("utf-8", "replace") if ce_id else "",
                    "course_key": course_key_of(record.key),
                    "stage": context.get("stage", ""),
                    "error": f"{context.get('class', '')}/{context.get('reason', '')}",
                    "attempts": context.get("attempts", ""),
                    "last_failure": context.get("last_failure", ""),
                    "message": context.get("message", ""),
                }
            )

    def to_json(self) -> dict[str, Any]:
        """The summary as a JSON-ready dict."""
        return {
            "topic": self.topic,
            "total": self.total,
            "partitions": {str(key): count for key, count in sorted(self.partitions.items())},
            "by_stage": dict(self.stages.most_common()),
            "by_error": dict(self.errors.most_common()),
            "by_source_topic": dict(self.sources.most_common()),
            "oldest_failure": self.oldest,
            "newest_failure": self.newest,
            "samples": self.samples,
        }

    def render(self) -> str:
        """The summary as text for a terminal."""
        lines = [f"dead-letter topic {self.topic}: {self.total} records"]
        if not self.total:
            return lines[0]
        lines.append(f"  failures from {self.oldest} to {self.newest}")
        for title, counts in (
            ("by stage", self.stages),
            ("by error (class/reason)", self.errors),
            ("by source topic", self.sources),
        ):
            lines.append(f"  {title}:")
            lines += [f"    {count:>8}  {name}" for name, count in counts.most_common()]
        lines.append(f"  samples ({len(self.samples)}):")
        for sample in self.samples:
            lines.append(
                f"    - at {sample['dlq_position']} from {sample['source']} "
                f"{sample['event_type'] or '(no ce_type)'} {sample['event_id']} "
                f"course {sample['course_key'] or '-'}"
            )
            lines.append(
                f"      {sample['stage']} {sample['error']} after {sample['attempts']} attempt(s), "
                f"last {sample['last_failure']}: {sample['message']}"
            )
        return "\n".join(lines)


def inspect_topic(
    client_config: dict[str, Any], topic: str, *, samples: int = 5, timeout: float = 60.0
) -> DlqSummary:
    """Read ``topic`` up to its current end and summarise it. Raises if it does not exist."""
    consumer = Consumer(
        {
            **client_config,
            "group.id": "credentials-consumer-dlq-inspect",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=15)
        described = metadata.topics.get(topic)
        if described is None or described.error is not None:
            raise ConsumerError(f"topic {topic} does not exist", reason="missing_topic")
        remaining: dict[int, int] = {}
        assignment = []
        for partition in described.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=15)
            if high > low:
                remaining[partition] = high
                assignment.append(TopicPartition(topic, partition, low))
        summary = DlqSummary(topic=topic)
        consumer.assign(assignment)
        deadline = time.monotonic() + timeout
        while remaining and time.monotonic() < deadline:
            for message in consumer.consume(500, 0.5):
                error = message.error()
                if error is not None and error.code() != KafkaError._PARTITION_EOF:
                    raise ConsumerError(f"reading {topic} failed: {error.str()}")
                partition = message.partition()
                if error is not None or partition not in remaining:
                    continue
                record = Record.from_message(message)
                if record.offset < remaining[partition]:
                    summary.add(record, samples=samples)
                if record.offset + 1 >= remaining[partition]:
                    del remaining[partition]
        if remaining:
            raise ConsumerError(f"timed out reading {topic} (partitions left: {sorted(remaining)})")
        return summary
    finally:
        consumer.close()
