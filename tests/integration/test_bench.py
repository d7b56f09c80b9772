"""The benchmark writes exactly what the LMS writes, and its contenders run on the real broker."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from bench.contenders import main as contender
from bench.lms import LmsEncoder, produce, spec_data
from bench.workload import (
    CATALOG,
    CREATED,
    REVOKED,
    CatalogSpec,
    CertificateSpec,
    Spec,
    Workload,
    generate,
    run_end,
    run_key,
)
from tests.integration.conftest import Stack
from tests.support.kafka import read_records
from tests.support.lms import LmsProducer

pytestmark = pytest.mark.integration


def test_the_bench_encoder_writes_the_bytes_of_the_lms_producer(
    stack: Stack, topic: str, lms: LmsProducer
) -> None:
    """Key, value and headers are byte for byte those of the LMS's own producer.

    edx-event-bus-kafka's producer, as ``tests.support.lms`` drives it, for the same event id
    and time, one event of each type.
    """
    specs: list[Spec] = [
        CertificateSpec(CREATED, 1001, run_key(3), "verified"),
        CertificateSpec(REVOKED, 1002, run_key(7), "honor"),
        CatalogSpec(CATALOG, run_key(5), "self", run_end(5)),
    ]
    when = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
    ids = [uuid.uuid1() for _ in specs]
    for spec, event_id in zip(specs, ids, strict=True):
        _, data = spec_data(spec)
        lms.send(spec.event_type, data, topic, event_id=event_id, time=when)
    lms.flush()
    written = {
        dict(record.headers)["ce_id"].decode(): record
        for record in read_records(stack.bootstrap_servers, topic, len(specs))
    }
    encoder = LmsEncoder(stack.bootstrap_servers, stack.registry_url, topic)
    for spec, event_id in zip(specs, ids, strict=True):
        key, value, headers = encoder.encode(spec, event_id=event_id, time=when)
        record = written[str(event_id)]
        assert (key, value) == (record.key, record.value), spec.event_type
        assert tuple(headers.items()) == record.headers, spec.event_type


def test_the_ceilings_read_a_produced_workload_to_its_end(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each ceiling (consume, decode, route) reads all of a small workload, none undecodable."""
    workload = Workload(events=300, partitions=3)
    name = stack.create_topic(f"it-bench-{uuid.uuid4().hex[:8]}", partitions=3)
    assert produce(stack.bootstrap_servers, stack.registry_url, name, generate(workload)) == 300
    common = ["--topic", name, "--events", "300", "--bootstrap", stack.bootstrap_servers]
    assert contender(["consume", *common]) == 0
    assert contender(["decode", *common, "--registry", stack.registry_url]) == 0
    assert contender(["route", *common, "--registry", stack.registry_url]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert '"events": 300' in lines[0]
    assert '"undecodable": 0' in lines[1]
    assert '"events": 300' in lines[2]
    assert '"undecodable": 0' in lines[2]  # every ce_type routed to its reader schema
