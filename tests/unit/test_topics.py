"""Dead-letter topics are created durable, and ``check`` warns about one that is not."""

from __future__ import annotations

import pytest

from consumer import config
from consumer.deadletter.topics import audit, keeps_less, new_dead_letter_topic
from consumer.kafka_admin import TopicInfo

KAFKA = config.load(
    {"EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS": "kafka:9092", "CONSUMER_TOPICS": "certs"},
    with_services=False,
).kafka
WEEK = 7 * 24 * 3600 * 1000


def test_a_created_dead_letter_topic_copies_its_source_and_keeps_records() -> None:
    """Partitions and replication factor of the source; retention.ms from the setting."""
    topic = new_dead_letter_topic(KAFKA, "certs.dlq", TopicInfo("certs", (0, 1, 2, 3), 3))
    assert (topic.topic, topic.num_partitions, topic.replication_factor) == ("certs.dlq", 4, 3)
    assert topic.config == {"retention.ms": "-1", "cleanup.policy": "delete"}


def test_without_its_source_a_dead_letter_topic_takes_the_broker_defaults() -> None:
    """Replication factor -1 asks the broker for its default."""
    topic = new_dead_letter_topic(KAFKA, "certs.dlq", None)
    assert (topic.num_partitions, topic.replication_factor) == (1, -1)


@pytest.mark.parametrize(
    ("existing", "configured", "less"),
    [
        (-1, -1, False),
        (WEEK, -1, True),
        (-1, WEEK, False),
        (WEEK, 2 * WEEK, True),
        (2 * WEEK, WEEK, False),
        (WEEK, WEEK, False),
    ],
)
def test_keeps_less(existing: int, configured: int, less: bool) -> None:
    """-1 keeps for ever; any other retention keeps less than for ever."""
    assert keeps_less(existing, configured) is less


def test_audit_warns_about_every_way_dead_letters_can_be_lost() -> None:
    """Short retention, size retention, compaction and fewer replicas each raise a concern."""
    topics = {"certs": TopicInfo("certs", (0, 1), 3), "certs.dlq": TopicInfo("certs.dlq", (0,), 1)}
    configs = {
        "certs.dlq": {
            "retention.ms": str(WEEK),
            "retention.bytes": "1073741824",
            "cleanup.policy": "compact,delete",
        }
    }
    problems = [concern.problem for concern in audit(KAFKA, topics, configs)]
    assert len(problems) == 4
    assert "retention.ms=604800000" in problems[0]
    assert "retention.bytes" in problems[1]
    assert "compact" in problems[2]
    assert "fewer than its source" in problems[3]


def test_audit_is_quiet_about_a_durable_dead_letter_topic() -> None:
    """A topic that keeps everything, with as many replicas as its source: no concern."""
    topics = {"certs": TopicInfo("certs", (0,), 3), "certs.dlq": TopicInfo("certs.dlq", (0,), 3)}
    configs = {
        "certs.dlq": {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}
    }
    assert audit(KAFKA, topics, configs) == []
