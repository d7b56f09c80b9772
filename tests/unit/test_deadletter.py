"""Dead-letter records: original bytes and headers kept, context headers readable by any tool."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest
from confluent_kafka import KafkaError, Message

from consumer import __version__
from consumer.deadletter import producer as producer_module
from consumer.deadletter.producer import DeadLetterProducer
from consumer.deadletter.records import (
    HEADER_PREFIX,
    context_headers,
    context_of,
    original_headers,
)
from consumer.outcomes import Failed
from consumer.wire import Headers, Record

DOCUMENTED = (
    "topic",
    "partition",
    "offset",
    "timestamp",
    "group",
    "stage",
    "class",
    "reason",
    "message",
    "attempts",
    "first_failure",
    "last_failure",
    "worker_version",
)
NUMERIC = ("partition", "offset", "timestamp", "attempts")
TIMES = ("first_failure", "last_failure")
FIRST = datetime(2024, 3, 1, 10, 0, 0, 250000, tzinfo=UTC)
LAST = FIRST + timedelta(seconds=95, milliseconds=500)
ORIGINAL: Headers = (
    ("ce_type", b"org.openedx.learning.certificate.created.v1"),
    ("ce_id", b"0b7e-11ee"),
    ("traceparent", b"00-abc-def-01"),
    ("ce_id", b"repeated header kept"),
)


def source(headers: Headers = ORIGINAL, timestamp_ms: int | None = 1_709_287_200_000) -> Record:
    return Record(
        topic="prod-learning-certificate-lifecycle",
        partition=7,
        offset=123_456_789_012,
        key=b"\x00\x00\x00\x00\x02\x1ccourse-v1:X+Y+Z",
        value=b"\x00\x00\x00\x00\x01\x02\xff\xfe",
        headers=headers,
        timestamp_ms=timestamp_ms,
    )


def failure(**changes: Any) -> Failed:
    values: dict[str, Any] = {
        "stage": "apply",
        "error_class": "PermanentError",
        "reason": "http_400",
        "message": "credentials rejected the award: course run ünknown",
        "attempts": 6,
        "first_failure": FIRST.timestamp(),
        "last_failure": LAST.timestamp(),
    }
    values.update(changes)
    return Failed(**values)


def as_text(headers: Headers) -> dict[str, str]:
    """The context headers as text, prefix stripped; fails on a duplicate or non-UTF-8 value."""
    out: dict[str, str] = {}
    for name, value in headers:
        assert name.startswith(HEADER_PREFIX)
        short = name[len(HEADER_PREFIX) :]
        assert short not in out, f"duplicate header {name}"
        out[short] = value.decode("utf-8")
    return out


# ---------------------------------------------------------------------------- context headers


def test_every_documented_header_is_present_once() -> None:
    """context_headers writes exactly the documented headers, each once, under the prefix."""
    headers = context_headers(source(), failure(), group="credentials-consumer")
    assert HEADER_PREFIX == "credentials_consumer.error."
    assert tuple(as_text(headers)) == DOCUMENTED


def test_context_header_values() -> None:
    """Each context header carries its value as UTF-8 text."""
    text = as_text(context_headers(source(), failure(), group="credentials-consumer"))
    assert text == {
        "topic": "prod-learning-certificate-lifecycle",
        "partition": "7",
        "offset": "123456789012",
        "timestamp": "1709287200000",
        "group": "credentials-consumer",
        "stage": "apply",
        "class": "PermanentError",
        "reason": "http_400",
        "message": "credentials rejected the award: course run ünknown",
        "attempts": "6",
        "first_failure": "2024-03-01T10:00:00.250+00:00",
        "last_failure": "2024-03-01T10:01:35.750+00:00",
        "worker_version": __version__,
    }


@pytest.mark.parametrize(
    ("timestamp_ms", "attempts", "partition"),
    [(None, 1, 0), (0, 1, 0), (1_709_287_200_000, 1000, 511)],
    ids=["no timestamp", "zero", "large"],
)
def test_numbers_are_plain_decimal(timestamp_ms: int | None, attempts: int, partition: int) -> None:
    """Partition, offset, timestamp and attempts are decimal integers (-1 for no timestamp)."""
    record = Record(
        topic="t",
        partition=partition,
        offset=0,
        key=None,
        value=None,
        timestamp_ms=timestamp_ms,
    )
    text = as_text(context_headers(record, failure(attempts=attempts), group="g"))
    for name in NUMERIC:
        assert re.fullmatch(r"-?[0-9]+", text[name]), (name, text[name])
    assert int(text["timestamp"]) == (timestamp_ms if timestamp_ms is not None else -1)
    assert int(text["attempts"]) == attempts
    assert int(text["partition"]) == partition


def test_failure_times_are_iso_utc_with_milliseconds() -> None:
    """first_failure and last_failure are ISO-8601 in UTC that parse back to the same instant."""
    text = as_text(context_headers(source(), failure(), group="g"))
    for name, expected in (("first_failure", FIRST), ("last_failure", LAST)):
        parsed = datetime.fromisoformat(text[name])
        assert parsed.utcoffset() == timedelta(0)
        assert parsed == expected
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", text[name])


@pytest.mark.parametrize("stage", ["decode", "handle", "apply"])
def test_stage_is_written_as_given(stage: str) -> None:
    """The stage header is one of decode, handle or apply, as the failure says."""
    text = as_text(context_headers(source(), failure(stage=stage), group="g"))
    assert text["stage"] == stage


# ---------------------------------------------------------------------------- reading back


def test_context_of_reads_back_what_context_headers_wrote() -> None:
    """context_of(original + context) returns the context as text and ignores other headers."""
    context = context_headers(source(), failure(), group="credentials-consumer")
    read = context_of(ORIGINAL + context)
    assert read == as_text(context)
    assert set(read) == set(DOCUMENTED)


def test_context_of_tolerates_bad_bytes() -> None:
    """A context header that is not UTF-8 (written by another tool) is read with replacement."""
    read = context_of(((HEADER_PREFIX + "message", b"caf\xe9"), ("other", b"\xff")))
    assert read == {"message": "caf\ufffd"}


def test_context_of_records_without_context_is_empty() -> None:
    """A record that was never dead-lettered has no context."""
    assert context_of(ORIGINAL) == {}


def test_original_headers_strip_only_context_headers() -> None:
    """original_headers drops the namespace's headers and keeps every other one, in order."""
    earlier = context_headers(source(), failure(stage="decode"), group="old-group")
    mixed = ORIGINAL[:2] + earlier + ORIGINAL[2:]
    assert original_headers(mixed) == ORIGINAL


