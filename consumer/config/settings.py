"""The worker's settings as frozen values, and ``describe``: how they are shown to people.

The values hold no validation: ``config.load`` checks every one where it is read, naming the
variable (``load``). Secrets are fields hidden from ``repr``; ``describe`` shows them as
``***`` and a URL's user info as ``***@``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from typing import TYPE_CHECKING, Any

from consumer.handlers import Policy
from consumer.services.redaction import mask_userinfo
from consumer.services.settings import ServiceSettings

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

DEFAULT_TOPICS = ("learning-certificate-lifecycle", "course-catalog-info-changed")
DEFAULT_GROUP_ID = "credentials-consumer"
KEEP_FOREVER = -1  # retention.ms of a topic whose records are never deleted by age


@dataclass(frozen=True, slots=True, kw_only=True)
class KafkaSettings:
    """Broker, registry, topics and group."""

    bootstrap_servers: str
    api_key: str | None = None
    api_secret: str | None = field(default=None, repr=False)
    schema_registry_url: str | None = None
    schema_registry_api_key: str | None = None
    schema_registry_api_secret: str | None = field(default=None, repr=False)
    topic_prefix: str | None = None
    topics: tuple[str, ...] = DEFAULT_TOPICS
    group_id: str = DEFAULT_GROUP_ID
    auto_offset_reset: str = "earliest"
    dead_letter_suffix: str = ".dlq"
    dead_letter_retention_ms: int = KEEP_FOREVER
    timeout_seconds: float = 15.0

    def full_topic(self, topic: str) -> str:
        """The topic name with the prefix, joined with ``-`` as edx-event-bus-kafka does."""
        return f"{self.topic_prefix}-{topic}" if self.topic_prefix else topic

    @property
    def full_topics(self) -> tuple[str, ...]:
        """Every consumed topic, prefixed."""
        return tuple(self.full_topic(topic) for topic in self.topics)

    def dead_letter_topic(self, source_topic: str) -> str:
        """The dead-letter topic of a (prefixed) source topic."""
        return f"{source_topic}{self.dead_letter_suffix}"

    def client_config(self) -> dict[str, Any]:
        """The librdkafka settings every client of this worker shares (security, servers)."""
        config: dict[str, Any] = {"bootstrap.servers": self.bootstrap_servers}
        if self.api_key:
            config.update(
                {
                    "security.protocol": "SASL_SSL",
                    "sasl.mechanism": "PLAIN",
                    "sasl.username": self.api_key,
                    "sasl.password": self.api_secret,
                }
            )
        return config


def consumer_config(kafka: KafkaSettings, *, group_id: str) -> dict[str, Any]:
    """The engine's consumer settings: manual commits, cooperative rebalancing."""
    return {
        **kafka.client_config(),
        "group.id": group_id,
        "client.id": f"{group_id}-consumer",
        "auto.offset.reset": kafka.auto_offset_reset,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "partition.assignment.strategy": "cooperative-sticky",
        "session.timeout.ms": 45_000,
        "max.poll.interval.ms": 300_000,
        # Bound what librdkafka prefetches, so memory stays flat on any backlog.
        "queued.max.messages.kbytes": 16_384,
        "fetch.max.bytes": 8_388_608,
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class RetrySettings:
    """Backoff for transient failures: exponential with full jitter, bounded twice."""

    max_attempts: int = 6
    max_seconds: float = 300.0
    initial_seconds: float = 0.5
    max_backoff_seconds: float = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class CircuitSettings:
    """When a service counts as down, and how long to wait before probing it again."""

    failure_threshold: int = 5
    open_seconds: float = 5.0
    max_open_seconds: float = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineSettings:
    """Concurrency, buffering, commits and shutdown bounds."""

    max_in_flight: int = 64
    max_buffered: int = 2000
    commit_interval_seconds: float = 2.0
    drain_timeout_seconds: float = 30.0
    revoke_timeout_seconds: float = 30.0
    max_rate: float = 0.0  # events started per second at most; 0: no cap


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Everything the worker needs, validated.

    ``services`` is None in dry-run: nothing is called, so nothing need be configured.
    """

    kafka: KafkaSettings
    policy: Policy = field(default_factory=Policy)
    services: ServiceSettings | None = None
    engine: EngineSettings = field(default_factory=EngineSettings)
    retry: RetrySettings = field(default_factory=RetrySettings)
    circuit: CircuitSettings = field(default_factory=CircuitSettings)
    dry_run: bool = False
    dry_run_output: str | None = None
    metrics_port: int = 9100
    log_format: str = "json"
    log_level: str = "INFO"


@dataclass(frozen=True, slots=True, kw_only=True)
class ExplainSettings:
    """What ``explain`` needs: the services it reads and the policy it judges by. No Kafka.

    ``certificate_dead_letter_topics`` only names topics in the fixes the trace suggests.
    """

    policy: Policy
    services: ServiceSettings
    certificate_dead_letter_topics: tuple[str, ...]
    log_format: str = "json"
    log_level: str = "INFO"


def describe(settings: DataclassInstance) -> list[tuple[str, str]]:
    """(name, value) rows of any settings value, for ``check`` and the start-up log.

    A field holding settings of its own (``kafka``, ``policy``, ``services``...) gives its
    rows in its place; one left out (``services`` in dry-run) shows as ``None``. A field
    hidden from ``repr`` is a secret: ``***`` when set. A URL shows no user info.
    """
    rows: list[tuple[str, str]] = []
    for item in fields(settings):
        value = getattr(settings, item.name)
        if is_dataclass(value) and not isinstance(value, type):
            rows += describe(value)
        elif not item.repr:
            rows.append((item.name, "***" if value else str(value)))
        elif item.name.endswith("_url") and isinstance(value, str):
            rows.append((item.name, mask_userinfo(value)))
        else:
            rows.append((item.name, str(value)))
    return rows
