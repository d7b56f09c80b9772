"""Which registry writer schemas the decoder accepts, and why it refuses the others."""

from __future__ import annotations

import json
from typing import Any

import pytest

from consumer.errors import InvalidWriterSchemaError
from consumer.events import EventType
from consumer.writer_schema import (
    MAX_DEPTH,
    MAX_STEPS,
    WORK_PER_BYTE,
    fixed_steps,
    parse_writer_schema,
)
from tests.support.hostile import (
    CRASH_SCHEMAS,
    HANG_SCHEMA,
    LINKED_LIST_SCHEMA,
    reader_schema_json,
    with_extra_first_field,
)

CREATED = EventType.CERTIFICATE_CREATED


def record(name: str, *field_types: Any) -> dict[str, Any]:
    """A record type whose fields f0, f1, ... have ``field_types``."""
    return {
        "type": "record",
        "name": name,
        "fields": [{"name": f"f{index}", "type": kind} for index, kind in enumerate(field_types)],
    }


def array(items: Any) -> dict[str, Any]:
    return {"type": "array", "items": items}


def parse(schema: Any) -> Any:
    return parse_writer_schema(json.dumps(schema), schema_id=9)


def nested(depth: int) -> dict[str, Any]:
    """Records nested ``depth`` deep, the innermost holding a long."""
    schema = record(f"N{depth}", "long")
    for level in range(depth - 1, 0, -1):
        schema = record(f"N{level}", schema)
    return schema


def doubling(levels: int) -> dict[str, Any]:
    """Named records each holding two of the next by name: 2^levels nulls, a short text."""
    types: list[Any] = [record("D0", "null")]
    types += [record(f"D{level}", f"D{level - 1}", f"D{level - 1}") for level in range(1, levels)]
    return record("Top", *types)


@pytest.mark.parametrize("event_type", list(EventType), ids=str)
def test_the_event_schemas_are_accepted(event_type: EventType) -> None:
    """Every schema the LMS and Studio register today decodes with no refusal."""
    parsed = parse(reader_schema_json(event_type))
    assert parsed["name"] == f"{event_type}.CloudEvent"


@pytest.mark.parametrize(
    "field_type",
    [
        pytest.param(array("string"), id="array of strings"),
        pytest.param(array(record("Item", "null", "long")), id="array of records with a long"),
        pytest.param(array(["null", "long"]), id="array of unions: the index is a byte"),
        pytest.param(array(array("long")), id="array of arrays"),
        pytest.param({"type": "map", "values": "null"}, id="map of nulls: each key is a byte"),
        pytest.param(array({"type": "fixed", "name": "F1", "size": 1}), id="array of fixed(1)"),
        pytest.param(
            array(["null", record("Big", *["string"] * 40)]), id="array of optional records"
        ),
        pytest.param(record("Empty"), id="an empty record outside arrays"),
        pytest.param(nested(MAX_DEPTH - 6), id="deep but within the limit"),
        pytest.param(doubling(8), id="a type reused by name, 2^8 steps"),
    ],
)
def test_schemas_whose_decoding_is_bounded_are_accepted(field_type: Any) -> None:
    """A field the reader lacks is fine whenever every repeated item pays for its steps."""
    parsed = parse_writer_schema(with_extra_first_field(CREATED, field_type), schema_id=9)
    assert parsed["fields"][0]["name"] == "extra"


@pytest.mark.parametrize(
    ("schema", "reason"),
    [
        *(
            pytest.param(text, "invalid_writer_schema", id=name)
            for name, text in CRASH_SCHEMAS.items()
        ),
        pytest.param("not json", "invalid_writer_schema", id="not JSON"),
        pytest.param("[]", "invalid_writer_schema", id="a union of nothing"),
        pytest.param(
            json.dumps(record("R", {"type": "fixed", "name": "F", "size": -1})),
            "invalid_writer_schema",
            id="a negative fixed size",
        ),
        pytest.param(
            json.dumps(record("R", {"type": "fixed", "name": "F", "size": "8"})),
            "invalid_writer_schema",
            id="a fixed size that is text",
        ),
        pytest.param(HANG_SCHEMA, "unbounded_writer_schema", id="array of nulls"),
        pytest.param(LINKED_LIST_SCHEMA, "unbounded_writer_schema", id="a linked list"),
    ],
)
def test_unusable_schema_texts_are_refused_with_a_reason(schema: str, reason: str) -> None:
    """Texts that used to raise TypeError, KeyError or RecursionError, or hang, are refused."""
    with pytest.raises(InvalidWriterSchemaError) as caught:
        parse_writer_schema(schema, schema_id=9)
    assert caught.value.reason == reason
    assert "schema id 9" in str(caught.value)


