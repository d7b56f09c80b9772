"""Poison records of every kind, made from one well-formed LMS record."""

from __future__ import annotations

import io
from typing import Any

import fastavro

from consumer import errors
from consumer.events import EventType
from consumer.wire import Record, load_reader_schemas
from tests.support.lms import certificate_data


def _without(headers: tuple[tuple[str, bytes], ...], name: str) -> list[tuple[str, bytes]]:
    return [(key, value) for key, value in headers if key != name]


def poison_variants(good: Record) -> dict[str, tuple[bytes | None, list[tuple[str, bytes]]]]:
    assert good.value is not None
    headers = list(good.headers)
    reader = load_reader_schemas()[EventType.CERTIFICATE_CREATED]
    bad_key = certificate_data(user_id=5, course_key="not a course key")
    body = _fastavro_body(reader, bad_key)
    return {
        "bad_magic_byte": (b"\x01" + good.value[1:], headers),
        "bad_framing": (b"\x00\x00", headers),
        "empty_value": (None, headers),
        "unknown_schema_id": (b"\x00" + (987654).to_bytes(4, "big") + good.value[5:], headers),
        "undecodable_avro": (good.value[: len(good.value) // 2], headers),
        "trailing_bytes": (good.value + b"\x00\x01", headers),
        "missing_ce_type": (good.value, _without(good.headers, "ce_type")),
        "duplicate_ce_type": (
            good.value,
            [*headers, ("ce_type", EventType.CERTIFICATE_CHANGED.encode())],
        ),
        "unknown_event_type": (
            good.value,
            [
                *_without(good.headers, "ce_type"),
                ("ce_type", b"org.openedx.learning.course.enrollment.created.v1"),
            ],
        ),
        "missing_ce_id": (good.value, _without(good.headers, "ce_id")),
        "invalid_event": (good.value[:5] + body, headers),
    }


def _fastavro_body(schema: Any, data: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema, data)
    return buffer.getvalue()


EXPECTED = {
    "bad_magic_byte": errors.FramingError,
    "bad_framing": errors.FramingError,
    "empty_value": errors.FramingError,
    "unknown_schema_id": errors.UnknownSchemaError,
    "undecodable_avro": errors.AvroDecodeError,
    "trailing_bytes": errors.AvroDecodeError,
    "missing_ce_type": errors.HeaderError,
    "duplicate_ce_type": errors.HeaderError,
    "unknown_event_type": errors.UnknownEventTypeError,
    "missing_ce_id": errors.HeaderError,
    "invalid_event": errors.InvalidEventError,
}
