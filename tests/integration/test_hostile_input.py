"""Hostile input through the real path: broker, Apicurio registry, the worker as a process.

Each of these records used to stop the worker: a date with no UTC form (OverflowError in
apply and in dry-run, a crash loop), a registry schema fastavro cannot parse (TypeError,
KeyError, RecursionError), one whose decoding never ends (the poll thread spins for ever)
and a recursive one (a segfault). Each is now dead-lettered at once with its reason, and the
event behind it is applied.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from consumer.deadletter.records import context_of
from consumer.events import EventType
from consumer.wire import Record
from tests.fakes.openedx import FakeOpenEdx
from tests.integration.conftest import Stack
from tests.support.hostile import (
    CRASH_SCHEMAS,
    HANG_BODY,
    HANG_SCHEMA,
    LINKED_LIST_BODY,
    LINKED_LIST_SCHEMA,
)
from tests.support.kafka import produce_raw, read_records
from tests.support.lms import LmsProducer, catalog_data, certificate_data
from tests.support.registry import register_raw_schema
from tests.support.worker import WorkerProcess, committed_offsets, end_offsets, worker_env

pytestmark = pytest.mark.integration

CREATED = EventType.CERTIFICATE_CREATED
CATALOG = EventType.CATALOG_INFO_CHANGED


@pytest.fixture
def one_partition(stack: Stack) -> str:
    """A fresh one-partition topic, so the good event is behind the poison."""
    return stack.create_topic(f"it-hostile-{uuid.uuid4().hex[:8]}", partitions=1)


def run_worker(
    stack: Stack, fake: FakeOpenEdx | None, topic: str, tmp_path: Path, group: str
) -> WorkerProcess:
    """Run the worker until it is idle; it must exit 0 (a hang or a crash fails here)."""
    env = worker_env(stack.bootstrap_servers, stack.registry_url, fake, topics=[topic], group=group)
    worker = WorkerProcess(env, ["run", "--stop-when-idle", "2"], tmp_path, group)
    assert worker.wait(timeout=120) == 0, worker.tail()
    return worker


def learner_behind(fake: FakeOpenEdx, lms: LmsProducer, topic: str) -> str:
    """Publish one good certificate event after the poison; return its event id."""
    tag = uuid.uuid4().hex[:6]
    run = f"course-v1:Hostile{tag}+C1+2026_T1"
    fake.add_course_run(run, modes=("audit", "verified"))
    fake.add_user(f"learner-{tag}", 31_337)
    event_id = lms.send(
        CREATED,
        certificate_data(user_id=31_337, username=f"learner-{tag}", course_key=run),
        topic,
    )
    lms.flush()
    return event_id


def applied(fake: FakeOpenEdx) -> set[str]:
    return {
        record.request_id
        for record in fake.writes(endpoint="credentials_post", successful=True)
        if record.request_id
    }


def dead_letters(stack: Stack, topic: str, count: int) -> list[Record]:
    return read_records(stack.bootstrap_servers, f"{topic}.dlq", count)


def assert_fully_committed(stack: Stack, group: str, topic: str) -> None:
    committed = committed_offsets(stack.bootstrap_servers, group, topic, 1)
    assert committed == end_offsets(stack.bootstrap_servers, topic, 1)


def produce_with_schema_id(
    stack: Stack, topic: str, schema_id: int, body: bytes, name: str
) -> None:
    value = b"\x00" + schema_id.to_bytes(4, "big") + body
    headers = [("ce_type", CREATED.encode()), ("ce_id", f"hostile-{name}".encode())]
    produce_raw(stack.bootstrap_servers, topic, value, headers=headers)


def register_valid_schema(stack: Stack, text: str) -> int:
    """Register through the Confluent-compatible API, as a producer's serializer would."""
    with SchemaRegistryClient({"url": stack.registry_url, "timeout": 20}) as client:
        return int(
            client.register_schema(f"hostile-{uuid.uuid4().hex}-value", Schema(text, "AVRO"))
        )


# ----------------------------------------------------------------------------- dates