def test_original_headers_keep_look_alike_names() -> None:
    """Headers that merely resemble the namespace (no trailing dot, other case) are kept."""
    headers: Headers = (
        ("credentials_consumer.errors", b"1"),
        ("Credentials_Consumer.error.x", b"2"),
    )
    assert original_headers(headers) == headers


# ---------------------------------------------------------------------------- producing


class FakeProducer:
    """Stands in for confluent_kafka.Producer: records config and produced messages."""

    instances: ClassVar[list[FakeProducer]] = []

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.produced: list[dict[str, Any]] = []
        self.full = False
        self.polled: list[float] = []
        self.flushed: list[float] = []
        FakeProducer.instances.append(self)

    def produce(self, topic: str, **kwargs: Any) -> None:
        if self.full:
            raise BufferError("Local: Queue full")
        self.produced.append({"topic": topic, **kwargs})

    def poll(self, timeout: float) -> int:
        self.polled.append(timeout)
        return 0

    def flush(self, timeout: float) -> int:
        self.flushed.append(timeout)
        return 3


@pytest.fixture
def producer(monkeypatch: pytest.MonkeyPatch) -> tuple[DeadLetterProducer, FakeProducer]:
    FakeProducer.instances.clear()
    monkeypatch.setattr(producer_module, "Producer", FakeProducer)
    sink = DeadLetterProducer(
        {"bootstrap.servers": "kafka:9092", "security.protocol": "SASL_SSL"},
        topic_for=lambda topic: f"{topic}.dlq",
        group="credentials-consumer",
    )
    (fake,) = FakeProducer.instances
    return sink, fake


