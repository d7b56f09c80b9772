"""From Kafka bytes to typed events, exactly as ``edx-event-bus-kafka`` writes them.

A broker message becomes a frozen ``Record`` at the edge; ``Decoder.decode`` turns a record
into an ``events.Event`` or raises one ``DecodeError`` subclass naming the reason:

1. route by the ``ce_type`` header (exactly once, one of ``EventType``) and require ``ce_id``;
2. Confluent framing: magic byte ``0``, a 4-byte big-endian schema id, the Avro body;
3. the writer schema by id from the registry, parsed and checked once per id and cached
   (``writer_schema``: a schema that does not parse, or whose decoding could not be
   bounded, is refused for good); without a registry the local reader schema stands in for
   the writer (see ``LocalWriterSchemas``);
4. fastavro resolves writer against the reader schema in ``schemas/``, so a producer that
   adds or drops a defaulted field still decodes; every byte of the body must be consumed,
   and a read past its end fails (fastavro's skips do not check).

Registry and fastavro exceptions are translated here, once: a schema id the registry does
not know is poison (``UnknownSchemaError``), so is a schema that cannot be used
(``InvalidWriterSchemaError``, remembered for its id); a registry that cannot be reached is
not (``RegistryUnavailableError``: the engine waits and decodes the record again).
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final, Protocol

import fastavro
from confluent_kafka import Message
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from fastavro.schema import to_parsing_canonical_form

from consumer.errors import (
    AvroDecodeError,
    FramingError,
    HeaderError,
    InvalidEventError,
    InvalidWriterSchemaError,
    RegistryUnavailableError,
    UnknownEventTypeError,
    UnknownSchemaError,
)
from consumer.events import Event, EventMeta, EventType, build_event, parse_time
from consumer.writer_schema import fixed_steps, parse_writer_schema

try:  # the registry client talks through httpx2 when installed, else httpx
    import httpx2 as httpx
except ImportError:  # pragma: no cover - depends on what confluent-kafka pulled in
    import httpx  # type: ignore[no-redef,import-not-found,unused-ignore]

Headers = tuple[tuple[str, bytes], ...]
ParsedSchema = Any  # what fastavro.parse_schema returns (untyped in fastavro)

MAGIC_BYTE = 0
FRAME_HEADER_SIZE = 5


def _as_bytes(value: str | bytes | None) -> bytes | None:
    """confluent-kafka types keys, values and headers as ``str | bytes``; the wire is bytes."""
    return value.encode("utf-8") if isinstance(value, str) else value


def _headers(raw: Any) -> Headers:  # noqa: ANN401 - confluent-kafka's list (or dict) of headers
    """The message's headers as a tuple of (name, bytes): ``None`` values become ``b""``.

    librdkafka hands header values over as bytes (or None): the tuple is then made at once,
    without building each pair again.
    """
    if not raw:
        return ()
    headers = tuple(raw.items() if isinstance(raw, dict) else raw)
    for _name, value in headers:
        if type(value) is not bytes:
            return tuple((name, _as_bytes(value) or b"") for name, value in headers)
    return headers


@dataclass(frozen=True, slots=True)
class Record:
    """A consumed Kafka message as a plain value: what the engine moves around."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers = ()
    timestamp_ms: int | None = None

    @classmethod
    def from_message(cls, message: Message) -> Record:
        """Copy a confluent-kafka message (which must not be an error event) into a value."""
        topic = message.topic()
        partition = message.partition()
        offset = message.offset()
        assert topic is not None
        assert partition is not None
        assert offset is not None
        kind, timestamp = message.timestamp()
        return cls(
            topic=topic,
            partition=partition,
            offset=offset,
            key=_as_bytes(message.key()),
            value=_as_bytes(message.value()),
            headers=_headers(message.headers()),
            timestamp_ms=timestamp if kind != 0 else None,  # 0: TIMESTAMP_NOT_AVAILABLE
        )

    def header(self, name: str) -> list[bytes]:
        """Every value of header ``name``, in order (Kafka headers may repeat)."""
        return [value for key, value in self.headers if key == name]


