"""Writer schemas from a registry, parsed and checked before any record is decoded with one.

A registry holds whatever a producer registered, and fastavro trusts the schemas it is
given. One schema could stop the worker in three ways (each reproduced in the tests):

- **It does not parse.** ``123``, ``null``, ``{"type": "array"}`` or a type nested in a
  type make fastavro raise ``TypeError`` or ``KeyError``; a 3,000-deep record makes
  ``json`` raise ``RecursionError``.
- **Decoding never ends.** fastavro loops over an array block's item count (up to 2^63)
  one item at a time. If an item encodes in zero bytes (``null``, an empty record,
  ``fixed`` of size 0) a 14-byte body keeps the poll thread busy for ever; so does an
  item fastavro *skips* without checking for the end of the body (float, double, boolean,
  fixed).
- **Decoding crashes the process.** fastavro's compiled reader recurses on the C stack
  with no depth check: a recursive type (a linked list) segfaults on a 10 kB body, and a
  type that can only contain itself on an empty one.

So a writer schema is refused, for good, when it does not parse (``invalid_writer_schema``)
or when the work of decoding with it cannot be bounded (``unbounded_writer_schema``).

**The bound** (ADR 0003). Count a step for every type visited while decoding. Every step
reads at least one byte, except ``null``, ``fixed`` of size 0 and a record's own step. Give
each type a *debt*: the most steps it can take beyond ``WORK_PER_BYTE`` (K) per byte it
consumes, over every encoding:

======================================  =========================================
type                                    debt
======================================  =========================================
null, fixed of size 0                   1
boolean, int, long, string, bytes,      1 - K      (at least one byte)
enum, array, map (their block headers)
float / double / fixed of size n        1 - 4K / 1 - 8K / 1 - nK
record                                  1 + the sum over its fields
union                                   1 - K + the largest over its branches
======================================  =========================================

An array's items and a map's entries repeat as often as the body says, so each must pay
its way: ``1 + debt(item) <= 0`` (an entry also reads its key: ``2 - K + debt(value)``).
Then decoding an ``n``-byte body takes at most ``debt(top) + K * n`` steps, provided a read
past the end fails: the decoder reads through a stream that raises on a short read
(``wire.Decoder``), because fastavro's skips do not check. Recursive types and nesting
deeper than ``MAX_DEPTH`` are refused (the C stack), as is ``debt(top) > MAX_STEPS`` (a
type reused by name can expand exponentially). Real event schemas are far inside these
limits: no recursion, nesting 5, negative debt.

**Logical types are dropped** from writer schemas: the reader schemas in ``schemas/``
declare none, so a datum takes the reader's plain type. fastavro would otherwise convert by
the writer's annotation alone: a ``date`` on the ``long`` user id, a ``uuid`` on the course
key (neither is then what ``events`` expects), a ``decimal`` quadratic in the body's length.
"""

from __future__ import annotations

import json
from typing import Any

import fastavro

from consumer.errors import InvalidWriterSchemaError

ParsedSchema = Any  # what fastavro.parse_schema returns (untyped in fastavro)

WORK_PER_BYTE = 16
MAX_STEPS = 10_000
MAX_DEPTH = 32
MAX_JSON_DEPTH = 100

INVALID = "invalid_writer_schema"
UNBOUNDED = "unbounded_writer_schema"

_BYTES_AT_LEAST = {
    "null": 0,
    "boolean": 1,
    "int": 1,
    "long": 1,
    "string": 1,
    "bytes": 1,
    "float": 4,
    "double": 8,
}
_RECORDS = ("record", "error")


