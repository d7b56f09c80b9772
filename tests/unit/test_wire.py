"""From Kafka bytes to events: framing, schema resolution, every poison kind, the registry seam."""

from __future__ import annotations

import copy
import io
import json
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast

import fastavro
import pytest
from confluent_kafka import Message
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from hypothesis import given, settings
from hypothesis import strategies as st

from consumer.errors import (
    AvroDecodeError,
    DecodeError,
    FramingError,
    HeaderError,
    InvalidEventError,
    InvalidWriterSchemaError,
    RegistryUnavailableError,
    TransientError,
    UnknownEventTypeError,
    UnknownSchemaError,
)
from consumer.events import CatalogInfoChanged, CertificateEvent, EventType
from consumer.wire import (
    Decoder,
    LocalWriterSchemas,
    ParsedSchema,
    Record,
    RegistryWriterSchemas,
    event_meta,
    load_reader_schemas,
    split_frame,
)
from tests.support.hostile import (
    CRASH_SCHEMAS,
    HANG_BODY,
    HANG_SCHEMA,
    LINKED_LIST_BODY,
    LINKED_LIST_SCHEMA,
    varint,
    with_extra_first_field,
)
from tests.support.watchdog import Outcome, run_bounded

try:  # as consumer/wire.py: the registry client talks through httpx2 when installed
    import httpx2 as httpx
except ImportError:  # pragma: no cover - depends on what confluent-kafka pulled in
    import httpx  # type: ignore[no-redef,import-not-found,unused-ignore]

SCHEMAS = Path(__file__).resolve().parents[2] / "consumer" / "schemas"
READERS = load_reader_schemas()
CREATED = EventType.CERTIFICATE_CREATED
CATALOG = EventType.CATALOG_INFO_CHANGED
RUN = "course-v1:OrgX+DemoX+1T2024"
SCHEMA_ID = 42


def certificate(**changes: Any) -> dict[str, Any]:
    """A ``certificate`` record as the LMS fills it; ``changes`` override certificate fields."""
    data: dict[str, Any] = {
        "user": {
            "id": 7,
            "is_active": True,
            "pii": {"username": "learner7", "email": "l7@example.com", "name": "Lea Rner"},
        },
        "course": {"course_key": RUN, "display_name": "Demo", "start": None, "end": None},
        "mode": "verified",
        "grade": "0.91",
        "download_url": "",
        "name": "Lea Rner",
        "current_status": "downloadable",
        "previous_status": "notpassing",
    }
    data.update(changes)
    return {"certificate": data}


def catalog(**schedule: Any) -> dict[str, Any]:
    """A ``catalog_info`` record as Studio fills it; ``schedule`` overrides schedule fields."""
    schedule_data: dict[str, Any] = {
        "start": "2024-01-08T00:00:00+00:00",
        "pacing": "instructor",
        "end": "2024-06-30T12:00:00+00:00",
        "enrollment_start": None,
        "enrollment_end": None,
    }
    schedule_data.update(schedule)
    return {
        "catalog_info": {
            "course_key": RUN,
            "name": "Demo course",
            "schedule_data": schedule_data,
            "hidden": False,
            "invitation_only": True,
        }
    }


def avro(schema: ParsedSchema, data: Mapping[str, Any]) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema, data)
    return buffer.getvalue()


def frame(body: bytes, schema_id: int = SCHEMA_ID, magic: int = 0) -> bytes:
    """Confluent framing: magic byte, 4-byte big-endian schema id, Avro body."""
    return bytes([magic]) + schema_id.to_bytes(4, "big") + body


def record(
    value: bytes | None,
    event_type: str = CREATED,
    *,
    headers: tuple[tuple[str, bytes], ...] | None = None,
) -> Record:
    if headers is None:
        headers = (("ce_type", event_type.encode()), ("ce_id", b"ce-1"))
    return Record(topic="t", partition=0, offset=5, key=None, value=value, headers=headers)


def valid(event_type: EventType = CREATED) -> bytes:
    data = catalog() if event_type is CATALOG else certificate()
    return frame(avro(READERS[event_type], data))