# ---------------------------------------------------------------------------- schemas


def load_reader_schemas() -> dict[EventType, ParsedSchema]:
    """Parse the packaged ``schemas/*.avsc`` of the consumed event types, once."""
    folder = resources.files("consumer") / "schemas"
    return {
        event_type: fastavro.parse_schema(json.loads((folder / f"{event_type}.avsc").read_text()))
        for event_type in EventType
    }


class WriterSchemas(Protocol):
    """Where writer schemas come from, by Confluent schema id."""

    def get(self, schema_id: int) -> ParsedSchema | None:
        """The parsed writer schema, or None to decode with the reader schema alone.

        Raises ``UnknownSchemaError`` or ``RegistryUnavailableError``.
        """


class LocalWriterSchemas:
    """No registry: assume every writer schema is the local reader schema.

    The limit, documented in the README: a producer on a different schema version (an
    added or removed field) yields ``AvroDecodeError`` instead of a resolved record.
    """

    def get(self, schema_id: int) -> ParsedSchema | None:  # noqa: ARG002 - the protocol's
        """Always None: the reader schema decodes alone."""
        return None


class RegistryWriterSchemas:
    """Writer schemas fetched from a Confluent-compatible registry, parsed once per id.

    Thread-safe. A schema id is looked up once for the life of the worker, whether its
    schema is usable or refused (a registry's schema for an id never changes); an id the
    registry does not know, or a registry that cannot be reached, is asked again next time.
    """

    def __init__(self, client: SchemaRegistryClient) -> None:
        self.client = client
        self._parsed: dict[int, ParsedSchema] = {}
        self._refused: dict[int, tuple[str, str]] = {}  # id -> (message, reason)
        self._lock = threading.Lock()

    def get(self, schema_id: int) -> ParsedSchema:
        """Return the parsed writer schema for ``schema_id``.

        Raises ``InvalidWriterSchemaError`` (the same answer for an id every time),
        ``UnknownSchemaError`` or ``RegistryUnavailableError``.
        """
        parsed = self._parsed.get(schema_id)
        if parsed is None:
            with self._lock:
                if schema_id not in self._parsed and schema_id not in self._refused:
                    try:
                        self._parsed[schema_id] = self._fetch(schema_id)
                    except InvalidWriterSchemaError as error:
                        self._refused[schema_id] = (str(error), error.reason)
                parsed = self._parsed.get(schema_id)
        if parsed is None:
            message, reason = self._refused[schema_id]
            raise InvalidWriterSchemaError(message, reason=reason)  # a fresh one: no traceback
        return parsed

    def _fetch(self, schema_id: int) -> ParsedSchema:
        try:
            schema = self.client.get_schema(schema_id)
        except SchemaRegistryError as error:
            if error.http_status_code == 404:
                raise UnknownSchemaError(f"schema id {schema_id} is not in the registry") from None
            raise RegistryUnavailableError(
                f"schema registry answered {error.http_status_code} for schema id {schema_id}",
                service="schema_registry",
                status=error.http_status_code,
            ) from None
        except (httpx.HTTPError, ValueError) as error:
            # Unreachable, or an answer that is not the registry's (a proxy's HTML page):
            # the registry is not usable now; the record is not at fault.
            raise RegistryUnavailableError(
                f"schema registry unusable: {type(error).__name__}", service="schema_registry"
            ) from None
        if not schema.schema_str:
            raise RegistryUnavailableError(
                f"schema registry answered no schema text for id {schema_id}",
                service="schema_registry",
            )
        if schema.schema_type not in (None, "AVRO"):
            raise InvalidWriterSchemaError(
                f"schema id {schema_id} is {str(schema.schema_type)[:40]}, not Avro"
            )
        return parse_writer_schema(schema.schema_str, schema_id=schema_id)


def registry_client(
    url: str, *, api_key: str | None = None, api_secret: str | None = None
) -> SchemaRegistryClient:
    """A registry client with bounded retries, so a registry outage surfaces quickly."""
    conf: dict[str, Any] = {"url": url, "timeout": 10, "max.retries": 2}
    if api_key:
        conf["basic.auth.user.info"] = f"{api_key}:{api_secret or ''}"
    return SchemaRegistryClient(conf)