def parse_writer_schema(text: str, *, schema_id: int) -> ParsedSchema:
    """Parse a registry schema text into a fastavro schema that is safe to decode with.

    Raises ``InvalidWriterSchemaError``: reason ``invalid_writer_schema`` when the text is
    not a schema fastavro can parse, ``unbounded_writer_schema`` when decoding with it
    could not be bounded (see the module docstring).
    """
    try:
        loaded = json.loads(text)
    except RecursionError:
        raise InvalidWriterSchemaError(
            f"schema id {schema_id} nests too deep to read as JSON"
        ) from None
    except ValueError as error:
        raise InvalidWriterSchemaError(
            f"schema id {schema_id} is not JSON: {type(error).__name__}"
        ) from None
    if _json_depth(loaded) > MAX_JSON_DEPTH:
        raise InvalidWriterSchemaError(
            f"schema id {schema_id} nests deeper than {MAX_JSON_DEPTH} JSON levels",
            reason=UNBOUNDED,
        )
    named: dict[str, Any] = {}
    try:
        parsed = fastavro.parse_schema(loaded, named_schemas=named)
    except Exception as error:  # noqa: BLE001 - fastavro's parser raises anything on bad input
        raise InvalidWriterSchemaError(
            f"schema id {schema_id} is not a valid Avro schema: "
            f"{type(error).__name__}: {str(error)[:200]}"
        ) from None
    _Bounds(named, schema_id).check(parsed)
    return parsed


def _json_depth(value: object) -> int:
    """How deep ``value`` nests, counted without recursion; stops past the limit."""
    deepest = 0
    pending: list[tuple[object, int]] = [(value, 1)]
    while pending and deepest <= MAX_JSON_DEPTH:
        node, depth = pending.pop()
        deepest = max(deepest, depth)
        if isinstance(node, dict):
            pending.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list):
            pending.extend((child, depth + 1) for child in node)
    return deepest


class _Bounds:
    """One walk over a parsed schema: debts, depth and recursion, logical types dropped."""

    def __init__(self, named: dict[str, Any], schema_id: int) -> None:
        self._named = named
        self._schema_id = schema_id
        self._done: dict[str, tuple[int, int]] = {}  # name -> (debt, height)
        self._open: set[str] = set()

    def check(self, parsed: ParsedSchema) -> None:
        """Raise ``InvalidWriterSchemaError`` unless decoding with ``parsed`` is bounded."""
        for definition in self._named.values():  # named types as references resolve them
            definition.pop("logicalType", None)
        debt, _height = self._walk(parsed, depth=1)
        if debt > MAX_STEPS:
            raise self._refusal(f"decoding takes up to {debt} steps on an empty body")

    def _refusal(self, problem: str, reason: str = UNBOUNDED) -> InvalidWriterSchemaError:
        return InvalidWriterSchemaError(f"schema id {self._schema_id}: {problem}", reason=reason)

    def _walk(self, schema: object, *, depth: int) -> tuple[int, int]:
        """The (debt, height) of ``schema`` at nesting ``depth``."""
        if depth > MAX_DEPTH:
            raise self._refusal(f"types nest deeper than {MAX_DEPTH}")
        if isinstance(schema, list):
            return self._union(schema, depth)
        if isinstance(schema, str):
            return self._name(schema, depth)
        if isinstance(schema, dict):
            return self._complex(schema, depth)
        raise self._refusal(f"{type(schema).__name__} where a type belongs", INVALID)

    def _name(self, name: str, depth: int) -> tuple[int, int]:
        if name in _BYTES_AT_LEAST:
            return 1 - WORK_PER_BYTE * _BYTES_AT_LEAST[name], 1
        return self._named_type(name, depth)

    def _complex(self, schema: dict[str, Any], depth: int) -> tuple[int, int]:
        schema.pop("logicalType", None)
        kind = schema.get("type")
        if kind in _RECORDS and isinstance(schema.get("name"), str):
            return self._named_type(schema["name"], depth, definition=schema)
        if kind in ("array", "map"):
            return self._repeated(schema, depth)
        if kind == "fixed":
            size = schema.get("size")
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise self._refusal(f"fixed size {size!r} is not a byte count", INVALID)
            return 1 - WORK_PER_BYTE * size, 1
        if kind == "enum":
            return 1 - WORK_PER_BYTE, 1
        if isinstance(kind, str):
            return self._name(kind, depth)
        raise self._refusal(f"type {kind!r} is not a type", INVALID)

    def _union(self, branches: list[object], depth: int) -> tuple[int, int]:
        if not branches:
            raise self._refusal("a union has no branch", INVALID)
        walked = [self._walk(branch, depth=depth + 1) for branch in branches]
        return (
            1 - WORK_PER_BYTE + max(debt for debt, _ in walked),
            1 + max(height for _, height in walked),
        )

    def _repeated(self, schema: dict[str, Any], depth: int) -> tuple[int, int]:
        """An array or a map: each item (an entry, with its key) must pay for its own steps."""
        is_map = schema["type"] == "map"
        debt, height = self._walk(schema.get("values" if is_map else "items"), depth=depth + 1)
        per_item = 1 + debt + (1 - WORK_PER_BYTE if is_map else 0)
        if per_item > 0:
            raise self._refusal(
                f"{'a map entry' if is_map else 'an array item'} can cost more than "
                f"{WORK_PER_BYTE} decoding steps per byte it reads (a null or an empty record "
                "reads none), so one block count could keep the decoder busy for ever"
            )
        return 1 - WORK_PER_BYTE, 1 + height

    def _named_type(
        self, name: str, depth: int, definition: dict[str, Any] | None = None
    ) -> tuple[int, int]:
        if name in self._done:
            debt, height = self._done[name]
            if depth + height - 1 > MAX_DEPTH:
                raise self._refusal(f"types nest deeper than {MAX_DEPTH}")
            return debt, height
        if name in self._open:
            raise self._refusal(f"type {name} contains itself (a recursive type)")
        schema = definition if definition is not None else self._named.get(name)
        if schema is None:
            raise self._refusal(f"type {name} is not defined", INVALID)
        self._open.add(name)
        if isinstance(schema, dict) and schema.get("type") in _RECORDS:
            result = self._record(name, schema, depth)
        else:
            result = self._walk(schema, depth=depth)
        self._open.discard(name)
        self._done[name] = result
        return result

    def _record(self, name: str, schema: dict[str, Any], depth: int) -> tuple[int, int]:
        fields = schema.get("fields")
        if not isinstance(fields, list):
            raise self._refusal(f"record {name} has no field list", INVALID)
        walked = [self._walk(_field_type(field), depth=depth + 1) for field in fields]
        return (
            1 + sum(debt for debt, _ in walked),
            1 + max((height for _, height in walked), default=0),
        )