class FixedWriter:
    """WriterSchemas that answers every id with one writer schema and records the ids asked."""

    def __init__(self, writer: ParsedSchema | None = None) -> None:
        self.writer = writer
        self.asked: list[int] = []

    def get(self, schema_id: int) -> ParsedSchema | None:
        self.asked.append(schema_id)
        return self.writer


class NoSuchSchema:
    """WriterSchemas for a registry that does not know the id."""

    def get(self, schema_id: int) -> ParsedSchema | None:
        raise UnknownSchemaError(f"schema id {schema_id} is not in the registry")


def local_decoder() -> Decoder:
    return Decoder(LocalWriterSchemas(), READERS)


def writer_schema(event_type: EventType) -> dict[str, Any]:
    """The JSON of a packaged reader schema, to derive a different writer schema from."""
    schema = json.loads((SCHEMAS / f"{event_type}.avsc").read_text())
    assert isinstance(schema, dict)
    return schema


def record_fields(schema: dict[str, Any], *path: str) -> list[dict[str, Any]]:
    """The field list of the nested record reached through the field names in ``path``."""
    fields: list[dict[str, Any]] = schema["fields"]
    for name in path:
        (field,) = (f for f in fields if f["name"] == name)
        fields = field["type"]["fields"]
    return fields


# ---------------------------------------------------------------------------- decoding


@pytest.mark.parametrize("event_type", list(EventType), ids=str)
def test_each_event_type_decodes_with_the_packaged_reader_schema(event_type: EventType) -> None:
    """A well-formed record of each consumed type decodes into its typed event."""
    event = local_decoder().decode(record(valid(event_type), event_type))
    assert event.meta.type is event_type
    assert event.meta.id == "ce-1"
    expected = CatalogInfoChanged if event_type is CATALOG else CertificateEvent
    assert isinstance(event, expected)
    assert str(event.course_key) == RUN


def test_certificate_values_survive_the_round_trip() -> None:
    """The decoded certificate event carries the values the producer wrote."""
    event = local_decoder().decode(record(valid(CREATED)))
    assert isinstance(event, CertificateEvent)
    assert (event.learner.user_id, event.learner.username, event.learner.is_active) == (
        7,
        "learner7",
        True,
    )
    assert (event.mode, event.status, event.previous_status) == (
        "verified",
        "downloadable",
        "notpassing",
    )


def test_cloud_event_headers_become_the_meta() -> None:
    """ce_id, ce_type, ce_source and ce_time headers are read into EventMeta."""
    headers = (
        ("ce_type", CREATED.encode()),
        ("ce_id", b"0b7e-11ee"),
        ("ce_source", b"openedx/lms/web"),
        ("ce_time", b"2024-03-01T10:00:00.123456+00:00"),
    )
    meta = event_meta(record(valid(), headers=headers))
    assert meta.id == "0b7e-11ee"
    assert meta.type is CREATED
    assert meta.source == "openedx/lms/web"
    assert meta.time == datetime(2024, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ce_time", "expected"),
    [
        pytest.param(None, None, id="absent"),
        pytest.param(b"", None, id="empty"),
        pytest.param(b"yesterday", None, id="unparseable: not poison, just unknown"),
        pytest.param(
            b"2024-03-01T10:00:00", datetime(2024, 3, 1, 10, tzinfo=UTC), id="naive is UTC"
        ),
        pytest.param(
            b"2024-03-01T12:00:00+02:00",
            datetime(2024, 3, 1, 12, tzinfo=timezone(timedelta(hours=2))),
            id="offset kept",
        ),
    ],
)
def test_ce_time_is_metadata_only(ce_time: bytes | None, expected: datetime | None) -> None:
    """A missing or unparseable ce_time leaves time None instead of poisoning the event."""
    headers: tuple[tuple[str, bytes], ...] = (("ce_type", CREATED.encode()), ("ce_id", b"x"))
    if ce_time is not None:
        headers += (("ce_time", ce_time),)
    event = local_decoder().decode(record(valid(), headers=headers))
    assert event.meta.time == expected


def test_split_frame_reads_the_big_endian_schema_id() -> None:
    """The 4 bytes after the magic byte are the schema id, big-endian; the rest is the body."""
    assert split_frame(b"\x00\x01\x02\x03\x04body") == (0x01020304, b"body")


