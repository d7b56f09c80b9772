"""Hostile registry schemas and Avro bodies, as a review found them (issue 8, item 5)."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from consumer.events import EventType


def varint(number: int) -> bytes:
    """Avro's zig-zag variable-length encoding of a long."""
    zigzag = (number << 1) ^ (number >> 63)
    out = bytearray()
    while True:
        low, zigzag = zigzag & 0x7F, zigzag >> 7
        if not zigzag:
            out.append(low)
            return bytes(out)
        out.append(low | 0x80)


def reader_schema_json(event_type: EventType) -> dict[str, Any]:
    """A fresh copy of the packaged reader schema's JSON, to derive writer schemas from."""
    text = (resources.files("consumer") / "schemas" / f"{event_type}.avsc").read_text()
    schema = json.loads(text)
    assert isinstance(schema, dict)
    return schema


def with_extra_first_field(event_type: EventType, field_type: Any, name: str = "extra") -> str:
    """The reader schema with one more field, first, that the reader does not have."""
    schema = reader_schema_json(event_type)
    schema["fields"].insert(0, {"name": name, "type": field_type})
    return json.dumps(schema)


def deep_record(depth: int) -> str:
    """A record nested ``depth`` records deep, as text (built without recursion)."""
    opening = "".join(
        f'{{"type": "record", "name": "R{level}", "fields": [{{"name": "f", "type": '
        for level in range(depth - 1)
    )
    closing = "}]}" * (depth - 1)
    return f'{opening}{{"type": "record", "name": "R{depth - 1}", "fields": []}}{closing}'


# The hang: an extra array<null> field the reader lacks, and a 14-byte body whose first
# block count is 2^62. fastavro skips the nulls one by one and never ends.
HANG_SCHEMA = with_extra_first_field(
    EventType.CERTIFICATE_CREATED, {"type": "array", "items": "null"}
)
HANG_BODY = varint(2**62) + b"\x00" * 4
assert len(HANG_BODY) == 14

# The crashes: schema texts fastavro (or json) raises TypeError, KeyError or RecursionError on.
CRASH_SCHEMAS = {
    "a number": "123",
    "null": "null",
    "an array without items": '{"type": "array"}',
    "a type nested in a type": '{"type": {"type": "string"}}',
    "a 3,000-deep record": deep_record(3000),
}

# Found while fixing: fastavro's compiled reader recurses on the C stack, so a recursive
# type segfaults the process on a long enough body (a linked list of 100,000 nodes).
LINKED_LIST_SCHEMA = json.dumps(
    {"type": "record", "name": "Node", "fields": [{"name": "next", "type": ["null", "Node"]}]}
)
LINKED_LIST_BODY = varint(1) * 100_000 + varint(0)