def _field_type(field: object) -> object:
    return field.get("type") if isinstance(field, dict) else field


class _Repeats(Exception):
    """The schema repeats (or references what it has not defined): no fixed bound."""


def fixed_steps(schema: ParsedSchema, *, limit: int = MAX_STEPS) -> int | None:
    """The most types decoding with ``schema`` can visit, whatever the body; None if no bound.

    None when the schema has an array or a map anywhere (the body says how many items
    follow), refers to a type it has not defined before (a recursive type), or visits more
    than ``limit`` types (a type reused by name expands). Otherwise the work of decoding is
    bounded by the schema alone — each visit reads a byte count at most once, and a read of
    any length stops at the end of the body — so a read past the end needs no check while
    decoding: ``wire.Decoder`` reads such bodies from a plain buffer and checks where the
    record ended afterwards (ADR 0003). The real event schemas visit about 20 types.
    """
    try:
        steps = _Steps(limit).walk(schema)
    except (_Repeats, RecursionError):
        return None
    return steps if steps <= limit else None


class _Steps:
    """One walk for ``fixed_steps``: the types visited, named ones counted once defined."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._named: dict[str, int] = {}

    def walk(self, node: object) -> int:
        if isinstance(node, list):
            if not node:
                raise _Repeats
            return 1 + max(self.walk(branch) for branch in node)
        if isinstance(node, str):
            if node in _BYTES_AT_LEAST:
                return 1
            if node in self._named:
                return self._named[node]
            raise _Repeats
        if not isinstance(node, dict):
            raise _Repeats
        kind = node.get("type")
        if kind in _RECORDS:
            steps = self._record(node)
        elif kind in ("enum", "fixed"):
            steps = 1
        elif kind in ("array", "map") or not isinstance(kind, str):
            raise _Repeats
        else:
            return self.walk(kind)
        name = node.get("name")
        if isinstance(name, str):
            self._named[name] = steps
        return steps

    def _record(self, node: dict[str, Any]) -> int:
        fields = node.get("fields")
        if not isinstance(fields, list):
            raise _Repeats
        steps = 1
        for field in fields:
            steps += self.walk(_field_type(field))
            if steps > self._limit:
                raise _Repeats
        return steps
