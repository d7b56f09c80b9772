"""Decoding events exactly as the LMS and Studio publish them, on the real broker and registry."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.schema_registry import (
    SchemaRegistryClient,
    topic_record_subject_name_strategy,
)
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

import consumer
from consumer.events import CatalogInfoChanged, CertificateEvent, EventType
from consumer.wire import (
    Decoder,
    LocalWriterSchemas,
    Record,
    load_reader_schemas,
)
from tests.integration.conftest import Stack
from tests.support.kafka import produce_raw, read_records
from tests.support.lms import LmsProducer, catalog_data, certificate_data
from tests.support.poison import EXPECTED, poison_variants

pytestmark = pytest.mark.integration

COURSE = "course-v1:edX+DemoX+2026_T1"
WHEN = datetime(2026, 11, 2, 9, 30, 15, 123456, tzinfo=UTC)


def _publish_one(
    lms: LmsProducer, stack: Stack, topic: str, event_type: str, data: dict[str, Any]
) -> tuple[str, Record]:
    event_id = lms.send(event_type, data, topic, time=WHEN)
    lms.flush()
    (record,) = read_records(stack.bootstrap_servers, topic, 1)
    return event_id, record


@pytest.mark.parametrize(
    ("event_type", "status", "previous"),
    [
        (EventType.CERTIFICATE_CREATED, "downloadable", ""),
        (EventType.CERTIFICATE_CHANGED, "downloadable", "notpassing"),
        (EventType.CERTIFICATE_REVOKED, "notpassing", "downloadable"),
    ],
    ids=["created", "changed", "revoked"],
)
def test_certificate_events_decode_field_by_field(
    lms: LmsProducer,
    stack: Stack,
    topic: str,
    decoder: Decoder,
    event_type: EventType,
    status: str,
    previous: str,
) -> None:
    """A certificate event published by edx-event-bus-kafka decodes field by field."""
    data = certificate_data(
        user_id=4242,
        username="ada",
        course_key=COURSE,
        mode="verified",
        status=status,
        previous_status=previous,
    )
    event_id, record = _publish_one(lms, stack, topic, event_type, data)

    event = decoder.decode(record)

    assert isinstance(event, CertificateEvent)
    assert event.meta.id == event_id
    assert event.meta.type is event_type
    assert event.meta.source == "openedx/lms/web"
    assert event.meta.time == WHEN
    assert event.learner.user_id == 4242
    assert event.learner.username == "ada"
    assert event.learner.is_active is True
    assert str(event.course_key) == COURSE
    assert event.course_key.org == "edX"
    assert event.mode == "verified"
    assert event.status == status
    assert event.previous_status == (previous or None)
    assert record.key is not None
    assert record.key.endswith(COURSE.encode())  # the LMS keys by course, Avro-framed


def test_catalog_event_decodes_field_by_field(
    lms: LmsProducer, stack: Stack, topic: str, decoder: Decoder
) -> None:
    """A catalog-info event published as Studio does decodes into the typed event, every field."""
    data = catalog_data(
        course_key=COURSE, pacing="self", start="2026-01-05T00:00:00+00:00", end=None, name="Demo"
    )
    data["catalog_info"]["schedule_data"]["enrollment_start"] = "2025-12-01T08:00:00"
    data["catalog_info"]["hidden"] = True
    event_id, record = _publish_one(lms, stack, topic, EventType.CATALOG_INFO_CHANGED, data)

    event = decoder.decode(record)

    assert isinstance(event, CatalogInfoChanged)
    assert event.meta.id == event_id
    assert event.meta.type is EventType.CATALOG_INFO_CHANGED
    assert str(event.course_key) == COURSE
    assert event.name == "Demo"
    assert event.pacing == "self"
    assert event.start == datetime(2026, 1, 5, tzinfo=UTC)
    assert event.end is None
    assert event.enrollment_start == datetime(2025, 12, 1, 8, tzinfo=UTC)
    assert event.enrollment_end is None
    assert event.hidden is True
    assert event.invitation_only is False


def test_without_a_registry_the_local_schemas_decode_lms_records(
    lms: LmsProducer, stack: Stack, topic: str
) -> None:
    """With no registry configured, records written with the current schemas still decode."""
    _, record = _publish_one(
        lms,
        stack,
        topic,
        EventType.CERTIFICATE_CREATED,
        certificate_data(user_id=9, course_key=COURSE),
    )
    event = Decoder(LocalWriterSchemas(), load_reader_schemas()).decode(record)
    assert isinstance(event, CertificateEvent)
    assert event.learner.user_id == 9


def _evolved_writer_schema() -> dict[str, Any]:
    """The created-event schema as a newer producer might write it: one more defaulted field."""
    path = Path(consumer.__file__).parent / "schemas" / f"{EventType.CERTIFICATE_CREATED}.avsc"
    schema: dict[str, Any] = json.loads(path.read_text())
    certificate = schema["fields"][0]["type"]
    certificate["fields"].append({"name": "source_system", "type": "string", "default": "lms"})
    return schema


def test_a_writer_with_an_added_field_still_decodes(
    stack: Stack, topic: str, decoder: Decoder
) -> None:
    """Schema resolution: a newer producer's extra field is dropped, the rest decodes."""
    schema = _evolved_writer_schema()
    data = certificate_data(user_id=77, course_key=COURSE)
    data["certificate"]["source_system"] = "lms-next"
    with SchemaRegistryClient({"url": stack.registry_url, "timeout": 20}) as client:
        # An explicit strategy, as the LMS's producer has: the default would first query the
        # registry's "associations" API, which Apicurio does not implement.
        serializer = AvroSerializer(
            client,
            json.dumps(schema),
            conf={"subject.name.strategy": topic_record_subject_name_strategy},
        )
        value = serializer(data, SerializationContext(topic, MessageField.VALUE))
    produce_raw(
        stack.bootstrap_servers,
        topic,
        value,
        headers=[("ce_type", EventType.CERTIFICATE_CREATED.encode()), ("ce_id", b"evolved-1")],
    )
    (record,) = read_records(stack.bootstrap_servers, topic, 1)

    event = decoder.decode(record)

    assert isinstance(event, CertificateEvent)
    assert event.learner.user_id == 77
    assert event.meta.id == "evolved-1"


# ----------------------------------------------------------------------------- poison


@pytest.fixture
def good(lms: LmsProducer, stack: Stack, topic: str) -> Record:
    """One well-formed record, the template the poison variants are made from."""
    _, record = _publish_one(
        lms,
        stack,
        topic,
        EventType.CERTIFICATE_CREATED,
        certificate_data(user_id=5, course_key=COURSE),
    )
    return record


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_poison_on_a_real_topic_raises_a_typed_error_naming_the_reason(
    stack: Stack, good: Record, decoder: Decoder, kind: str
) -> None:
    """Each kind of poison record, read back from the broker, raises its own error and reason."""
    poison_topic = stack.create_topic(f"{good.topic}-poison-{kind}", partitions=1)
    value, headers = poison_variants(good)[kind]
    produce_raw(stack.bootstrap_servers, poison_topic, value, headers=headers)
    (record,) = read_records(stack.bootstrap_servers, poison_topic, 1)

    with pytest.raises(EXPECTED[kind]) as caught:
        decoder.decode(record)

    assert caught.value.reason == kind
    assert "ada" not in str(caught.value)
    assert "learner5" not in str(caught.value)  # no username in the error text