def test_decoder_asks_for_the_framed_schema_id() -> None:
    """The decoder looks up the writer schema by the id in the frame."""
    writers = FixedWriter()
    Decoder(writers, READERS).decode(record(frame(avro(READERS[CREATED], certificate()), 99)))
    assert writers.asked == [99]


# ---------------------------------------------------------------------------- schema resolution


def test_writer_with_an_extra_field_resolves_against_the_reader() -> None:
    """A writer schema with a field the reader lacks still decodes; the extra field is dropped."""
    schema = writer_schema(CREATED)
    record_fields(schema, "certificate").append(
        {"name": "certificate_uuid", "type": "string", "default": ""}
    )
    writer = fastavro.parse_schema(schema)
    data = certificate(certificate_uuid="c0ffee")
    value = frame(avro(writer, data))
    event = Decoder(FixedWriter(writer), READERS).decode(record(value))
    assert isinstance(event, CertificateEvent)
    assert event.status == "downloadable"
    assert event.learner.user_id == 7
    with pytest.raises(AvroDecodeError):  # the documented limit without a registry
        local_decoder().decode(record(value))


def test_writer_without_a_defaulted_field_gets_the_reader_default() -> None:
    """A writer lacking a field the reader defaults decodes; the field takes the default."""
    schema = writer_schema(CATALOG)
    schedule = record_fields(schema, "catalog_info", "schedule_data")
    schedule[:] = [field for field in schedule if field["name"] != "end"]
    writer = fastavro.parse_schema(schema)
    data = catalog()
    del data["catalog_info"]["schedule_data"]["end"]
    value = frame(avro(writer, data))
    event = Decoder(FixedWriter(writer), READERS).decode(record(value, CATALOG))
    assert isinstance(event, CatalogInfoChanged)
    assert event.end is None
    assert event.start == datetime(2024, 1, 8, tzinfo=UTC)
    assert event.invitation_only is True
    with pytest.raises(AvroDecodeError):  # the documented limit without a registry
        local_decoder().decode(record(value, CATALOG))


def test_incompatible_writer_schema_is_poison() -> None:
    """A writer whose field type cannot resolve to the reader's is an AvroDecodeError."""
    schema = writer_schema(CREATED)
    user = record_fields(schema, "certificate", "user")
    user[0] = {"name": "id", "type": "string"}  # the reader wants a long
    writer = fastavro.parse_schema(schema)
    data = certificate()
    data["certificate"]["user"]["id"] = "seven"
    with pytest.raises(AvroDecodeError) as caught:
        Decoder(FixedWriter(writer), READERS).decode(record(frame(avro(writer, data))))
    assert caught.value.reason == "undecodable_avro"


# ---------------------------------------------------------------------------- poison


def _certificate_value(**changes: Any) -> bytes:
    return frame(avro(READERS[CREATED], certificate(**changes)))


def _catalog_value(**schedule: Any) -> bytes:
    return frame(avro(READERS[CATALOG], catalog(**schedule)))


def _catalog_with_course_key(course_key: str) -> bytes:
    data = catalog()
    data["catalog_info"]["course_key"] = course_key
    return frame(avro(READERS[CATALOG], data))


GOOD_HEADERS = (("ce_type", CREATED.encode()), ("ce_id", b"ce-1"))


