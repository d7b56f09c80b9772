"""The packaged reader schemas are exactly what openedx-events generates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from consumer.events import EventType
from tests.support.lms import configure_django

SCHEMAS = Path(__file__).resolve().parents[2] / "consumer" / "schemas"


def _generated(event_type: str) -> str:
    configure_django()
    from openedx_events.event_bus.avro.serializer import AvroSignalSerializer  # noqa: PLC0415
    from openedx_events.tooling import OpenEdxPublicSignal, load_all_signals  # noqa: PLC0415

    load_all_signals()
    return str(
        AvroSignalSerializer(OpenEdxPublicSignal.get_signal_by_type(event_type)).schema_string()
    )


@pytest.mark.parametrize("event_type", list(EventType), ids=lambda t: t.value)
def test_schema_file_matches_openedx_events(event_type: EventType) -> None:
    """Each schemas/<ce_type>.avsc is the schema openedx-events serializes that event with."""
    packaged = json.loads((SCHEMAS / f"{event_type}.avsc").read_text())
    assert json.dumps(packaged, sort_keys=True) == _generated(event_type)


def test_key_schema_matches_what_the_producer_registers() -> None:
    """The key schema is the course_key field's sub-schema, as edx-event-bus-kafka extracts it."""
    from edx_event_bus_kafka.internal.producer import (  # noqa: PLC0415
        extract_key_schema,
        get_signal_serializer,
    )
    from openedx_events.tooling import OpenEdxPublicSignal  # noqa: PLC0415

    _generated(EventType.CERTIFICATE_CREATED)  # loads the signals
    signal = OpenEdxPublicSignal.get_signal_by_type(EventType.CATALOG_INFO_CHANGED)
    key_schema = extract_key_schema(get_signal_serializer(signal), "catalog_info.course_key")
    packaged = json.loads((SCHEMAS / "key.course_key.avsc").read_text())
    assert json.dumps(packaged, sort_keys=True) == key_schema


def test_every_consumed_event_type_has_a_schema_and_nothing_else_is_packaged() -> None:
    """No stale schema file lingers and none is missing."""
    files = {path.name for path in SCHEMAS.glob("*.avsc")}
    assert files == {f"{event_type}.avsc" for event_type in EventType} | {"key.course_key.avsc"}
