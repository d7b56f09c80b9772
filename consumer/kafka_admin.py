"""Kafka as the operator commands see it: topics, offsets, groups; errors translated once.

``replay``, ``offsets``, ``check`` and the dead-letter topic set-up ask the broker through
``KafkaAdmin`` and get plain values back. Every call is bounded by
``CONSUMER_KAFKA_TIMEOUT_SECONDS``, and every ``KafkaException`` or timeout leaves here as a
``ConsumerError`` whose ``reason`` says what to do, so the CLI prints one line and exits 1:

- ``kafka_unreachable``: no broker answered (wrong address, network, broker down);
- ``missing_topic``: a topic (or partition) does not exist;
- ``kafka_error``: the broker answered with an error (authorisation, a group in use, ...).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import ConfigResource
from confluent_kafka.admin._listoffsets import OffsetSpec
from confluent_kafka.admin._resource import ResourceType
from confluent_kafka.cimpl import NewTopic

from consumer.errors import ConsumerError
from consumer.kafka_types import TP

_UNREACHABLE = frozenset(
    {
        KafkaError._TRANSPORT,
        KafkaError._TIMED_OUT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._RESOLVE,
        KafkaError._WAIT_COORD,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
    }
)
_MISSING_TOPIC = frozenset(
    {
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._UNKNOWN_TOPIC,
        KafkaError._UNKNOWN_PARTITION,
        KafkaError._NOENT,
    }
)


@dataclass(frozen=True, slots=True)
class TopicInfo:
    """A topic's partitions and its replication factor (replicas of its first partition)."""

    name: str
    partitions: tuple[int, ...]
    replication: int


@dataclass(frozen=True, slots=True)
class Committed:
    """A group's committed offset of one partition, and the metadata committed with it."""

    offset: int
    metadata: str = ""


@dataclass(frozen=True, slots=True)
class Member:
    """One active member of a consumer group."""

    client_id: str
    host: str
    partitions: tuple[TP, ...]


@dataclass(frozen=True, slots=True)
class GroupInfo:
    """A consumer group's state (``stable``, ``empty``, ``dead`` ...) and active members."""

    group: str
    state: str
    members: tuple[Member, ...]

    @property
    def exists(self) -> bool:
        """False for a group the coordinator does not know (``dead``: never used, or expired)."""
        return self.state not in ("dead", "unknown")