@pytest.mark.parametrize(
    ("value", "headers", "error", "reason"),
    [
        pytest.param(
            b"\x01" + valid()[1:], GOOD_HEADERS, FramingError, "bad_magic_byte", id="bad magic"
        ),
        pytest.param(b"\x00\x00\x00\x2a", GOOD_HEADERS, FramingError, "bad_framing", id="short"),
        pytest.param(b"\x00", GOOD_HEADERS, FramingError, "bad_framing", id="magic byte only"),
        pytest.param(b"", GOOD_HEADERS, FramingError, "empty_value", id="empty value"),
        pytest.param(None, GOOD_HEADERS, FramingError, "empty_value", id="null value"),
        pytest.param(
            valid()[:-3], GOOD_HEADERS, AvroDecodeError, "undecodable_avro", id="truncated avro"
        ),
        pytest.param(
            frame(b""), GOOD_HEADERS, AvroDecodeError, "undecodable_avro", id="frame, no body"
        ),
        pytest.param(
            frame(b"\xff" * 40),
            GOOD_HEADERS,
            AvroDecodeError,
            "undecodable_avro",
            id="garbage avro",
        ),
        pytest.param(
            valid() + b"\x00\x01",
            GOOD_HEADERS,
            AvroDecodeError,
            "trailing_bytes",
            id="trailing bytes",
        ),
        pytest.param(
            valid(), (("ce_id", b"ce-1"),), HeaderError, "missing_ce_type", id="missing ce_type"
        ),
        pytest.param(
            valid(),
            (("ce_type", b""), ("ce_id", b"ce-1")),
            HeaderError,
            "missing_ce_type",
            id="empty ce_type",
        ),
        pytest.param(
            valid(),
            (("ce_type", CREATED.encode()), ("ce_type", CREATED.encode()), ("ce_id", b"1")),
            HeaderError,
            "duplicate_ce_type",
            id="duplicate ce_type",
        ),
        pytest.param(
            valid(),
            (("ce_type", b"\xff\xfe"), ("ce_id", b"ce-1")),
            HeaderError,
            "bad_ce_type",
            id="ce_type not UTF-8",
        ),
        pytest.param(
            valid(),
            (("ce_type", b"org.openedx.learning.course.enrollment.created.v1"), ("ce_id", b"1")),
            UnknownEventTypeError,
            "unknown_event_type",
            id="unknown ce_type",
        ),
        pytest.param(
            valid(),
            (("ce_type", CREATED.encode()),),
            HeaderError,
            "missing_ce_id",
            id="missing ce_id",
        ),
        pytest.param(
            valid(),
            (("ce_type", CREATED.encode()), ("ce_id", b"")),
            HeaderError,
            "missing_ce_id",
            id="empty ce_id",
        ),
        pytest.param(
            valid(),
            (("ce_type", CREATED.encode()), ("ce_id", b"1"), ("ce_id", b"2")),
            HeaderError,
            "duplicate_ce_id",
            id="duplicate ce_id",
        ),
        pytest.param(
            _certificate_value(course={"course_key": "not a course key", "display_name": ""}),
            GOOD_HEADERS,
            InvalidEventError,
            "invalid_event",
            id="invalid course key (certificate)",
        ),
        pytest.param(
            _catalog_with_course_key("block-v1:OrgX+DemoX+1T2024+type@problem+block@p1"),
            (("ce_type", CATALOG.encode()), ("ce_id", b"ce-1")),
            InvalidEventError,
            "invalid_event",
            id="invalid course key (catalog: a usage key)",
        ),
        pytest.param(
            _catalog_value(pacing="weekly"),
            (("ce_type", CATALOG.encode()), ("ce_id", b"ce-1")),
            InvalidEventError,
            "invalid_event",
            id="bad pacing",
        ),
        pytest.param(
            _catalog_value(start="next tuesday"),
            (("ce_type", CATALOG.encode()), ("ce_id", b"ce-1")),
            InvalidEventError,
            "invalid_event",
            id="unparseable start date",
        ),
        pytest.param(
            _catalog_value(start=""),
            (("ce_type", CATALOG.encode()), ("ce_id", b"ce-1")),
            InvalidEventError,
            "invalid_event",
            id="empty start date",
        ),
        pytest.param(
            _catalog_value(end="31/12/2024"),
            (("ce_type", CATALOG.encode()), ("ce_id", b"ce-1")),
            InvalidEventError,
            "invalid_event",
            id="unparseable end date",
        ),
        pytest.param(
            _certificate_value(current_status=""),
            GOOD_HEADERS,
            InvalidEventError,
            "invalid_event",
            id="empty certificate status",
        ),
    ],
)
def test_poison_raises_its_exact_error_and_reason(
    value: bytes | None,
    headers: tuple[tuple[str, bytes], ...],
    error: type[DecodeError],
    reason: str,
) -> None:
    """Each kind of poison input raises exactly its DecodeError subclass with its reason."""
    with pytest.raises(DecodeError) as caught:
        local_decoder().decode(record(value, headers=headers))
    assert type(caught.value) is error
    assert caught.value.reason == reason


def test_unknown_schema_id_is_poison() -> None:
    """A schema id the registry does not know raises UnknownSchemaError (dead letter at once)."""
    with pytest.raises(UnknownSchemaError) as caught:
        Decoder(NoSuchSchema(), READERS).decode(record(valid()))
    assert type(caught.value) is UnknownSchemaError
    assert caught.value.reason == "unknown_schema_id"