@pytest.mark.parametrize(
    "field_type",
    [
        pytest.param(array("null"), id="array of nulls"),
        pytest.param(array(record("Empty")), id="array of empty records"),
        pytest.param(array({"type": "fixed", "name": "F0", "size": 0}), id="array of fixed(0)"),
        pytest.param(array(record("Nulls", "null", "null")), id="array of records of nulls"),
        pytest.param(array(array(array("null"))), id="nested arrays of nulls"),
        pytest.param({"type": "map", "values": array("null")}, id="array of nulls inside a map"),
        pytest.param(
            array(record("Cheap", "long", *["null"] * WORK_PER_BYTE)),
            id="items doing more steps than they read bytes",
        ),
        pytest.param(
            {"type": "map", "values": record("Wide", *["null"] * WORK_PER_BYTE)},
            id="map entries doing more steps than they read bytes",
        ),
        pytest.param(record("Loop", ["null", "Loop"]), id="a record that may hold itself"),
        pytest.param(record("Self", "Self"), id="a record that must hold itself"),
        pytest.param(
            record("A", ["null", record("B", ["null", "A"])]), id="two records holding each other"
        ),
        pytest.param(record("Tree", array("Tree")), id="a tree through an array"),
        pytest.param(nested(MAX_DEPTH + 1), id="nested deeper than the limit"),
        pytest.param(doubling(40), id="a type reused by name, 2^40 steps"),
        pytest.param(record("Wide", *["null"] * 2 * MAX_STEPS), id="too many steps at once"),
    ],
)
def test_schemas_whose_decoding_cannot_be_bounded_are_refused(field_type: Any) -> None:
    """Anywhere in the schema, and whether the reader reads or skips it, it is refused."""
    with pytest.raises(InvalidWriterSchemaError) as caught:
        parse_writer_schema(with_extra_first_field(CREATED, field_type), schema_id=9)
    assert caught.value.reason == "unbounded_writer_schema"


def _logical_types(schema: Any) -> list[str]:
    """Every logicalType left in a parsed schema, named types included."""
    found = []
    pending = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            if "logicalType" in node:
                found.append(node["logicalType"])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return found


def test_logical_types_are_dropped_from_writer_schemas() -> None:
    """The readers declare no logical types, so the writer's may not turn a datum into another."""
    decimal = {"type": "fixed", "name": "Money", "size": 4, "logicalType": "decimal"}
    decimal["precision"] = 9
    schema = record(
        "R",
        {"type": "long", "logicalType": "timestamp-millis"},
        {"type": "string", "logicalType": "uuid"},
        decimal,
        "Money",
        array({"type": "int", "logicalType": "date"}),
    )
    assert _logical_types(parse(schema)) == []


@pytest.mark.parametrize("event_type", list(EventType), ids=str)
def test_reader_schemas_declare_no_logical_types(event_type: EventType) -> None:
    """Dropping the writer's logical types is right only while the readers declare none."""
    assert _logical_types(reader_schema_json(event_type)) == []


# ---------------------------------------------------------------------------- fixed steps


def doubling_floats(levels: int) -> dict[str, Any]:
    """Named records each holding two of the previous: 2^levels floats, accepted (debt < 0)."""
    types: list[Any] = [record("F0", "float", "float")]
    types += [record(f"F{level}", f"F{level - 1}", f"F{level - 1}") for level in range(1, levels)]
    return record("Top", *types)


@pytest.mark.parametrize("event_type", list(EventType), ids=str)
def test_the_event_schemas_decode_in_a_fixed_number_of_steps(event_type: EventType) -> None:
    """No array, no map: the work of decoding an event is bounded by its schema alone."""
    steps = fixed_steps(parse(reader_schema_json(event_type)))
    assert steps is not None
    assert steps <= 100


@pytest.mark.parametrize(
    "field_type",
    [
        array("long"),
        {"type": "map", "values": "string"},
        ["null", record("Inner", array("int"))],
        record("Twice", record("Once", {"type": "map", "values": "long"}), "Once"),
    ],
    ids=["array", "map", "array in a union", "map in a type used twice"],
)
def test_a_schema_that_repeats_has_no_fixed_number_of_steps(field_type: Any) -> None:
    """An array or a map anywhere: the body says how often, so reads must be checked."""
    assert fixed_steps(parse(record("Top", "long", field_type))) is None


def test_a_type_reused_by_name_past_the_limit_has_no_fixed_number_of_steps() -> None:
    """2^20 floats is accepted (each pays its bytes), but is no fixed bound to trust."""
    parsed = parse(doubling_floats(20))
    assert fixed_steps(parsed) is None
    # Fk visits itself and two F(k-1): 3, 7, 15, 31, 63; the top record adds one.
    assert fixed_steps(parse(doubling_floats(5))) == 1 + 3 + 7 + 15 + 31 + 63