# ---------------------------------------------------------------------------- decoding


_CLOUD_EVENT_HEADERS: Final = frozenset({"ce_type", "ce_id", "ce_time", "ce_source"})


def _cloud_event_headers(record: Record) -> dict[str, list[bytes]]:
    """The values of each CloudEvent header ``event_meta`` reads, in one pass."""
    found: dict[str, list[bytes]] = {}
    for name, value in record.headers:
        if name in _CLOUD_EVENT_HEADERS:
            found.setdefault(name, []).append(value)
    return found


def _single_header(headers: Mapping[str, list[bytes]], name: str) -> str:
    values = headers.get(name, ())
    if not values:
        raise HeaderError(f"header {name} is missing", reason=f"missing_{name}")
    if len(values) > 1:
        raise HeaderError(f"header {name} appears {len(values)} times", reason=f"duplicate_{name}")
    try:
        text = values[0].decode("utf-8")
    except UnicodeDecodeError:
        raise HeaderError(f"header {name} is not UTF-8", reason=f"bad_{name}") from None
    if not text:
        raise HeaderError(f"header {name} is empty", reason=f"missing_{name}")
    return text


def _optional_header(headers: Mapping[str, list[bytes]], name: str) -> str:
    values = headers.get(name)
    return values[0].decode("utf-8", errors="replace") if values else ""


def event_meta(record: Record) -> EventMeta:
    """Read and check the CloudEvent headers: ``ce_type`` exactly once and known, ``ce_id``."""
    headers = _cloud_event_headers(record)
    type_name = _single_header(headers, "ce_type")
    try:
        event_type = EventType(type_name)
    except ValueError:
        raise UnknownEventTypeError(f"ce_type {type_name!r} is not consumed here") from None
    event_id = _single_header(headers, "ce_id")
    time_text = _optional_header(headers, "ce_time")
    try:
        time = parse_time(time_text, what="ce_time") if time_text else None
    except InvalidEventError:
        time = None  # metadata only (event age); a bad ce_time does not poison the event
    return EventMeta(
        id=event_id, type=event_type, source=_optional_header(headers, "ce_source"), time=time
    )


def split_frame(value: bytes | None) -> tuple[int, bytes]:
    """Split a Confluent-framed value into (schema id, Avro body)."""
    if not value:
        raise FramingError("value is empty", reason="empty_value")
    if len(value) < FRAME_HEADER_SIZE:
        raise FramingError(f"value has {len(value)} bytes, fewer than the 5-byte frame header")
    if value[0] != MAGIC_BYTE:
        raise FramingError(f"magic byte is {value[0]}, not 0", reason="bad_magic_byte")
    return int.from_bytes(value[1:FRAME_HEADER_SIZE], "big"), value[FRAME_HEADER_SIZE:]


class _Body(io.BytesIO):
    """An Avro body whose every read must be served in full.

    fastavro skips a float, double, boolean or fixed by reading and ignoring what comes
    back, so at the end of the body it would go on "skipping" an array of them for as
    many items as a block count claims (up to 2^63). Here a short read raises instead, so
    each item that should consume a byte does, or decoding stops (see ``writer_schema``).
    """

    def read(self, size: int | None = -1, /) -> bytes:
        """Exactly ``size`` bytes; raises ``EOFError`` for fewer or a negative size."""
        if size is None or size < 0:
            raise EOFError("the record gives a negative length")
        data = super().read(size)
        if len(data) != size:
            raise EOFError(f"the body ends before the {size} bytes the record says follow")
        return data


_PAD: Final = b"\0"
"""Appended to a body read from a plain buffer: a read that crosses the body's end moves past
it, so where the record ended tells a short read from a complete record."""


@dataclass(frozen=True, slots=True)
class _Plan:
    """How to decode the records of one schema id as one event type, decided once."""

    writer: ParsedSchema
    reader: ParsedSchema | None  # None: the writer is the reader, nothing to resolve
    checked: bool  # every read through ``_Body`` (the schema repeats: arrays, maps)


