"""Fuzz: registry schemas and records of any shape through the decoder, each under a time bound.

Every decode runs in a forked child (``tests.support.watchdog``), so a decoder that never
ends, or that crashes the process, fails the test instead of hanging or killing the run.
"""

from __future__ import annotations

import io
import json
from typing import Any, cast

import fastavro
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumer.errors import DecodeError
from consumer.events import CERTIFICATE_EVENT_TYPES, EventType
from consumer.wire import Decoder, Record, RegistryWriterSchemas, load_reader_schemas
from tests.support.hostile import (
    CRASH_SCHEMAS,
    HANG_BODY,
    HANG_SCHEMA,
    LINKED_LIST_BODY,
    LINKED_LIST_SCHEMA,
    reader_schema_json,
    varint,
    with_extra_first_field,
)
from tests.support.watchdog import Outcome, run_bounded

READERS = load_reader_schemas()
BOUND = 30.0  # seconds per example: a watchdog against hangs, not a speed assertion
NAMES = ("A", "B", "C")
PRIMITIVES = ("null", "boolean", "int", "long", "float", "double", "bytes", "string")
LOGICAL = ("decimal", "uuid", "date", "timestamp-millis", "timestamp-micros", "time-millis")


class OneSchemaRegistry:
    """A registry client stand-in that answers every id with one schema text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.calls = 0

    def get_schema(self, schema_id: int) -> Schema:  # noqa: ARG002 - the client's signature
        self.calls += 1
        return Schema(self.text, "AVRO")


# ---------------------------------------------------------------------------- schemas


def _fixed(size: int) -> dict[str, Any]:
    return {"type": "fixed", "name": "F", "size": size}


def _record(name: str, types: list[Any]) -> dict[str, Any]:
    return {
        "type": "record",
        "name": name,
        "fields": [{"name": f"f{index}", "type": kind} for index, kind in enumerate(types)],
    }


def _with_logical(kind: Any, logical: str) -> dict[str, Any]:
    schema = dict(kind) if isinstance(kind, dict) else {"type": kind}
    schema.update({"logicalType": logical, "precision": 4, "scale": 0})
    return schema


avro_types = st.recursive(
    st.sampled_from(PRIMITIVES)
    | st.builds(_fixed, st.integers(-1, 3))
    | st.just({"type": "enum", "name": "E", "symbols": ["a", "b"]})
    | st.sampled_from(NAMES),  # references: defined, undefined or recursive
    lambda inner: (
        st.builds(lambda items: {"type": "array", "items": items}, inner)
        | st.builds(lambda values: {"type": "map", "values": values}, inner)
        | st.lists(inner, max_size=3)
        | st.builds(_record, st.sampled_from(NAMES), st.lists(inner, max_size=4))
        | st.builds(_with_logical, inner, st.sampled_from(LOGICAL))
    ),
    max_leaves=12,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["type", "name", "fields", "items", "values", "size", "symbols"])
            | st.text(max_size=4),
            inner,
            max_size=4,
        )
    ),
    max_leaves=10,
)


def _records_of(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The schema's record and every record nested in its fields."""
    records = [schema]
    for node in records:  # grows while it is walked: a breadth-first walk
        records.extend(
            field["type"]
            for field in node["fields"]
            if isinstance(field["type"], dict) and field["type"].get("type") == "record"
        )
    return records


@st.composite
def reader_with_an_extra_field(draw: st.DrawFn, event_type: EventType) -> str:
    """The packaged schema with one more field, of a generated type, anywhere."""
    schema = reader_schema_json(event_type)
    target = draw(st.sampled_from(_records_of(schema)))
    at = draw(st.integers(0, len(target["fields"])))
    target["fields"].insert(at, {"name": "extra", "type": draw(avro_types)})
    return json.dumps(schema)


FITTING_LOGICAL = {"long": ("timestamp-millis", "timestamp-micros"), "string": ("uuid",)}


@st.composite
def reader_with_logical_types(draw: st.DrawFn, event_type: EventType) -> str:
    """The packaged schema with logical types on some of its own long and string fields."""
    schema = reader_schema_json(event_type)
    for node in _records_of(schema):
        for field in node["fields"]:
            kind = field["type"]
            if isinstance(kind, str) and kind in FITTING_LOGICAL and draw(st.booleans()):
                logical = draw(st.sampled_from(FITTING_LOGICAL[kind]))
                field["type"] = {"type": kind, "logicalType": logical}
    return json.dumps(schema)


schema_texts = st.one_of(
    st.sampled_from([*CRASH_SCHEMAS.values(), HANG_SCHEMA, LINKED_LIST_SCHEMA]),
    avro_types.map(json.dumps),
    json_values.map(json.dumps),
    st.text(min_size=1, max_size=20),  # an empty answer is an unusable registry, not poison
)

