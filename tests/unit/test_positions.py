"""Times and offsets as operators write them on the command line."""

from __future__ import annotations

import argparse

import pytest

from consumer.errors import UsageError
from consumer.kafka_admin import TopicInfo
from consumer.positions import (
    AtOffsets,
    PartitionOffset,
    _listed,
    parse_datetime,
    parse_offsets,
)


@pytest.mark.parametrize(
    ("text", "millis", "shown"),
    [
        ("2026-03-01T10:00:00Z", 1_772_359_200_000, "2026-03-01T10:00:00.000Z"),
        ("2026-03-01T12:00:00+02:00", 1_772_359_200_000, "2026-03-01T10:00:00.000Z"),
        ("2026-03-01T10:00:00", 1_772_359_200_000, "2026-03-01T10:00:00.000Z"),
        ("2026-03-01", 1_772_323_200_000, "2026-03-01T00:00:00.000Z"),
        ("2026-03-01T10:00:00.250Z", 1_772_359_200_250, "2026-03-01T10:00:00.250Z"),
    ],
)
def test_datetimes_are_iso_8601_in_utc_unless_zoned(text: str, millis: int, shown: str) -> None:
    """Any ISO-8601 form; a time without a zone is UTC; Kafka gets epoch milliseconds."""
    moment = parse_datetime(text)
    assert moment.timestamp_ms == millis
    assert moment.text == shown


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "1700000000", ""])
def test_a_bad_datetime_is_an_argument_error(text: str) -> None:
    """The error is argparse's: a usage message and exit 2."""
    with pytest.raises(argparse.ArgumentTypeError, match="ISO-8601"):
        parse_datetime(text)


def test_offsets_may_name_their_topic() -> None:
    """``P:O`` and ``TOPIC:P:O``, comma separated."""
    assert parse_offsets("0:10, 2:5,other.topic-1:3:0") == AtOffsets(
        (
            PartitionOffset(None, 0, 10),
            PartitionOffset(None, 2, 5),
            PartitionOffset("other.topic-1", 3, 0),
        )
    )


@pytest.mark.parametrize("text", ["0", "0:-1", "a:b", "0:1:2:3", "0:1,", "t t:0:1"])
def test_malformed_offsets_are_argument_errors(text: str) -> None:
    """Anything but [TOPIC:]PARTITION:OFFSET is refused, naming the bad item."""
    with pytest.raises(argparse.ArgumentTypeError, match="PARTITION:OFFSET"):
        parse_offsets(text)


TOPICS = {
    "a": TopicInfo("a", (0, 1, 2), 1),
    "b": TopicInfo("b", (0,), 1),
}


def test_offsets_without_a_topic_need_a_single_topic() -> None:
    """With two topics in play, ``P:O`` is ambiguous and refused with the fix named."""
    with pytest.raises(UsageError, match="TOPIC:PARTITION:OFFSET"):
        _listed(parse_offsets("0:1"), TOPICS)
    assert _listed(parse_offsets("0:1"), {"b": TOPICS["b"]}) == {("b", 0): 1}
    assert _listed(parse_offsets("a:2:7,b:0:1"), TOPICS) == {("a", 2): 7, ("b", 0): 1}


@pytest.mark.parametrize(
    ("text", "message"), [("a:3:0", "no partition 3"), ("c:0:0", "not one of")]
)
def test_offsets_of_partitions_not_in_play_are_refused(text: str, message: str) -> None:
    """A partition the topic lacks, or a topic not in play, is a usage error."""
    with pytest.raises(UsageError, match=message):
        _listed(parse_offsets(text), TOPICS)
