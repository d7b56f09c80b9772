"""Small Kafka helpers for tests: read a topic from the start, produce raw records."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

from confluent_kafka import Consumer, Producer

from consumer.wire import Record


def read_records(
    bootstrap_servers: str, topic: str, count: int, *, timeout: float = 30.0
) -> list[Record]:
    """Read ``count`` records of ``topic`` from the beginning (a throwaway group, no commits)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    records: list[Record] = []
    deadline = time.monotonic() + timeout
    try:
        while len(records) < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error() is not None:
                continue
            records.append(Record.from_message(message))
    finally:
        consumer.close()
    if len(records) < count:
        raise AssertionError(f"read {len(records)} of {count} records from {topic}")
    return sorted(records, key=lambda record: (record.partition, record.offset))


def produce_raw(
    bootstrap_servers: str,
    topic: str,
    value: bytes | None,
    *,
    key: bytes | None = b"course-v1:edX+Poison+1",
    headers: Sequence[tuple[str, bytes]] = (),
    partition: int = 0,
) -> None:
    """Produce one record byte for byte (for poison input) and wait for the acknowledgement."""
    producer = Producer({"bootstrap.servers": bootstrap_servers})
    errors: list[str] = []
    producer.produce(
        topic,
        key=key,
        value=value,
        headers=list(headers),
        partition=partition,
        on_delivery=lambda error, _message: errors.append(str(error)) if error else None,
    )
    remaining = producer.flush(30)
    if remaining or errors:
        raise AssertionError(f"raw produce to {topic} failed: {errors or remaining}")