class KafkaAdmin:
    """Bounded, translated admin calls. Not thread-safe; close it to serve its log lines."""

    def __init__(self, client_config: Mapping[str, Any], *, timeout: float) -> None:
        self._admin = AdminClient(dict(client_config))
        self._servers = str(client_config.get("bootstrap.servers", "?"))
        self._timeout = timeout

    def close(self) -> None:
        """Hand the client's queued log lines to the logger (librdkafka frees it on GC)."""
        self._admin.poll(0)

    def __enter__(self) -> KafkaAdmin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ topics

    def existing_topics(self, names: Iterable[str]) -> dict[str, TopicInfo]:
        """The topics of ``names`` that exist (one metadata request)."""
        try:
            metadata = self._admin.list_topics(timeout=self._timeout)
        except KafkaException as error:
            raise self._translated(error, "reading topic metadata") from error
        finally:
            self._admin.poll(0)
        found = {}
        for name in names:
            topic = metadata.topics.get(name)
            if topic is None or topic.error is not None or not topic.partitions:
                continue
            first = topic.partitions[min(topic.partitions)]
            found[name] = TopicInfo(
                name=name,
                partitions=tuple(sorted(topic.partitions)),
                replication=len(first.replicas),
            )
        return found

    def topics(self, names: Iterable[str]) -> dict[str, TopicInfo]:
        """Every topic of ``names``; ``missing_topic`` names those that do not exist."""
        wanted = list(dict.fromkeys(names))
        found = self.existing_topics(wanted)
        missing = [name for name in wanted if name not in found]
        if missing:
            raise ConsumerError(
                f"topic {', '.join(missing)} does not exist "
                "(check CONSUMER_TOPICS and EVENT_BUS_TOPIC_PREFIX)",
                reason="missing_topic",
            )
        return found

    def create_topics(self, topics: list[NewTopic]) -> dict[str, KafkaError | None]:
        """Create ``topics``; per name, None when created, else the broker's error."""
        if not topics:
            return {}
        futures = self._admin.create_topics(
            topics, request_timeout=self._timeout, operation_timeout=self._timeout
        )
        results: dict[str, KafkaError | None] = {}
        for name, future in futures.items():
            try:
                self._wait(future, f"creating topic {name}")
                results[name] = None
            except KafkaException as error:
                results[name] = _kafka_error(error)
        self._admin.poll(0)
        return results

    def topic_configs(self, names: Iterable[str]) -> dict[str, dict[str, str]]:
        """Each topic's effective configuration (``retention.ms`` ...), as text."""
        resources = [ConfigResource(ResourceType.TOPIC, name) for name in names]
        if not resources:
            return {}
        futures = self._admin.describe_configs(resources, request_timeout=self._timeout)
        configs = {}
        for resource, future in futures.items():
            entries = self._result(future, f"reading the configuration of {resource.name}")
            configs[resource.name] = {
                key: str(entry.value) for key, entry in entries.items() if entry.value is not None
            }
        return configs

    # ------------------------------------------------------------------ offsets

    def watermarks(self, tps: Iterable[TP]) -> dict[TP, tuple[int, int]]:
        """(low, high) of each partition: its first offset and one past its last."""
        wanted = list(tps)
        low = self._list_offsets(wanted, OffsetSpec.earliest())  # type: ignore[no-untyped-call]
        high = self._list_offsets(wanted, OffsetSpec.latest())  # type: ignore[no-untyped-call]
        return {tp: (low[tp], high[tp]) for tp in wanted}

    def offsets_for_time(self, tps: Iterable[TP], timestamp_ms: int) -> dict[TP, int | None]:
        """Per partition, the first offset whose timestamp is at or after ``timestamp_ms``.

        None when every record is older (kafka-consumer-groups then takes the end).
        """
        found = self._list_offsets(list(tps), OffsetSpec.for_timestamp(timestamp_ms))
        return {tp: offset if offset >= 0 else None for tp, offset in found.items()}

    def _list_offsets(self, tps: list[TP], spec: OffsetSpec) -> dict[TP, int]:
        if not tps:
            return {}
        futures = self._admin.list_offsets(
            {TopicPartition(topic, partition): spec for topic, partition in tps},
            request_timeout=self._timeout,
        )
        offsets = {}
        for tp, future in futures.items():
            info = self._result(future, f"listing offsets of {tp.topic}:{tp.partition}")
            offsets[(tp.topic, tp.partition)] = int(info.offset)
        return offsets

    # ------------------------------------------------------------------ groups

    def committed(self, group: str) -> dict[TP, Committed]:
        """The group's committed offsets (partitions without one are left out)."""
        futures = self._admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group)], request_timeout=self._timeout
        )
        result = self._result(futures[group], f"reading the offsets of group {group}")
        return {
            (tp.topic, tp.partition): Committed(offset=tp.offset, metadata=tp.metadata or "")
            for tp in result.topic_partitions or []
            if tp.offset >= 0
        }

    def group(self, group: str) -> GroupInfo:
        """The group's state and active members."""
        futures = self._admin.describe_consumer_groups([group], request_timeout=self._timeout)
        described = self._result(futures[group], f"describing group {group}")
        members = tuple(
            Member(
                client_id=member.client_id or "",
                host=member.host or "",
                partitions=tuple(
                    sorted(
                        (tp.topic, tp.partition)
                        for tp in (member.assignment.topic_partitions if member.assignment else [])
                    )
                ),
            )
            for member in described.members or []
        )
        state = getattr(described.state, "name", str(described.state)).lower()
        return GroupInfo(group=group, state=state, members=members)

    def alter_offsets(self, group: str, offsets: Mapping[TP, tuple[int, str | None]]) -> None:
        """Set the group's committed offsets (with metadata); the broker refuses an active group."""
        request = ConsumerGroupTopicPartitions(
            group,
            [
                TopicPartition(topic, partition, offset, metadata or "")
                for (topic, partition), (offset, metadata) in sorted(offsets.items())
            ],
        )
        futures = self._admin.alter_consumer_group_offsets([request], request_timeout=self._timeout)
        result = self._result(futures[group], f"committing offsets of group {group}")
        refused = [tp for tp in result.topic_partitions or [] if tp.error is not None]
        if refused:
            raise self._translated(
                KafkaException(refused[0].error), f"committing offsets of group {group}"
            )

    # ------------------------------------------------------------------ errors

    def _result(self, future: concurrent.futures.Future[Any], what: str) -> Any:  # noqa: ANN401 - each admin call has its own result type
        try:
            return self._wait(future, what)
        except KafkaException as error:
            raise self._translated(error, what) from None
        finally:
            self._admin.poll(0)

    def _wait(self, future: concurrent.futures.Future[Any], what: str) -> Any:  # noqa: ANN401 - as above
        """The future's result; its ``KafkaException`` as raised; a timeout translated."""
        try:
            return future.result(timeout=self._timeout + 5)
        except concurrent.futures.TimeoutError:
            raise ConsumerError(
                f"Kafka did not answer within {self._timeout:g}s at {self._servers} ({what})",
                reason="kafka_unreachable",
            ) from None

    def _translated(self, error: KafkaException, what: str) -> ConsumerError:
        kafka_error = _kafka_error(error)
        code = kafka_error.code()
        if code in _UNREACHABLE:
            return ConsumerError(
                f"Kafka cannot be reached at {self._servers} ({what}: {kafka_error.str()}); "
                "check EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS and the network",
                reason="kafka_unreachable",
            )
        if code in _MISSING_TOPIC:
            return ConsumerError(f"{what}: the topic does not exist", reason="missing_topic")
        return ConsumerError(f"{what}: {kafka_error.str()}", reason="kafka_error")


def _kafka_error(error: KafkaException) -> KafkaError:
    first = error.args[0] if error.args else None
    return first if isinstance(first, KafkaError) else KafkaError(KafkaError._FAIL, str(error))
