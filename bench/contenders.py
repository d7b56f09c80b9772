"""The benchmark's own contenders, each a process of its own (``python -m bench.contenders``).

- ``consume``: the consume ceiling — a confluent-kafka ``consume()`` loop, nothing decoded.
- ``decode``: the decode ceiling — the same, plus the Confluent framing (magic byte, schema
  id) and fastavro decoding of the value with its writer schema (fetched from the registry
  once per id and parsed once). No reader-schema resolution, no event objects: the least
  any consumer of these records must do.
- ``route``: the route-and-decode ceiling — the decode ceiling plus what any correct
  consumer of this bus must also do: route each record by its ``ce_type`` header (several
  event types share a topic) to the reader schema of its type, and decode into that reader
  schema (fastavro's writer-to-reader resolution). The reader schemas are the worker's own
  (``schemas/``). Still no event objects, no checks beyond fastavro's.
- ``naive``: a consumer shaped like the reference one (edx-event-bus-kafka's
  ``KafkaEventConsumer``): ``poll()`` one record, decode it, run its commands one after the
  other with synchronous HTTP, then ``commit(message=...)`` — asynchronous, as the
  reference calls it — before the next record. Its decoding, rules and requests are the
  worker's own (``consumer.wire``, ``consumer.handlers``, ``consumer.effects``), so it makes
  exactly the requests the worker makes; it has no retries, lanes or concurrency.

Each stops after ``--events`` records and prints one JSON line: the count, and the wall and
CPU clocks (``time.process_time``: every thread of the process) from the moment its
partitions were assigned (fetching starts then) to the moment the last record was done, so
the set-up (imports, the group join) is not counted. The worker is measured over the same
window, from outside (``bench.measure``).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import fastavro
from confluent_kafka import Consumer, Message
from confluent_kafka.schema_registry import SchemaRegistryClient

TIMEOUT = 1800.0


class Clock:
    """Wall and CPU time at the assignment and at the last record."""

    def __init__(self) -> None:
        self.first: tuple[float, float] | None = None
        self.last: tuple[float, float] | None = None

    def start(self) -> None:
        """Mark the assignment (once)."""
        if self.first is None:
            self.first = (time.monotonic(), time.process_time())

    def stop(self) -> None:
        """Mark the end of the work."""
        self.last = (time.monotonic(), time.process_time())

    def report(self, events: int, **extra: object) -> dict[str, object]:
        """The JSON line: events, elapsed wall and CPU seconds between first and last."""
        assert self.first is not None
        assert self.last is not None
        return {
            "events": events,
            "seconds": self.last[0] - self.first[0],
            "cpu_seconds": self.last[1] - self.first[1],
            **extra,
        }


def _consumer(bootstrap: str, topic: str, group: str, clock: Clock) -> Consumer:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic], on_assign=lambda _consumer, _partitions: clock.start())
    return consumer


def _drain(consumer: Consumer, events: int, handle: Callable[[Message], None], clock: Clock) -> int:
    """``consume()`` batches until ``events`` records were handled (or the time runs out)."""
    seen = 0
    deadline = time.monotonic() + TIMEOUT
    while seen < events and time.monotonic() < deadline:
        batch = consumer.consume(num_messages=1000, timeout=1.0)
        for message in batch:
            if message.error() is not None:
                continue
            handle(message)
            seen += 1
    clock.stop()
    return seen


def run_consume(args: argparse.Namespace) -> dict[str, object]:
    """The consume ceiling."""
    clock = Clock()
    consumer = _consumer(args.bootstrap, args.topic, args.group, clock)
    sizes = [0]

    def handle(message: Message) -> None:
        sizes[0] += len(message.value() or b"")

    seen = _drain(consumer, args.events, handle, clock)
    consumer.close()
    return clock.report(seen, value_bytes=sizes[0])


def run_decode(args: argparse.Namespace) -> dict[str, object]:
    """The decode ceiling: framing and fastavro with the writer schema only."""
    return _decode_all(args, lambda _message: None)


def run_route(args: argparse.Namespace) -> dict[str, object]:
    """The route-and-decode ceiling: each record resolved into its ``ce_type``'s reader schema."""
    from consumer.wire import load_reader_schemas  # noqa: PLC0415 - the worker's schemas only

    readers = {str(name).encode(): schema for name, schema in load_reader_schemas().items()}

    def reader_of(message: Message) -> Any:  # noqa: ANN401 - a parsed fastavro schema
        headers = message.headers() or []
        for name, header in headers.items() if isinstance(headers, dict) else headers:
            if name == "ce_type":
                return readers.get(header, False) if isinstance(header, bytes) else False
        return False

    return _decode_all(args, reader_of)