def test_headers_are_checked_before_the_value() -> None:
    """A record with both a bad ce_type and a bad frame is reported for its header."""
    with pytest.raises(HeaderError):
        local_decoder().decode(record(b"\x07garbage", headers=(("ce_id", b"1"),)))


@pytest.mark.parametrize(
    ("body_of", "labelled"),
    [(CATALOG, CREATED), (CREATED, CATALOG)],
    ids=["catalog body as certificate", "certificate body as catalog"],
)
def test_body_of_another_event_type_is_poison(body_of: EventType, labelled: EventType) -> None:
    """A body labelled with the wrong family of ce_type does not decode (never mis-typed)."""
    with pytest.raises(DecodeError) as caught:
        local_decoder().decode(record(valid(body_of), labelled))
    assert type(caught.value) is AvroDecodeError
    assert caught.value.reason == "undecodable_avro"


@settings(max_examples=300)
@given(st.sampled_from(list(EventType)), st.binary(max_size=200))
def test_property_any_body_decodes_or_raises_avro_decode_error(
    event_type: EventType, body: bytes
) -> None:
    """Arbitrary bytes after a valid frame header never raise anything but AvroDecodeError."""
    try:
        data = local_decoder().decode_value(frame(body), event_type)
    except AvroDecodeError:
        return
    assert isinstance(data, Mapping)


@settings(max_examples=200)
@given(st.data())
def test_property_mutated_records_never_escape_the_error_tree(data: st.DataObject) -> None:
    """Flipping, dropping or inserting bytes of a valid record yields an event or a DecodeError."""
    event_type = data.draw(st.sampled_from(list(EventType)))
    value = bytearray(valid(event_type))
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        at = data.draw(st.integers(min_value=0, max_value=len(value) - 1))
        action = data.draw(st.sampled_from(["flip", "drop", "insert"]))
        if action == "flip":
            value[at] = data.draw(st.integers(min_value=0, max_value=255))
        elif action == "drop" and len(value) > 1:
            del value[at]
        else:
            value.insert(at, data.draw(st.integers(min_value=0, max_value=255)))
    try:
        event = local_decoder().decode(record(bytes(value), event_type))
    except DecodeError:
        return
    assert isinstance(event, (CertificateEvent, CatalogInfoChanged))
    assert event.meta.type is event_type


# ---------------------------------------------------------------------------- Record


def test_record_from_message_copies_every_field() -> None:
    """Record.from_message keeps topic, partition, offset, key, value, headers and timestamp."""
    message = Message(
        topic="learning-certificate-lifecycle",
        partition=3,
        offset=17,
        key=b"\x00key",
        value=b"\x00value",
        headers=[("ce_type", b"t"), ("empty", None)],
        timestamp=(1, 1_700_000_000_123),
    )
    assert Record.from_message(message) == Record(
        topic="learning-certificate-lifecycle",
        partition=3,
        offset=17,
        key=b"\x00key",
        value=b"\x00value",
        headers=(("ce_type", b"t"), ("empty", b"")),
        timestamp_ms=1_700_000_000_123,
    )


def test_record_from_message_without_timestamp_key_or_headers() -> None:
    """A message with no timestamp, key or headers gives None/empty fields, not errors."""
    message = Message(topic="t", partition=0, offset=0, value=b"v", timestamp=(0, 0))
    assert Record.from_message(message) == Record(
        topic="t", partition=0, offset=0, key=None, value=b"v", headers=(), timestamp_ms=None
    )


def test_record_header_returns_every_value_in_order() -> None:
    """Record.header() lists repeated headers in order and [] for an absent one."""
    rec = record(b"", headers=(("a", b"1"), ("b", b"2"), ("a", b"3")))
    assert rec.header("a") == [b"1", b"3"]
    assert rec.header("zzz") == []


# ---------------------------------------------------------------------------- registry


class StubRegistry:
    """A registry client stand-in: answers get_schema from a script, counting the calls."""

    def __init__(
        self, answer: Schema | BaseException, *, gate: threading.Event | None = None
    ) -> None:
        self.answer = answer
        self.calls: list[int] = []
        self._gate = gate

    def get_schema(self, schema_id: int) -> Schema:
        self.calls.append(schema_id)
        if self._gate is not None:
            self._gate.wait(10)
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


