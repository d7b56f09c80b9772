"""Publish events exactly as the LMS and Studio do, for tests and ``make run``.

Nothing here is a re-implementation: the event data goes through openedx-events'
``AvroSignalSerializer`` (via its deserializer, to build the attrs objects the signals
carry), and out through edx-event-bus-kafka's own ``KafkaEventProducer`` — which wraps
confluent-kafka's ``AvroSerializer`` with ``topic_record_subject_name_strategy``, registers
the schemas in the registry, frames key and value, and sets the CloudEvent headers.
edx-event-bus-kafka reads Django settings, so this module configures a minimal set once.
"""

from __future__ import annotations

import logging
import os
import uuid
from datetime import UTC, datetime
from typing import Any

import django
from django.conf import settings

KEY_FIELDS = {
    "certificate": "certificate.course.course_key",
    "catalog_info": "catalog_info.course_key",
}


class _Errors(logging.Handler):
    """edx-event-bus-kafka logs production errors instead of raising; collect them."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def configure_django() -> None:
    """Configure the minimal Django settings openedx-events needs, once per process."""
    if not settings.configured:
        settings.configure(USE_TZ=True)
        django.setup()


def _configure_event_bus(bootstrap_servers: str, registry_url: str) -> None:
    configure_django()
    settings.EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS = bootstrap_servers
    settings.EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL = registry_url


class LmsProducer:
    """A producer of Open edX events that behaves as the LMS's (a test and demo tool)."""

    def __init__(
        self, bootstrap_servers: str | None = None, registry_url: str | None = None
    ) -> None:
        bootstrap_servers = bootstrap_servers or os.environ["EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS"]
        registry_url = registry_url or os.environ["EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL"]
        _configure_event_bus(bootstrap_servers, registry_url)
        from edx_event_bus_kafka.internal.producer import create_producer  # noqa: PLC0415 - needs settings
        from openedx_events.tooling import load_all_signals  # noqa: PLC0415 - needs settings

        load_all_signals()
        producer = create_producer()
        assert producer is not None, "edx-event-bus-kafka could not build a producer"
        self._producer = producer
        self._errors = _Errors()
        logging.getLogger("edx_event_bus_kafka").addHandler(self._errors)

    def send(
        self,
        event_type: str,
        data: dict[str, Any],
        topic: str,
        *,
        event_id: uuid.UUID | None = None,
        time: datetime | None = None,
    ) -> str:
        """Publish one event; ``data`` is the Avro-shaped dict (e.g. ``{"certificate": {...}}``).

        Returns the event id (the ``ce_id`` header).
        """
        from openedx_events.data import EventsMetadata  # noqa: PLC0415 - needs settings
        from openedx_events.event_bus.avro.deserializer import (  # noqa: PLC0415
            AvroSignalDeserializer,
        )
        from openedx_events.tooling import OpenEdxPublicSignal  # noqa: PLC0415

        signal = OpenEdxPublicSignal.get_signal_by_type(event_type)
        event_data = AvroSignalDeserializer(signal).from_dict(data)
        (field,) = data.keys()
        metadata = EventsMetadata(
            event_type=event_type,
            id=event_id or uuid.uuid1(),
            minorversion=0,
            source="openedx/lms/web",
            sourcehost="lms.test",
            time=time or datetime.now(UTC),
        )
        self._producer.send(
            signal=signal,
            topic=topic,
            event_key_field=KEY_FIELDS[field],
            event_data=event_data,
            event_metadata=metadata,
        )
        return str(metadata.id)

    def flush(self) -> None:
        """Wait until every event is acknowledged; raise if the producer logged an error."""
        self._producer.prepare_for_shutdown()
        if self._errors.messages:
            raise RuntimeError(f"the LMS producer failed: {self._errors.messages[:3]}")

    def close(self) -> None:
        """Flush, then close the registry client edx-event-bus-kafka caches for the process."""
        from edx_event_bus_kafka.internal.config import (  # noqa: PLC0415 - needs settings
            get_schema_registry_client,
        )

        self.flush()
        client = get_schema_registry_client()
        if client is not None:
            client.close()
        get_schema_registry_client.cache_clear()


def certificate_data(
    *,
    user_id: int,
    course_key: str,
    username: str | None = None,
    mode: str = "verified",
    status: str = "downloadable",
    previous_status: str = "",
    is_active: bool = True,
) -> dict[str, Any]:
    """The ``certificate`` record as edx-platform fills it (only ``course_key`` in course)."""
    return {
        "certificate": {
            "user": {
                "id": user_id,
                "is_active": is_active,
                "pii": {
                    "username": username or f"learner{user_id}",
                    "email": f"learner{user_id}@example.com",
                    "name": f"Learner Number{user_id}",
                },
            },
            "course": {"course_key": course_key, "display_name": "", "start": None, "end": None},
            "mode": mode,
            "grade": "0.91",
            "current_status": status,
            "previous_status": previous_status,
            "download_url": "",
            "name": "",
        }
    }


def catalog_data(
    *,
    course_key: str,
    pacing: str = "instructor",
    start: str = "2026-01-05T00:00:00+00:00",
    end: str | None = "2026-06-30T00:00:00+00:00",
    name: str = "Demo course",
) -> dict[str, Any]:
    """The ``catalog_info`` record as Studio fills it."""
    return {
        "catalog_info": {
            "course_key": course_key,
            "name": name,
            "schedule_data": {
                "start": start,
                "pacing": pacing,
                "end": end,
                "enrollment_start": None,
                "enrollment_end": None,
            },
            "hidden": False,
            "invitation_only": False,
        }
    }