def _decode_all(
    args: argparse.Namespace,
    reader_of: Callable[[Message], Any],
) -> dict[str, object]:
    """Consume and decode every record.

    ``reader_of`` gives a record's reader schema: None decodes with the writer's, False means
    no route (counted as undecodable, as a bad frame is).
    """
    clock = Clock()
    consumer = _consumer(args.bootstrap, args.topic, args.group, clock)
    registry = SchemaRegistryClient({"url": args.registry})
    schemas: dict[int, Any] = {}
    failures = [0]

    def handle(message: Message) -> None:
        reader = reader_of(message)
        value = message.value()
        if reader is False or not isinstance(value, bytes) or len(value) < 5 or value[0] != 0:
            failures[0] += 1
            return
        schema_id = int.from_bytes(value[1:5], "big")
        schema = schemas.get(schema_id)
        if schema is None:
            text = registry.get_schema(schema_id).schema_str or "null"
            schema = schemas[schema_id] = fastavro.parse_schema(json.loads(text))
        fastavro.schemaless_reader(io.BytesIO(value[5:]), schema, reader)

    seen = _drain(consumer, args.events, handle, clock)
    consumer.close()
    registry.close()
    return clock.report(seen, undecodable=failures[0])


def run_naive(args: argparse.Namespace) -> dict[str, object]:
    """The naive consumer: one record at a time, synchronous HTTP, a commit per record."""
    from consumer import config  # noqa: PLC0415 - the worker's own pieces, only here
    from consumer.effects import Effects  # noqa: PLC0415
    from consumer.errors import ConsumerError  # noqa: PLC0415
    from consumer.handlers import make_handler  # noqa: PLC0415
    from consumer.services.bundle import build_services  # noqa: PLC0415
    from consumer.wire import (  # noqa: PLC0415
        Decoder,
        Record,
        RegistryWriterSchemas,
        load_reader_schemas,
        registry_client,
    )

    settings = config.load(os.environ)
    assert settings.services is not None
    registry = registry_client(args.registry)
    decoder = Decoder(RegistryWriterSchemas(registry), load_reader_schemas())
    handler = make_handler(settings.policy)
    services = build_services(settings.services)
    services.start()
    effects = Effects(services, settings.policy)
    clock = Clock()
    consumer = _consumer(args.bootstrap, args.topic, args.group, clock)
    seen = failed = commands = 0
    deadline = time.monotonic() + TIMEOUT
    while seen < args.events and time.monotonic() < deadline:
        message = consumer.poll(1.0)
        if message is None or message.error() is not None:
            continue
        try:
            event = decoder.decode(Record.from_message(message))
            for command in handler(event).commands:
                commands += 1
                effects.apply(command, event.meta.id)
        except ConsumerError:
            failed += 1  # the reference logs and goes on
        consumer.commit(message=message)
        seen += 1
    clock.stop()
    consumer.close()
    services.close()
    registry.close()
    return clock.report(seen, failed=failed, commands=commands)


RUNNERS: dict[str, Callable[[argparse.Namespace], dict[str, object]]] = {
    "consume": run_consume,
    "decode": run_decode,
    "route": run_route,
    "naive": run_naive,
}


def main(argv: list[str] | None = None) -> int:
    """Run one contender; print its JSON line."""
    parser = argparse.ArgumentParser(prog="python -m bench.contenders", description=__doc__)
    parser.add_argument("contender", choices=sorted(RUNNERS))
    parser.add_argument("--topic", required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--group", default=f"bench-{uuid.uuid4().hex[:12]}")
    parser.add_argument("--bootstrap", default=os.environ.get("EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS"))
    parser.add_argument("--registry", default=os.environ.get("EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL"))
    args = parser.parse_args(argv)
    result = RUNNERS[args.contender](args)
    print(json.dumps(result), flush=True)
    return 0 if result["events"] == args.events else 1


if __name__ == "__main__":
    sys.exit(main())