def registry(stub: StubRegistry) -> RegistryWriterSchemas:
    return RegistryWriterSchemas(cast(SchemaRegistryClient, stub))


def avro_schema(event_type: EventType = CREATED) -> Schema:
    return Schema((SCHEMAS / f"{event_type}.avsc").read_text(), "AVRO")


@pytest.mark.parametrize(
    ("answer", "error", "reason"),
    [
        pytest.param(
            SchemaRegistryError(404, 40403, "Schema not found"),
            UnknownSchemaError,
            "unknown_schema_id",
            id="404: unknown id is poison",
        ),
        pytest.param(
            SchemaRegistryError(500, 50001, "Error in the backend datastore"),
            RegistryUnavailableError,
            "http_500",
            id="500: registry unavailable",
        ),
        pytest.param(
            SchemaRegistryError(503, -1, "Service Unavailable"),
            RegistryUnavailableError,
            "http_503",
            id="503: registry unavailable",
        ),
        pytest.param(
            httpx.ConnectError("connection refused"),
            RegistryUnavailableError,
            "registry_unavailable",
            id="connect error: registry unavailable",
        ),
        pytest.param(
            httpx.ReadTimeout("timed out"),
            RegistryUnavailableError,
            "registry_unavailable",
            id="read timeout: registry unavailable",
        ),
        pytest.param(
            Schema('{"type": "record"', "AVRO"),
            InvalidWriterSchemaError,
            "invalid_writer_schema",
            id="invalid Avro JSON",
        ),
        pytest.param(
            Schema('{"type": "record", "name": "X", "fields": [{"name": "a"}]}', "AVRO"),
            InvalidWriterSchemaError,
            "invalid_writer_schema",
            id="invalid Avro schema",
        ),
        pytest.param(
            Schema('syntax = "proto3";', "PROTOBUF"),
            InvalidWriterSchemaError,
            "invalid_writer_schema",
            id="not an Avro schema",
        ),
    ],
)
def test_registry_errors_are_translated_once(
    answer: Schema | BaseException, error: type[DecodeError | TransientError], reason: str
) -> None:
    """Registry answers map to a DecodeError (poison) or RegistryUnavailableError (wait)."""
    with pytest.raises((DecodeError, TransientError)) as caught:
        registry(StubRegistry(answer)).get(SCHEMA_ID)
    assert type(caught.value) is error
    assert caught.value.reason == reason
    if isinstance(caught.value, RegistryUnavailableError):
        assert caught.value.service == "schema_registry"
    error_raised = caught.value  # the upstream exception is not chained onto it
    assert error_raised.__cause__ is None
    assert error_raised.__context__ is None or error_raised.__suppress_context__


@pytest.mark.parametrize(
    "upstream",
    [
        pytest.param(
            json.JSONDecodeError("Expecting value", "<html>proxy</html>", 0), id="200, not JSON"
        ),
        pytest.param(httpx.DecodingError("incorrect header check"), id="bad content encoding"),
    ],
)
def test_malformed_registry_answer_means_unavailable(upstream: Exception) -> None:
    """A registry answer the client cannot read is RegistryUnavailableError, not a crash."""
    with pytest.raises(RegistryUnavailableError):
        registry(StubRegistry(upstream)).get(SCHEMA_ID)


def test_registry_schema_is_fetched_and_parsed_once_per_id() -> None:
    """Each schema id is fetched once; later lookups return the same parsed schema."""
    stub = StubRegistry(avro_schema())
    writers = registry(stub)
    first = writers.get(1)
    assert writers.get(1) is first
    assert writers.get(1) is first
    writers.get(2)
    assert stub.calls == [1, 2]
    assert first["type"] == "record"


def test_registry_failure_is_not_cached() -> None:
    """After a registry outage the same id is fetched again, and then cached."""
    stub = StubRegistry(SchemaRegistryError(503, -1, "down"))
    writers = registry(stub)
    with pytest.raises(RegistryUnavailableError):
        writers.get(1)
    stub.answer = avro_schema()
    writers.get(1)
    writers.get(1)
    assert stub.calls == [1, 1]


