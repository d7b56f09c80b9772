"""Dead-letter topics that keep their records: created durable, audited by ``check``.

A dead letter is the only copy of an event that could not be applied; if its topic deletes
it (stock Kafka keeps records 7 days) before someone redrives it, it is lost. So a missing
dead-letter topic is created with its source topic's partition count and replication
factor, and ``retention.ms`` from ``CONSUMER_DEAD_LETTER_RETENTION_MS`` (default ``-1``:
kept until deleted). Where the worker may not create topics, operators pre-create them with
the same settings (README); ``audit`` then warns about one that keeps less than
configured, deletes by size or by key (compaction), or has fewer replicas than its source.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import structlog
from confluent_kafka import KafkaError
from confluent_kafka.cimpl import NewTopic

from consumer.config import KEEP_FOREVER, KafkaSettings
from consumer.kafka_admin import KafkaAdmin, TopicInfo

log = structlog.get_logger(__name__)


def dead_letter_topic_config(kafka: KafkaSettings) -> dict[str, str]:
    """The topic configuration a created dead-letter topic gets."""
    return {"retention.ms": str(kafka.dead_letter_retention_ms), "cleanup.policy": "delete"}


def new_dead_letter_topic(kafka: KafkaSettings, name: str, source: TopicInfo | None) -> NewTopic:
    """The dead-letter topic ``name`` shaped like its ``source`` (broker defaults if unknown)."""
    return NewTopic(
        name,
        num_partitions=len(source.partitions) if source is not None else 1,
        replication_factor=source.replication if source is not None else -1,
        config=dead_letter_topic_config(kafka),
    )


def ensure_dead_letter_topics(admin: KafkaAdmin, kafka: KafkaSettings) -> None:
    """Create the missing dead-letter topics of the consumed topics.

    A topic that cannot be created is logged (the operator pre-creates it); the producer
    then reports, and retries, every record it cannot write, and the offsets wait.
    """
    pairs = {source: kafka.dead_letter_topic(source) for source in kafka.full_topics}
    existing = admin.existing_topics([*pairs, *pairs.values()])
    missing = [
        new_dead_letter_topic(kafka, target, existing.get(source))
        for source, target in pairs.items()
        if target not in existing
    ]
    for name, error in admin.create_topics(missing).items():
        if error is None:
            log.info(
                "dead_letter_topic_created",
                topic=name,
                retention_ms=kafka.dead_letter_retention_ms,
            )
        elif error.code() != KafkaError.TOPIC_ALREADY_EXISTS:  # another worker was quicker
            log.error(
                "dead_letter_topic_not_created",
                topic=name,
                error=error.str(),
                hint="pre-create it (see the README) or allow the worker to create topics",
            )


@dataclass(frozen=True, slots=True)
class Concern:
    """Something about a dead-letter topic that can lose dead letters."""

    topic: str
    problem: str
    fix: str


def keeps_less(existing_ms: int, configured_ms: int) -> bool:
    """True when a topic keeping records ``existing_ms`` deletes some ``configured_ms`` keeps."""
    if existing_ms == KEEP_FOREVER:
        return False
    return configured_ms == KEEP_FOREVER or existing_ms < configured_ms


def audit(
    kafka: KafkaSettings,
    topics: Mapping[str, TopicInfo],
    configs: Mapping[str, Mapping[str, str]],
) -> list[Concern]:
    """Concerns about the existing dead-letter topics (pure: metadata and configs given)."""
    concerns = []
    for source in kafka.full_topics:
        name = kafka.dead_letter_topic(source)
        if name not in topics:
            continue
        config = configs.get(name, {})
        retention = int(config.get("retention.ms", KEEP_FOREVER))
        if keeps_less(retention, kafka.dead_letter_retention_ms):
            concerns.append(
                Concern(
                    name,
                    f"retention.ms={retention} keeps less than CONSUMER_DEAD_LETTER_RETENTION_MS="
                    f"{kafka.dead_letter_retention_ms}: dead letters expire before a redrive",
                    f"kafka-configs --alter --entity-type topics --entity-name {name} "
                    f"--add-config retention.ms={kafka.dead_letter_retention_ms}",
                )
            )
        if int(config.get("retention.bytes", KEEP_FOREVER)) != KEEP_FOREVER:
            concerns.append(
                Concern(
                    name,
                    f"retention.bytes={config['retention.bytes']}: old dead letters are deleted "
                    "by size",
                    f"set retention.bytes=-1 on {name}",
                )
            )
        if "compact" in config.get("cleanup.policy", "delete"):
            concerns.append(
                Concern(
                    name,
                    f"cleanup.policy={config['cleanup.policy']}: compaction keeps one dead letter "
                    "per course key",
                    f"set cleanup.policy=delete on {name}",
                )
            )
        source_info = topics.get(source)
        if source_info is not None and topics[name].replication < source_info.replication:
            concerns.append(
                Concern(
                    name,
                    f"{topics[name].replication} replica(s), fewer than its source {source} "
                    f"({source_info.replication})",
                    "add replicas with kafka-reassign-partitions",
                )
            )
    return concerns