def _same_schema(writer: ParsedSchema, reader: ParsedSchema) -> bool:
    """True when resolving ``writer`` against ``reader`` changes nothing (same canonical form).

    Parsing Canonical Form keeps names, types, fields in order, symbols, items, values and
    sizes, and drops what resolution reads only when they differ (defaults, aliases, docs).
    Logical types are dropped from writer schemas and declared by no reader schema.
    """
    try:
        return bool(to_parsing_canonical_form(writer) == to_parsing_canonical_form(reader))
    except Exception:  # noqa: BLE001 - an odd (still bounded) writer simply gets resolved
        return False


class Decoder:
    """Decodes records into events; built once at start-up, used from the poll thread.

    The first record of each (schema id, event type) fixes its ``_Plan``: no resolution
    when the writer schema is the reader schema (the registry holds the producer's copy of
    the same schema: the usual case), and a plain buffer instead of ``_Body``'s checked
    reads when the writer schema's work is bounded by the schema alone
    (``writer_schema.fixed_steps``). Either saves about a third of the decoding time.
    """

    def __init__(
        self, writer_schemas: WriterSchemas, reader_schemas: Mapping[EventType, ParsedSchema]
    ) -> None:
        self._writers = writer_schemas
        self._readers = reader_schemas
        self._plans: dict[tuple[int, EventType], _Plan] = {}
        self._local_plans: dict[EventType, _Plan] = {}

    def decode(self, record: Record) -> Event:
        """Return the typed event of ``record``.

        Raises a ``DecodeError`` subclass for poison input and ``RegistryUnavailableError``
        when the writer schema cannot be fetched now.
        """
        meta = event_meta(record)
        data = self.decode_value(record.value, meta.type)
        return build_event(meta, data)

    def decode_value(self, value: bytes | None, event_type: EventType) -> Mapping[str, Any]:
        """Decode a framed Avro value into the reader schema's dict for ``event_type``."""
        schema_id, body = split_frame(value)
        plan = self._plans.get((schema_id, event_type)) or self._plan(schema_id, event_type)
        stream = _Body(body) if plan.checked else io.BytesIO(body + _PAD)
        try:
            data = fastavro.schemaless_reader(stream, plan.writer, plan.reader)
        except Exception as error:  # noqa: BLE001 - on a hostile body fastavro raises anything
            raise AvroDecodeError(
                f"Avro body does not decode with schema id {schema_id}: "
                f"{type(error).__name__}: {str(error)[:200]}"
            ) from None
        end = stream.tell()
        if end > len(body):  # a plain buffer's read went past the body (into the pad)
            raise AvroDecodeError(
                f"Avro body does not decode with schema id {schema_id}: "
                "EOFError: the body ends before the record does"
            )
        if end != len(body):
            raise AvroDecodeError(
                f"{len(body) - end} trailing bytes after the Avro record",
                reason="trailing_bytes",
            )
        if not isinstance(data, Mapping):
            raise AvroDecodeError("Avro body is not a record")
        return data

    def _plan(self, schema_id: int, event_type: EventType) -> _Plan:
        """Decide, once, how records of ``schema_id`` decode as ``event_type``.

        Raises what ``WriterSchemas.get`` raises; nothing is remembered then.
        """
        reader = self._readers[event_type]
        writer = self._writers.get(schema_id)
        if writer is None:  # no registry: the reader schema stands in, whatever the id says
            local = self._local_plans.get(event_type)
            if local is None:
                local = self._local_plans[event_type] = _Plan(
                    writer=reader, reader=None, checked=fixed_steps(reader) is None
                )
            return local  # not kept by id: any 4 bytes are an id, and poison may carry many
        plan = _Plan(
            writer=writer,
            reader=None if _same_schema(writer, reader) else reader,
            checked=fixed_steps(writer) is None,
        )
        self._plans[schema_id, event_type] = plan  # ids the registry accepted: a few
        return plan