def test_concurrent_lookups_of_one_id_fetch_once() -> None:
    """Threads asking for the same new id at once cause a single registry request."""
    gate = threading.Event()
    stub = StubRegistry(avro_schema(), gate=gate)
    writers = registry(stub)
    results: list[ParsedSchema] = []
    threads = [threading.Thread(target=lambda: results.append(writers.get(5))) for _ in range(8)]
    for thread in threads:
        thread.start()
    gate.set()
    for thread in threads:
        thread.join(10)
        assert not thread.is_alive()
    assert stub.calls == [5]
    assert len(results) == 8
    assert all(result is results[0] for result in results)


def test_decoder_with_registry_decodes_and_caches() -> None:
    """A Decoder over RegistryWriterSchemas decodes records and asks the registry once per id."""
    stub = StubRegistry(avro_schema())
    decoder = Decoder(registry(stub), READERS)
    for _ in range(3):
        event = decoder.decode(record(valid()))
        assert isinstance(event, CertificateEvent)
    assert stub.calls == [SCHEMA_ID]


def test_packaged_reader_schemas_cover_every_event_type() -> None:
    """load_reader_schemas() returns one parsed schema per consumed event type."""
    readers = load_reader_schemas()
    assert set(readers) == set(EventType)
    for event_type, schema in readers.items():
        assert schema["name"] == f"{event_type}.CloudEvent"


def test_reader_schemas_are_independent_copies() -> None:
    """Deriving a writer schema from the packaged JSON never changes the parsed readers."""
    before = copy.deepcopy(READERS[CREATED])
    schema = writer_schema(CREATED)
    record_fields(schema, "certificate").append({"name": "x", "type": "int", "default": 0})
    fastavro.parse_schema(schema)
    assert before == READERS[CREATED]


# ---------------------------------------------------------------------------- hostile schemas

BOUND = 30.0  # seconds: a watchdog against a decoder that never ends, not a speed assertion


def decode_with_registry_schema(text: str, body: bytes, event_type: EventType = CREATED) -> Outcome:
    """Decode one record whose writer schema is ``text``, in a child process under a bound."""

    def decode() -> str:
        decoder = Decoder(registry(StubRegistry(Schema(text, "AVRO"))), READERS)
        return type(decoder.decode(record(frame(body), event_type))).__name__

    return run_bounded(decode, seconds=BOUND)


def test_a_writer_schema_whose_decoding_would_not_end_is_refused() -> None:
    """An extra array<null> field and a 14-byte body counting 2^62 items: poison at once."""
    outcome = decode_with_registry_schema(HANG_SCHEMA, HANG_BODY)
    assert outcome.error_class == "InvalidWriterSchemaError"
    assert outcome.reason == "unbounded_writer_schema"


@pytest.mark.parametrize(
    "items",
    ["float", "double", "boolean", {"type": "fixed", "name": "Two", "size": 2}],
    ids=str,
)
def test_skipped_items_stop_at_the_end_of_the_body(items: object) -> None:
    """Items fastavro skipped without checking for the end: a read past it now fails."""
    schema = with_extra_first_field(CREATED, {"type": "array", "items": items})
    outcome = decode_with_registry_schema(schema, varint(2**62) + b"\x00" * 4)
    assert outcome.error_class == "AvroDecodeError"
    assert outcome.reason == "undecodable_avro"
    assert "EOFError" in outcome.message


def _thrice(name: str, kind: object) -> dict[str, Any]:
    return {"type": "record", "name": name, "fields": [{"name": n, "type": kind} for n in "abc"]}


def test_floats_a_type_reused_by_name_multiplies_still_stop_at_the_end_of_the_body() -> None:
    """3^25 floats in a field the reader skips: past the body's end the decoder stops at once.

    The schema is accepted (each float pays for its bytes) but visits far too many types to
    be read from a plain buffer, whose skips past the end would go on for every one of them.
    """
    levels = [_thrice("F0", "float")] + [_thrice(f"F{n}", f"F{n - 1}") for n in range(1, 25)]
    top = {
        "type": "record",
        "name": "Top",
        "fields": [{"name": f"f{n}", "type": kind} for n, kind in enumerate(levels)],
    }
    outcome = decode_with_registry_schema(with_extra_first_field(CREATED, top), b"")
    assert outcome.error_class == "AvroDecodeError"
    assert outcome.reason == "undecodable_avro"