def test_a_catalog_date_with_no_utc_form_is_dead_lettered_and_the_next_event_applied(
    stack: Stack, lms: LmsProducer, fake: FakeOpenEdx, one_partition: str, tmp_path: Path
) -> None:
    """Studio-shaped events with year-0 and year-10000 UTC dates: dead letters, not a crash."""
    topic = one_partition
    run = f"course-v1:Dates{uuid.uuid4().hex[:6]}+C1+2026_T1"
    fake.add_course_run(run)
    bad = [
        lms.send(CATALOG, catalog_data(course_key=run, end="0001-01-01T00:00:00+05:00"), topic),
        lms.send(CATALOG, catalog_data(course_key=run, start="9999-12-31T23:59:59-05:00"), topic),
    ]
    good = learner_behind(fake, lms, topic)

    run_worker(stack, fake, topic, tmp_path, group := f"dates-{uuid.uuid4().hex[:8]}")

    dead = dead_letters(stack, topic, 2)
    assert [record.header("ce_id")[0].decode() for record in dead] == bad
    for record, field in zip(dead, ["end", "start"], strict=True):
        context = context_of(record.headers)
        assert (context["stage"], context["class"], context["reason"]) == (
            "decode",
            "InvalidEventError",
            "date_out_of_range",
        )
        assert f"schedule_data.{field} has no UTC form" in context["message"]
    assert good in applied(fake)
    assert_fully_committed(stack, group, topic)


def test_a_date_with_no_utc_form_does_not_stop_a_dry_run(
    stack: Stack, lms: LmsProducer, one_partition: str, tmp_path: Path
) -> None:
    """The dry run crashed on the same OverflowError; now it logs the poison and goes on."""
    run = f"course-v1:DryDates{uuid.uuid4().hex[:6]}+C1+2026_T1"
    lms.send(CATALOG, catalog_data(course_key=run, end="0001-01-01T00:00:00+05:00"), one_partition)
    lms.send(CATALOG, catalog_data(course_key=run), one_partition)
    lms.flush()

    worker = run_worker(stack, None, one_partition, tmp_path, f"dry-{uuid.uuid4().hex[:8]}")

    poison = worker.events("record_undecodable")
    assert [line["reason"] for line in poison] == ["date_out_of_range"]
    commands = [json.loads(line) for line in worker.out_path.read_text().splitlines()]
    assert [command["command"] for command in commands] == ["sync_certificate_available_date"]


# ----------------------------------------------------------------------------- registry schemas


def test_a_writer_schema_whose_decoding_would_never_end_is_dead_lettered(
    stack: Stack, lms: LmsProducer, fake: FakeOpenEdx, one_partition: str, tmp_path: Path
) -> None:
    """The array<null> schema and its 14-byte body kept the poll thread busy for ever."""
    schema_id = register_valid_schema(stack, HANG_SCHEMA)
    produce_with_schema_id(stack, one_partition, schema_id, HANG_BODY, "hang")
    good = learner_behind(fake, lms, one_partition)

    run_worker(stack, fake, one_partition, tmp_path, group := f"hang-{uuid.uuid4().hex[:8]}")

    (dead,) = dead_letters(stack, one_partition, 1)
    context = context_of(dead.headers)
    assert (context["stage"], context["class"], context["reason"]) == (
        "decode",
        "InvalidWriterSchemaError",
        "unbounded_writer_schema",
    )
    assert f"schema id {schema_id}" in context["message"]
    assert good in applied(fake)
    assert_fully_committed(stack, group, one_partition)


def test_registry_schemas_that_crashed_the_worker_are_dead_lettered(
    stack: Stack, lms: LmsProducer, fake: FakeOpenEdx, one_partition: str, tmp_path: Path
) -> None:
    """Unparseable texts (TypeError, KeyError) and a linked list (SIGSEGV): poison, twice each."""
    cases = {
        name: (register_raw_schema(stack.registry_url, CRASH_SCHEMAS[name]), b"", reason)
        for name, reason in [
            ("a number", "invalid_writer_schema"),
            ("null", "invalid_writer_schema"),
            ("an array without items", "invalid_writer_schema"),
            ("a type nested in a type", "invalid_writer_schema"),
        ]
    }
    linked_list = register_valid_schema(stack, LINKED_LIST_SCHEMA)
    cases["a linked list"] = (linked_list, LINKED_LIST_BODY, "unbounded_writer_schema")
    for name, (schema_id, body, _reason) in cases.items():
        for copy in (1, 2):  # the second of an id gets the remembered answer
            produce_with_schema_id(stack, one_partition, schema_id, body, f"{name}-{copy}")
    good = learner_behind(fake, lms, one_partition)

    run_worker(stack, fake, one_partition, tmp_path, group := f"crash-{uuid.uuid4().hex[:8]}")

    dead = dead_letters(stack, one_partition, 2 * len(cases))
    for record in dead:
        name = record.header("ce_id")[0].decode().removeprefix("hostile-")[:-2]
        context = context_of(record.headers)
        assert (context["stage"], context["class"], context["reason"]) == (
            "decode",
            "InvalidWriterSchemaError",
            cases[name][2],
        )
        assert f"schema id {cases[name][0]}" in context["message"]
    assert good in applied(fake)
    assert_fully_committed(stack, group, one_partition)
