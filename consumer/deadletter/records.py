"""The dead-letter record format: what could not be applied, kept whole and explained.

A dead-letter record has the original key, value and headers, plus context headers under
one namespace, ``credentials_consumer.error.`` (compare Kafka Connect's
``__connect.errors.*``). Values are UTF-8 text, numbers in decimal, times ISO-8601 UTC, so
``kcat`` or a console consumer can read them:

=====================  ===================================================================
header (after prefix)  value
=====================  ===================================================================
``topic``              source topic
``partition``          source partition
``offset``             source offset
``timestamp``          source record timestamp, epoch milliseconds (``-1`` when unknown)
``group``              consumer group that gave up
``stage``              ``decode`` | ``handle`` | ``apply``
``class``              error class (e.g. ``AvroDecodeError``, ``PermanentError``)
``reason``             short snake_case reason (e.g. ``bad_magic_byte``, ``http_400``)
``message``            what went wrong, without PII
``attempts``           attempts made (1 for poison input)
``first_failure``      first failure time, ISO-8601 UTC
``last_failure``       last failure time, ISO-8601 UTC
``worker_version``     credentials-consumer version
=====================  ===================================================================

Written by ``producer``, read back by ``inspect`` (``dlq inspect``) and by anyone's tools.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from consumer import __version__
from consumer.outcomes import Failed
from consumer.wire import Headers, Record

HEADER_PREFIX = "credentials_consumer.error."


def _iso(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="milliseconds")


def original_headers(headers: Iterable[tuple[str, bytes]]) -> Headers:
    """The record's own headers, without context headers of an earlier dead-lettering."""
    return tuple((name, value) for name, value in headers if not name.startswith(HEADER_PREFIX))


def context_headers(record: Record, failure: Failed, *, group: str) -> Headers:
    """The context headers for ``record`` failing with ``failure``."""
    fields = {
        "topic": record.topic,
        "partition": str(record.partition),
        "offset": str(record.offset),
        "timestamp": str(record.timestamp_ms if record.timestamp_ms is not None else -1),
        "group": group,
        "stage": failure.stage,
        "class": failure.error_class,
        "reason": failure.reason,
        "message": failure.message,
        "attempts": str(failure.attempts),
        "first_failure": _iso(failure.first_failure),
        "last_failure": _iso(failure.last_failure),
        "worker_version": __version__,
    }
    return tuple((HEADER_PREFIX + name, value.encode("utf-8")) for name, value in fields.items())


def context_of(headers: Iterable[tuple[str, bytes]]) -> dict[str, str]:
    """Read the context headers back (for ``dlq inspect``), prefix stripped."""
    return {
        name[len(HEADER_PREFIX) :]: value.decode("utf-8", errors="replace")
        for name, value in headers
        if name.startswith(HEADER_PREFIX) and value is not None
    }