@pytest.mark.parametrize("event_type", list(EventType), ids=str)
def test_every_cut_short_body_is_poison_never_a_shorter_event(event_type: EventType) -> None:
    """Each prefix of a valid body fails to decode: a read past the end is always caught.

    Through the registry's copy of the reader schema (no resolution, a plain buffer) and
    through a writer with one more field (resolved against the reader).
    """
    schema = writer_schema(event_type)
    plain = json.dumps(schema)
    schema["fields"].append({"name": "extra", "type": "string", "default": ""})
    extended = json.dumps(schema)
    data = catalog() if event_type is CATALOG else certificate()
    for text in (plain, extended):
        writer = fastavro.parse_schema(json.loads(text))
        body = avro(writer, {**data, "extra": "x"} if text is extended else data)
        decoder = Decoder(registry(StubRegistry(Schema(text, "AVRO"))), READERS)
        assert decoder.decode(record(frame(body), event_type)).meta.type is event_type
        for cut in range(len(body)):
            with pytest.raises(AvroDecodeError):
                decoder.decode(record(frame(body[:cut]), event_type))


def test_a_recursive_writer_schema_is_refused_before_it_can_crash_the_process() -> None:
    """A linked-list schema made fastavro overflow the C stack (SIGSEGV) on a 100 kB body."""
    outcome = decode_with_registry_schema(LINKED_LIST_SCHEMA, LINKED_LIST_BODY)
    assert outcome.error_class == "InvalidWriterSchemaError"
    assert outcome.reason == "unbounded_writer_schema"


@pytest.mark.parametrize("text", list(CRASH_SCHEMAS.values()), ids=list(CRASH_SCHEMAS))
def test_a_schema_text_fastavro_cannot_parse_is_poison(text: str) -> None:
    """Texts that made the registry lookup raise TypeError, KeyError or RecursionError."""
    decoder = Decoder(registry(StubRegistry(Schema(text, "AVRO"))), READERS)
    with pytest.raises(DecodeError) as caught:
        decoder.decode(record(valid()))
    assert type(caught.value) is InvalidWriterSchemaError
    assert caught.value.reason == "invalid_writer_schema"


def test_an_empty_union_schema_does_not_fall_back_to_the_reader() -> None:
    """``[]`` parses to a falsy schema; it was silently replaced by the reader schema."""
    decoder = Decoder(registry(StubRegistry(Schema("[]", "AVRO"))), READERS)
    with pytest.raises(InvalidWriterSchemaError):
        decoder.decode(record(valid()))


@pytest.mark.parametrize(
    "text",
    [CRASH_SCHEMAS["a number"], HANG_SCHEMA, LINKED_LIST_SCHEMA],
    ids=["unparseable", "unbounded", "recursive"],
)
def test_a_refused_schema_is_remembered_for_its_id(text: str) -> None:
    """The registry is asked once per refused id; every record of it gets the same answer."""
    stub = StubRegistry(Schema(text, "AVRO"))
    decoder = Decoder(registry(stub), READERS)
    errors = []
    for _ in range(3):
        with pytest.raises(InvalidWriterSchemaError) as caught:
            decoder.decode(record(valid()))
        errors.append(caught.value)
    assert stub.calls == [SCHEMA_ID]
    assert len({(str(error), error.reason) for error in errors}) == 1
    assert len({id(error) for error in errors}) == 3  # fresh errors: no growing traceback


def test_writer_logical_types_do_not_change_the_readers_plain_types() -> None:
    """A ``timestamp-millis`` on the user id made fastavro return a datetime, and int() fail."""
    schema = writer_schema(CREATED)
    user = record_fields(schema, "certificate", "user")
    user[0] = {"name": "id", "type": {"type": "long", "logicalType": "timestamp-millis"}}
    writer = fastavro.parse_schema(json.loads(json.dumps(schema)))
    value = frame(avro(writer, certificate()))  # id 7 is written as the long 7
    decoder = Decoder(registry(StubRegistry(Schema(json.dumps(schema), "AVRO"))), READERS)
    event = decoder.decode(record(value))
    assert isinstance(event, CertificateEvent)
    assert event.learner.user_id == 7
