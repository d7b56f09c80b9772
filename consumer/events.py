"""Decoded events as frozen values, built from the Avro records the LMS and Studio write.

The edge of the functional core: ``wire`` hands over a plain Avro dict and the CloudEvent
headers; this module checks what the rules rely on and returns typed, immutable values.
The learner's e-mail and full name are dropped here, at the edge, so no later step can log
them; the username is kept (Credentials keys credentials by it) but hidden from ``repr``.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, assert_never

from opaque_keys import InvalidKeyError
from opaque_keys.edx.keys import CourseKey

from consumer.errors import InvalidEventError


class EventType(enum.StrEnum):
    """The four ``ce_type`` values this worker consumes."""

    CERTIFICATE_CREATED = "org.openedx.learning.certificate.created.v1"
    CERTIFICATE_CHANGED = "org.openedx.learning.certificate.changed.v1"
    CERTIFICATE_REVOKED = "org.openedx.learning.certificate.revoked.v1"
    CATALOG_INFO_CHANGED = "org.openedx.content_authoring.course.catalog_info.changed.v1"


CERTIFICATE_EVENT_TYPES = frozenset(
    {EventType.CERTIFICATE_CREATED, EventType.CERTIFICATE_CHANGED, EventType.CERTIFICATE_REVOKED}
)

Pacing = Literal["instructor", "self"]


@dataclass(frozen=True, slots=True)
class EventMeta:
    """CloudEvent attributes from the record headers."""

    id: str
    type: EventType
    source: str = ""
    time: datetime | None = None


@dataclass(frozen=True, slots=True)
class Learner:
    """The learner of a certificate event: the LMS user id is the loggable identity."""

    user_id: int
    username: str = field(repr=False)
    is_active: bool = True


@dataclass(frozen=True, slots=True)
class CertificateEvent:
    """A certificate was created, changed or revoked (``CertificateData``)."""

    meta: EventMeta
    learner: Learner
    course_key: CourseKey
    mode: str
    status: str
    previous_status: str | None = None


@dataclass(frozen=True, slots=True)
class CatalogInfoChanged:
    """Studio published a course run's catalog information (``CourseCatalogData``)."""

    meta: EventMeta
    course_key: CourseKey
    name: str
    pacing: Pacing
    start: datetime
    end: datetime | None = None
    enrollment_start: datetime | None = None
    enrollment_end: datetime | None = None
    hidden: bool = False
    invitation_only: bool = False


Event = CertificateEvent | CatalogInfoChanged


def parse_time(value: str, *, what: str) -> datetime:
    """Parse an ISO-8601 datetime as the platform writes it; naive values are UTC.

    The instant must have a UTC form in ``datetime``'s range (years 1 to 9999):
    ``0001-01-01T00:00:00+05:00`` is valid text, but its UTC form falls in year 0, so every
    later conversion to UTC would raise ``OverflowError``. Such a date makes the event poison
    here, once, rather than a crash wherever it is used.

    Raises ``InvalidEventError`` naming ``what``: reason ``invalid_event`` when the text is
    not a datetime, ``date_out_of_range`` when it has no UTC form.
    """
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidEventError(f"{what} is not an ISO-8601 datetime") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        parsed.astimezone(UTC)
    except OverflowError:
        raise InvalidEventError(
            f"{what} has no UTC form (it falls before year 1 or after 9999 in UTC)",
            reason="date_out_of_range",
        ) from None
    return parsed


COURSE_KEY_CACHE_SIZE = 4096
"""Course keys kept parsed, most recently used first: far more runs than a backlog touches at
once, a few MB at most."""


@functools.lru_cache(maxsize=COURSE_KEY_CACHE_SIZE)
def _course_key(value: str) -> CourseKey:
    return CourseKey.from_string(value)


def parse_course_key(value: str, *, what: str = "course key") -> CourseKey:
    """Validate a course key with edx-opaque-keys, the way edx-platform does.

    Parsed keys are cached (``COURSE_KEY_CACHE_SIZE``, least recently used dropped first):
    parsing cost more than the rest of building an event, and a backlog names the same few
    hundred runs again and again. A key is an immutable value, so sharing one is safe; an
    invalid key is not cached (it raises each time).
    """
    try:
        return _course_key(value)
    except InvalidKeyError:
        raise InvalidEventError(f"{what} is not a valid course key") from None


def _optional_time(value: str | None, *, what: str) -> datetime | None:
    return parse_time(value, what=what) if value else None


def _record(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = data.get(name)
    if not isinstance(value, Mapping):
        raise InvalidEventError(f"{name} record is missing")
    return value


def certificate_event(meta: EventMeta, data: Mapping[str, Any]) -> CertificateEvent:
    """Build a certificate event from the decoded ``CloudEvent`` record."""
    certificate = _record(data, "certificate")
    user = _record(certificate, "user")
    pii = _record(user, "pii")
    course = _record(certificate, "course")
    username = pii.get("username") or ""
    if not username:
        raise InvalidEventError("certificate.user.pii.username is empty")
    status = certificate.get("current_status") or ""
    if not status:
        raise InvalidEventError("certificate.current_status is empty")
    return CertificateEvent(
        meta=meta,
        learner=Learner(
            user_id=int(user["id"]), username=username, is_active=bool(user["is_active"])
        ),
        course_key=parse_course_key(course.get("course_key") or "", what="certificate.course"),
        mode=certificate.get("mode") or "",
        status=status,
        previous_status=certificate.get("previous_status") or None,
    )


def catalog_info_changed(meta: EventMeta, data: Mapping[str, Any]) -> CatalogInfoChanged:
    """Build a catalog event from the decoded ``CloudEvent`` record."""
    info = _record(data, "catalog_info")
    schedule = _record(info, "schedule_data")
    pacing = schedule.get("pacing")
    if pacing not in ("instructor", "self"):
        raise InvalidEventError("catalog_info.schedule_data.pacing is neither instructor nor self")
    return CatalogInfoChanged(
        meta=meta,
        course_key=parse_course_key(info.get("course_key") or "", what="catalog_info.course_key"),
        name=info.get("name") or "",
        pacing=pacing,
        start=parse_time(schedule.get("start") or "", what="catalog_info.schedule_data.start"),
        end=_optional_time(schedule.get("end"), what="catalog_info.schedule_data.end"),
        enrollment_start=_optional_time(
            schedule.get("enrollment_start"), what="catalog_info.schedule_data.enrollment_start"
        ),
        enrollment_end=_optional_time(
            schedule.get("enrollment_end"), what="catalog_info.schedule_data.enrollment_end"
        ),
        hidden=bool(info.get("hidden")),
        invitation_only=bool(info.get("invitation_only")),
    )


def build_event(meta: EventMeta, data: Mapping[str, Any]) -> Event:
    """Build the typed event for ``meta.type`` from its decoded record."""
    match meta.type:
        case EventType.CATALOG_INFO_CHANGED:
            return catalog_info_changed(meta, data)
        case (
            EventType.CERTIFICATE_CREATED
            | EventType.CERTIFICATE_CHANGED
            | EventType.CERTIFICATE_REVOKED
        ):
            return certificate_event(meta, data)
        case unknown:
            assert_never(unknown)


def ordering_key(event: Event) -> str:
    """The key whose events must be applied strictly in order.

    Certificate events are ordered per learner (program awards and revocations read and
    write the learner's whole record); catalog events per course run.
    """
    match event:
        case CertificateEvent():
            return f"user:{event.learner.user_id}"
        case CatalogInfoChanged():
            return f"course:{event.course_key}"
        case unknown:
            assert_never(unknown)
