"""Produce a workload with the bytes the LMS would write, fast enough for a million events.

Each record goes through the very serializers the LMS's producer uses: edx-event-bus-kafka's
``get_serializers`` (openedx-events' ``AvroSignalSerializer`` under confluent-kafka's
``AvroSerializer`` with ``topic_record_subject_name_strategy``, schemas registered in the
registry) and its ``_get_headers_from_metadata`` for the CloudEvent headers; the event data
is built from the Avro-shaped dict by openedx-events' own deserializer, as
``tests.support.lms`` does. What is skipped is only per-record overhead of the producer
wrapper that does not change a byte: its JSON copy of the event for error logs, a delivery
context object per record, a ``poll`` per record. The key (the course key, Avro-encoded and
framed) depends only on the course, so it is serialized once per course run.

Records go out through one confluent-kafka producer with batching, keyed as the LMS keys
them, with the default partitioner (the LMS's), so the partition layout is the LMS's too.
"""

from __future__ import annotations

import time as clock
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from django.conf import settings

from bench.workload import CertificateSpec, Spec
from tests.support.lms import KEY_FIELDS, catalog_data, certificate_data, configure_django

Headers = dict[str, str | bytes | None]
Encoded = tuple[bytes, bytes, Headers]


class LmsEncoder:
    """Turns specs into (key, value, headers) exactly as the LMS's producer would."""

    def __init__(self, bootstrap_servers: str, registry_url: str, topic: str) -> None:
        configure_django()
        settings.EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS = bootstrap_servers
        settings.EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL = registry_url
        # These modules read Django settings when imported.
        from confluent_kafka.serialization import (  # noqa: PLC0415
            MessageField,
            SerializationContext,
        )
        from edx_event_bus_kafka.internal.producer import (  # noqa: PLC0415
            extract_event_key,
            get_serializers,
        )
        from edx_event_bus_kafka.internal.utils import (  # noqa: PLC0415
            _get_headers_from_metadata,
        )
        from openedx_events.data import EventsMetadata  # noqa: PLC0415
        from openedx_events.event_bus.avro.deserializer import (  # noqa: PLC0415
            AvroSignalDeserializer,
        )
        from openedx_events.tooling import OpenEdxPublicSignal, load_all_signals  # noqa: PLC0415

        load_all_signals()
        self.topic = topic
        self._metadata = EventsMetadata
        self._headers = _get_headers_from_metadata
        self._extract_key = extract_event_key
        self._context: Callable[..., Any] = SerializationContext
        self._key_field, self._value_field = MessageField.KEY, MessageField.VALUE
        self._signals: dict[str, Any] = {}
        self._deserializers: dict[str, Any] = {}
        self._serializers: dict[str, tuple[Any, Any]] = {}
        self._keys: dict[tuple[str, str], bytes] = {}
        self._signal_type = OpenEdxPublicSignal
        self._deserializer_type = AvroSignalDeserializer
        self._get_serializers = get_serializers

    def _for(self, event_type: str, field: str) -> tuple[Any, Any, Any]:
        if event_type not in self._signals:
            signal = self._signal_type.get_signal_by_type(event_type)
            self._signals[event_type] = signal
            self._deserializers[event_type] = self._deserializer_type(signal)
            self._serializers[event_type] = self._get_serializers(signal, KEY_FIELDS[field])
        return (
            self._deserializers[event_type],
            *self._serializers[event_type],
        )

    def encode(
        self, spec: Spec, *, event_id: uuid.UUID | None = None, time: datetime | None = None
    ) -> Encoded:
        """The record of ``spec``: key bytes, value bytes, CloudEvent headers.

        ``event_id`` and ``time`` (``ce_id``, ``ce_time``) default to a new UUID1 and now,
        as the LMS sets them.
        """
        field, data = spec_data(spec)
        deserializer, key_serializer, value_serializer = self._for(spec.event_type, field)
        event_data = deserializer.from_dict(data)
        metadata = self._metadata(
            event_type=spec.event_type,
            id=event_id or uuid.uuid1(),
            minorversion=0,
            source="openedx/lms/web",
            sourcehost="lms.test",
            time=time or datetime.now(UTC),
        )
        headers: Headers = self._headers(event_metadata=metadata)
        cache_key = (spec.event_type, spec.course_run)
        key = self._keys.get(cache_key)
        if key is None:
            event_key = self._extract_key(event_data, KEY_FIELDS[field])
            key = key_serializer(event_key, self._context(self.topic, self._key_field, headers))
            self._keys[cache_key] = key
        value = value_serializer(event_data, self._context(self.topic, self._value_field, headers))
        return key, value, headers


def spec_data(spec: Spec) -> tuple[str, dict[str, Any]]:
    """The signal's field and the Avro-shaped event data of ``spec`` (``tests.support.lms``)."""
    if isinstance(spec, CertificateSpec):
        data = certificate_data(
            user_id=spec.user_id,
            course_key=spec.course_run,
            mode=spec.mode,
            status=spec.status,
            previous_status="" if spec.status == "downloadable" else "downloadable",
        )
        return "certificate", data
    return "catalog_info", catalog_data(
        course_key=spec.course_run,
        pacing=spec.pacing,
        end=spec.end,
        name=f"Course {spec.course_run}",
    )


def create_topic(bootstrap_servers: str, topic: str, partitions: int) -> None:
    """Create ``topic`` with ``partitions`` partitions (replication 1: the local broker)."""
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1)]
    )
    futures[topic].result(30)


def delete_topics(bootstrap_servers: str, topics: Iterable[str]) -> None:
    """Delete the benchmark's topics (best effort: the run's figures are already taken)."""
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    existing = admin.list_topics(timeout=30).topics
    names = [name for name in topics if name in existing]
    if not names:
        return
    for future in admin.delete_topics(names).values():
        try:
            future.result(30)
        except Exception as error:  # noqa: BLE001 - cleanup must not hide the results
            print(f"bench: could not delete a topic: {error}")


def produce(
    bootstrap_servers: str,
    registry_url: str,
    topic: str,
    specs: Iterable[Spec],
    *,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Encode and produce every spec to ``topic``; wait for every acknowledgement."""
    encoder = LmsEncoder(bootstrap_servers, registry_url, topic)
    producer = Producer(
        {
            "bootstrap.servers": bootstrap_servers,
            "linger.ms": 50,
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 200_000,
        }
    )
    errors: list[str] = []

    def delivered(error: Any, _message: Any) -> None:  # noqa: ANN401 - confluent's types
        if error is not None:
            errors.append(str(error))

    count = 0
    for spec in specs:
        key, value, headers = encoder.encode(spec)
        while True:
            try:
                producer.produce(
                    topic, key=key, value=value, headers=headers, on_delivery=delivered
                )
                break
            except BufferError:
                producer.poll(0.05)
        count += 1
        if count % 10_000 == 0:
            producer.poll(0)
            if progress is not None:
                progress(count)
    deadline = clock.monotonic() + 120
    while producer.flush(5) and clock.monotonic() < deadline:
        pass
    if errors or len(producer):
        raise RuntimeError(f"producing to {topic} failed: {errors[:3] or len(producer)}")
    return count