# ---------------------------------------------------------------------------- bodies

INTERESTING = (0, 1, -1, 2, 63, 64, -64, 2**31, 2**62, -(2**62), 2**63 - 1, -(2**63))


COURSE = "course-v1:OrgX+DemoX+1T2024"
VALID_DATA: dict[EventType, dict[str, Any]] = {
    EventType.CATALOG_INFO_CHANGED: {
        "catalog_info": {
            "course_key": COURSE,
            "name": "Demo",
            "schedule_data": {
                "start": "2024-01-08T00:00:00+00:00",
                "pacing": "self",
                "end": None,
                "enrollment_start": None,
                "enrollment_end": None,
            },
            "hidden": False,
            "invitation_only": False,
        }
    },
    **{
        event_type: {
            "certificate": {
                "user": {
                    "id": 7,
                    "is_active": True,
                    "pii": {"username": "u", "email": "", "name": ""},
                },
                "course": {"course_key": COURSE, "display_name": "", "start": None, "end": None},
                "mode": "verified",
                "grade": "1",
                "download_url": "",
                "name": "",
                "current_status": "downloadable",
                "previous_status": "",
            }
        }
        for event_type in CERTIFICATE_EVENT_TYPES
    },
}


def _valid_body(event_type: EventType) -> bytes:
    """A well-formed body of the packaged schema, so fuzzed pieces around it reach real fields."""
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, READERS[event_type], VALID_DATA[event_type])
    return buffer.getvalue()


body_parts = st.one_of(
    st.binary(max_size=8),
    st.sampled_from(INTERESTING).map(varint),
    st.sampled_from(list(EventType)).map(_valid_body),
)
bodies = st.one_of(
    st.lists(body_parts, max_size=8).map(b"".join),
    st.sampled_from([HANG_BODY, LINKED_LIST_BODY]),
)


@st.composite
def cases(draw: st.DrawFn) -> tuple[str, bytes, EventType]:
    """A schema text, a body and a ce_type: unrelated, or derived from one event's schema."""
    event_type = draw(st.sampled_from(list(EventType)))
    valid = _valid_body(event_type)
    prefix = draw(st.lists(body_parts, max_size=3).map(b"".join))
    kind = draw(st.sampled_from(["any", "extra field first", "extra field", "logical types"]))
    if kind == "extra field first":  # the prefix is the extra field's encoding, or not
        text = with_extra_first_field(event_type, draw(avro_types))
        return text, prefix + valid, event_type
    if kind == "extra field":
        return draw(reader_with_an_extra_field(event_type)), prefix + valid, event_type
    if kind == "logical types":
        return draw(reader_with_logical_types(event_type)), valid, event_type
    return draw(schema_texts), draw(bodies), event_type


# ---------------------------------------------------------------------------- the property


def _decode_twice(text: str, body: bytes, event_type: EventType) -> tuple[Outcome, ...]:
    """In the child: two records of one schema id; what each did, and the registry's calls."""
    registry = OneSchemaRegistry(text)
    decoder = Decoder(RegistryWriterSchemas(cast(SchemaRegistryClient, registry)), READERS)
    value = b"\x00" + (77).to_bytes(4, "big") + body
    record = Record(
        topic="t",
        partition=0,
        offset=0,
        key=None,
        value=value,
        headers=(("ce_type", event_type.encode()), ("ce_id", b"fuzz")),
    )
    outcomes = []
    for _ in range(2):
        try:
            outcomes.append(Outcome(value=type(decoder.decode(record)).__name__))
        except Exception as error:  # noqa: BLE001 - described for the parent to judge
            outcomes.append(
                Outcome(
                    error_class=type(error).__name__,
                    error_types=tuple(kind.__name__ for kind in type(error).__mro__),
                    reason=getattr(error, "reason", None),
                    message=str(error)[:300],
                )
            )
    return (*outcomes, Outcome(value=registry.calls))


@settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(cases())
def test_property_registry_schemas_and_bodies_decode_or_raise_decode_errors(
    case: tuple[str, bytes, EventType],
) -> None:
    """Any schema and body: an event or a DecodeError, within the bound, the same twice."""
    text, body, event_type = case
    outcome = run_bounded(lambda: _decode_twice(text, body, event_type), seconds=BOUND)
    first, second, calls = outcome.value
    for each in (first, second):
        assert not each.raised or each.raised_a(DecodeError), each
    assert calls.value == 1  # the schema id was looked up once, refused or not
    if first.reason in ("invalid_writer_schema", "unbounded_writer_schema"):
        assert (second.error_class, second.reason, second.message) == (
            first.error_class,
            first.reason,
            first.message,
        )