Delivered = list[KafkaError | None]


def collector() -> tuple[Delivered, Callable[[KafkaError | None], None]]:
    seen: Delivered = []
    return seen, seen.append


def test_producer_is_idempotent_with_acks_all(
    producer: tuple[DeadLetterProducer, FakeProducer],
) -> None:
    """The dead-letter producer keeps the client settings and adds acks=all and idempotence."""
    _, fake = producer
    assert fake.config["bootstrap.servers"] == "kafka:9092"
    assert fake.config["security.protocol"] == "SASL_SSL"
    assert fake.config["acks"] == "all"
    assert fake.config["enable.idempotence"] is True


def test_send_keeps_key_value_and_original_headers(
    producer: tuple[DeadLetterProducer, FakeProducer],
) -> None:
    """The dead-letter record has the same key and value bytes and the original headers first."""
    sink, fake = producer
    _, delivered = collector()
    assert sink.send(source(), failure(), delivered)  # True: ``delivered`` will report
    (message,) = fake.produced
    assert message["topic"] == "prod-learning-certificate-lifecycle.dlq"
    assert message["key"] == source().key
    assert message["value"] == source().value
    headers = tuple(message["headers"])
    assert headers[: len(ORIGINAL)] == ORIGINAL
    assert as_text(headers[len(ORIGINAL) :])["group"] == "credentials-consumer"


def test_re_dead_lettering_replaces_earlier_context(
    producer: tuple[DeadLetterProducer, FakeProducer],
) -> None:
    """A redriven record that fails again carries only the new context, once, not the old one."""
    sink, fake = producer
    earlier = context_headers(source(), failure(stage="decode", attempts=1), group="old-group")
    redriven = Record(
        topic="prod-learning-certificate-lifecycle",
        partition=2,
        offset=9,
        key=b"k",
        value=b"v",
        headers=ORIGINAL + earlier,
        timestamp_ms=None,
    )
    sink.send(redriven, failure(stage="apply", attempts=4), collector()[1])
    headers = tuple(fake.produced[0]["headers"])
    assert original_headers(headers) == ORIGINAL
    context = as_text(headers[len(ORIGINAL) :])  # fails on any duplicate header
    assert context["group"] == "credentials-consumer"
    assert context["stage"] == "apply"
    assert context["attempts"] == "4"
    assert context["partition"] == "2"
    assert context["timestamp"] == "-1"
    assert context_of(headers) == context


def test_delivery_report_is_passed_on(producer: tuple[DeadLetterProducer, FakeProducer]) -> None:
    """delivered() gets None on acknowledgement and the KafkaError on a failed delivery."""
    sink, fake = producer
    seen, delivered = collector()
    sink.send(source(), failure(), delivered)
    sink.send(source(), failure(), delivered)
    on_first = fake.produced[0]["on_delivery"]
    on_second = fake.produced[1]["on_delivery"]
    message = Message(topic="t", partition=0, offset=0)
    on_first(None, message)
    error = KafkaError(KafkaError._MSG_TIMED_OUT)
    on_second(error, message)
    assert seen == [None, error]


def test_full_local_queue_is_reported_as_a_failed_delivery(
    producer: tuple[DeadLetterProducer, FakeProducer],
) -> None:
    """A BufferError from produce() becomes delivered(KafkaError _QUEUE_FULL) at once."""
    sink, fake = producer
    fake.full = True
    seen, delivered = collector()
    sink.send(source(), failure(), delivered)
    (error,) = seen
    assert error is not None
    assert error.code() == KafkaError._QUEUE_FULL
    assert fake.produced == []


def test_poll_and_flush_reach_the_producer(
    producer: tuple[DeadLetterProducer, FakeProducer],
) -> None:
    """poll() serves delivery reports and flush() returns how many records remain."""
    sink, fake = producer
    sink.poll(0.5)
    assert sink.flush(2.0) == 3
    assert fake.polled == [0.5]
    assert fake.flushed == [2.0]
