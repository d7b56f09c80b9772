"""``dlq inspect``'s summary: what it shows, and that no record of any shape can break it."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumer.deadletter.inspect import DlqSummary, course_key_of
from consumer.deadletter.records import HEADER_PREFIX
from consumer.wire import Record
from tests.support.hostile import varint

RUN = "course-v1:OrgX+DemoX+1T2024"
FRAME = b"\x00\x00\x00\x00\x07"


@pytest.mark.parametrize(
    ("key", "shown"),
    [
        pytest.param(None, "", id="no key"),
        pytest.param(b"", "", id="empty"),
        pytest.param(FRAME + varint(len(RUN)) + RUN.encode(), RUN, id="framed Avro string"),
        pytest.param(RUN.encode(), RUN, id="raw UTF-8"),
        pytest.param(b"\xffkey", "\ufffdkey", id="raw, not UTF-8"),
    ],
)
def test_course_key_of_shows_the_key_as_text(key: bytes | None, shown: str) -> None:
    """The LMS's framed Avro string key is unwrapped; any other key is shown as UTF-8."""
    assert course_key_of(key) == shown


@pytest.mark.parametrize(
    "tail",
    [
        pytest.param(b"\x80", id="truncated varint"),
        pytest.param(b"\x81\x80\x80", id="varint cut short"),
        pytest.param(varint(-3), id="negative length"),
        pytest.param(varint(40) + b"short", id="length past the end"),
        pytest.param(varint(2) + b"\xff\xfe", id="not UTF-8"),
    ],
)
def test_course_key_of_a_broken_framed_key_is_shown_raw(tail: bytes) -> None:
    """A framed key with a truncated varint raised IndexError; now it is shown as it is."""
    assert course_key_of(FRAME + tail) == (FRAME + tail).decode("utf-8", errors="replace")


def context(**fields: str) -> tuple[tuple[str, bytes], ...]:
    return tuple((HEADER_PREFIX + name, value.encode()) for name, value in fields.items())


def test_summary_counts_and_samples() -> None:
    """Counts by stage, error and source; the oldest and newest failure; samples without values."""
    summary = DlqSummary(topic="t.dlq")
    headers = (
        *context(
            topic="t",
            partition="0",
            offset="9",
            stage="decode",
            reason="date_out_of_range",
            last_failure="2026-01-02T00:00:00.000+00:00",
        ),
        ("ce_type", b"org.openedx.x"),
        ("ce_id", b"id-1"),
    )
    summary.add(Record("t.dlq", 0, 3, RUN.encode(), b"secret value", headers), samples=5)
    summary.add(Record("t.dlq", 1, 4, None, None, ()), samples=5)
    assert summary.to_json()["by_stage"] == {"decode": 1, "?": 1}
    assert summary.to_json()["oldest_failure"] == "2026-01-02T00:00:00.000+00:00"
    assert summary.samples[0]["course_key"] == RUN
    assert summary.samples[0]["source"] == "t:0:9"
    assert "secret value" not in summary.render()
    assert "secret value" not in json.dumps(summary.to_json())


keys = st.one_of(
    st.none(),
    st.binary(max_size=24),
    st.binary(max_size=12).map(lambda tail: FRAME + tail),
    st.sampled_from([-1, 0, 1, 2**31, 2**62, -(2**63)]).map(lambda n: FRAME + varint(n)),
)
header_names = st.one_of(
    st.sampled_from(["ce_type", "ce_id", "ce_time"]),
    st.sampled_from(
        [
            "topic",
            "partition",
            "offset",
            "stage",
            "class",
            "reason",
            "message",
            "attempts",
            "last_failure",
            "first_failure",
        ]
    ).map(lambda name: HEADER_PREFIX + name),
    st.text(max_size=12),
)
records = st.builds(
    Record,
    topic=st.text(max_size=8),
    partition=st.integers(min_value=-1, max_value=2**31),
    offset=st.integers(min_value=-2, max_value=2**63),
    key=keys,
    value=st.none() | st.binary(max_size=24),
    headers=st.lists(st.tuples(header_names, st.binary(max_size=16)), max_size=8).map(tuple),
    timestamp_ms=st.none() | st.integers(),
)


@settings(max_examples=300)
@given(st.lists(records, max_size=6), st.integers(min_value=0, max_value=3))
def test_property_no_record_breaks_the_summary(dead: list[Record], samples: int) -> None:
    """Any key, value and headers (missing, repeated, not UTF-8): add, render and to_json work."""
    summary = DlqSummary(topic="t.dlq")
    for record in dead:
        summary.add(record, samples=samples)
    assert summary.total == len(dead)
    assert len(summary.samples) == min(samples, len(dead))
    assert summary.render().startswith(f"dead-letter topic t.dlq: {len(dead)} records")
    assert json.loads(json.dumps(summary.to_json()))["total"] == len(dead)
