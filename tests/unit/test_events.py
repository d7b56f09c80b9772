"""Typed events from decoded Avro dicts: field by field, PII dropped or hidden, ordering keys."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opaque_keys.edx.keys import CourseKey

from consumer.commands import iso_utc
from consumer.errors import InvalidEventError
from consumer.events import (
    CERTIFICATE_EVENT_TYPES,
    COURSE_KEY_CACHE_SIZE,
    CatalogInfoChanged,
    CertificateEvent,
    Event,
    EventMeta,
    EventType,
    Learner,
    _course_key,
    build_event,
    catalog_info_changed,
    certificate_event,
    ordering_key,
    parse_course_key,
    parse_time,
)

RUN = "course-v1:OrgX+DemoX+1T2024"
USERNAME = "zelda_secret_handle"
EMAIL = "zelda@example.org"
FULL_NAME = "Zelda Quintessa Hyrule"
CATALOG = EventType.CATALOG_INFO_CHANGED


def meta(event_type: EventType = EventType.CERTIFICATE_CREATED) -> EventMeta:
    return EventMeta(id="ce-1", type=event_type, source="openedx/lms/web")


def certificate(**changes: Any) -> dict[str, Any]:
    """The decoded ``certificate`` record; ``changes`` override certificate fields."""
    data: dict[str, Any] = {
        "user": {
            "id": 42,
            "is_active": True,
            "pii": {"username": USERNAME, "email": EMAIL, "name": FULL_NAME},
        },
        "course": {"course_key": RUN, "display_name": "Demo", "start": None, "end": None},
        "mode": "verified",
        "grade": "0.91",
        "download_url": "https://lms.example.com/certificates/abc",
        "name": FULL_NAME,
        "current_status": "downloadable",
        "previous_status": "notpassing",
    }
    data.update(changes)
    return {"certificate": data}


def catalog(*, info: dict[str, Any] | None = None, **schedule: Any) -> dict[str, Any]:
    """The decoded ``catalog_info`` record; keyword arguments override schedule fields."""
    schedule_data: dict[str, Any] = {
        "start": "2024-01-08T00:00:00+00:00",
        "pacing": "self",
        "end": None,
        "enrollment_start": None,
        "enrollment_end": None,
    }
    schedule_data.update(schedule)
    data: dict[str, Any] = {
        "course_key": RUN,
        "name": "Demo course",
        "schedule_data": schedule_data,
        "hidden": False,
        "invitation_only": False,
    }
    data.update(info or {})
    return {"catalog_info": data}


def values_of(obj: object) -> Iterator[object]:
    """Every value held by ``obj``, recursively through dataclass fields (slots included)."""
    yield obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for item in dataclasses.fields(obj):
            yield from values_of(getattr(obj, item.name))


# ---------------------------------------------------------------------------- certificates


@pytest.mark.parametrize("event_type", sorted(CERTIFICATE_EVENT_TYPES), ids=str)
def test_certificate_event_is_built_field_by_field(event_type: EventType) -> None:
    """Every field of a certificate event comes from its place in CertificateData."""
    event = certificate_event(meta(event_type), certificate())
    assert event == CertificateEvent(
        meta=meta(event_type),
        learner=Learner(user_id=42, username=USERNAME, is_active=True),
        course_key=CourseKey.from_string(RUN),
        mode="verified",
        status="downloadable",
        previous_status="notpassing",
    )
    assert event.learner.username == USERNAME  # kept: Credentials keys credentials by it


@pytest.mark.parametrize(
    ("changes", "attribute", "expected"),
    [
        pytest.param({"previous_status": ""}, "previous_status", None, id="empty previous: None"),
        pytest.param({"mode": ""}, "mode", "", id="empty mode kept as empty"),
        pytest.param({"mode": "professional"}, "mode", "professional", id="mode"),
        pytest.param({"current_status": "notpassing"}, "status", "notpassing", id="status"),
    ],
)
def test_certificate_optional_and_plain_fields(
    changes: dict[str, Any], attribute: str, expected: object
) -> None:
    """Plain string fields are copied; an empty previous_status becomes None."""
    event = certificate_event(meta(), certificate(**changes))
    assert getattr(event, attribute) == expected


def test_inactive_learner_is_marked_inactive() -> None:
    """user.is_active=False is carried into the Learner."""
    data = certificate()
    data["certificate"]["user"]["is_active"] = False
    assert certificate_event(meta(), data).learner.is_active is False


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        pytest.param(
            lambda d: d.pop("certificate"), "certificate record is missing", id="no certificate"
        ),
        pytest.param(
            lambda d: d["certificate"].pop("user"), "user record is missing", id="no user"
        ),
        pytest.param(
            lambda d: d["certificate"]["user"].pop("pii"), "pii record is missing", id="no pii"
        ),
        pytest.param(
            lambda d: d["certificate"].pop("course"), "course record is missing", id="no course"
        ),
        pytest.param(
            lambda d: d["certificate"]["user"]["pii"].update(username=""),
            "certificate.user.pii.username is empty",
            id="empty username",
        ),
        pytest.param(
            lambda d: d["certificate"].update(current_status=""),
            "certificate.current_status is empty",
            id="empty status",
        ),
        pytest.param(
            lambda d: d["certificate"]["course"].update(course_key="OrgX DemoX"),
            "certificate.course is not a valid course key",
            id="invalid course key",
        ),
        pytest.param(
            lambda d: d["certificate"]["course"].update(course_key=""),
            "certificate.course is not a valid course key",
            id="empty course key",
        ),
    ],
)
def test_invalid_certificate_raises_invalid_event(mutate: Any, message: str) -> None:
    """A certificate missing what the rules need raises InvalidEventError naming the field."""
    data = certificate()
    mutate(data)
    with pytest.raises(InvalidEventError) as caught:
        certificate_event(meta(), data)
    assert str(caught.value) == message
    assert caught.value.reason == "invalid_event"
    assert USERNAME not in str(caught.value)


# ---------------------------------------------------------------------------- catalog


def test_catalog_event_is_built_field_by_field() -> None:
    """Every field of a catalog event comes from its place in CourseCatalogData."""
    data = catalog(
        info={"name": "Advanced Demo", "hidden": True, "invitation_only": True},
        pacing="instructor",
        start="2024-01-08T09:00:00+00:00",
        end="2024-06-30T12:00:00+00:00",
        enrollment_start="2023-12-01T00:00:00+00:00",
        enrollment_end="2024-01-31T23:59:59+00:00",
    )
    event = catalog_info_changed(meta(CATALOG), data)
    assert event == CatalogInfoChanged(
        meta=meta(CATALOG),
        course_key=CourseKey.from_string(RUN),
        name="Advanced Demo",
        pacing="instructor",
        start=datetime(2024, 1, 8, 9, tzinfo=UTC),
        end=datetime(2024, 6, 30, 12, tzinfo=UTC),
        enrollment_start=datetime(2023, 12, 1, tzinfo=UTC),
        enrollment_end=datetime(2024, 1, 31, 23, 59, 59, tzinfo=UTC),
        hidden=True,
        invitation_only=True,
    )


@pytest.mark.parametrize("field", ["end", "enrollment_start", "enrollment_end"])
@pytest.mark.parametrize("value", [None, ""], ids=["null", "empty"])
def test_catalog_optional_dates_may_be_absent(field: str, value: str | None) -> None:
    """A null or empty optional date becomes None."""
    schedule: dict[str, Any] = {field: value}
    event = catalog_info_changed(meta(CATALOG), catalog(**schedule))
    assert getattr(event, field) is None


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        pytest.param(
            {"pacing": "weekly"},
            "catalog_info.schedule_data.pacing is neither instructor nor self",
            id="unknown pacing",
        ),
        pytest.param(
            {"pacing": "Self"},
            "catalog_info.schedule_data.pacing is neither instructor nor self",
            id="pacing is case-sensitive",
        ),
        pytest.param(
            {"pacing": None},
            "catalog_info.schedule_data.pacing is neither instructor nor self",
            id="no pacing",
        ),
        pytest.param(
            {"start": "soon"},
            "catalog_info.schedule_data.start is not an ISO-8601 datetime",
            id="unparseable start",
        ),
        pytest.param(
            {"start": ""},
            "catalog_info.schedule_data.start is not an ISO-8601 datetime",
            id="empty start",
        ),
        pytest.param(
            {"end": "2024-13-01T00:00:00"},
            "catalog_info.schedule_data.end is not an ISO-8601 datetime",
            id="impossible end",
        ),
        pytest.param(
            {"enrollment_start": "01/02/2024"},
            "catalog_info.schedule_data.enrollment_start is not an ISO-8601 datetime",
            id="unparseable enrollment start",
        ),
        pytest.param(
            {"enrollment_end": "tomorrow"},
            "catalog_info.schedule_data.enrollment_end is not an ISO-8601 datetime",
            id="unparseable enrollment end",
        ),
    ],
)
def test_invalid_catalog_schedule_raises_invalid_event(
    schedule: dict[str, Any], message: str
) -> None:
    """A bad pacing or date raises InvalidEventError naming the field."""
    with pytest.raises(InvalidEventError) as caught:
        catalog_info_changed(meta(CATALOG), catalog(**schedule))
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param({}, "catalog_info record is missing", id="no catalog_info"),
        pytest.param(
            {"catalog_info": {"course_key": RUN}},
            "schedule_data record is missing",
            id="no schedule",
        ),
        pytest.param(
            catalog(info={"course_key": "not-a-key"}),
            "catalog_info.course_key is not a valid course key",
            id="invalid course key",
        ),
    ],
)
def test_invalid_catalog_record_raises_invalid_event(data: dict[str, Any], message: str) -> None:
    """A catalog record missing its parts or with a bad course key raises InvalidEventError."""
    with pytest.raises(InvalidEventError) as caught:
        catalog_info_changed(meta(CATALOG), data)
    assert str(caught.value) == message


# ---------------------------------------------------------------------------- times and keys


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "2024-01-08T09:30:00+00:00", datetime(2024, 1, 8, 9, 30, tzinfo=UTC), id="UTC offset"
        ),
        pytest.param("2024-01-08T09:30:00Z", datetime(2024, 1, 8, 9, 30, tzinfo=UTC), id="Z"),
        pytest.param(
            "2024-01-08T09:30:00", datetime(2024, 1, 8, 9, 30, tzinfo=UTC), id="naive is UTC"
        ),
        pytest.param(
            "2024-01-08T09:30:00.123456+00:00",
            datetime(2024, 1, 8, 9, 30, 0, 123456, tzinfo=UTC),
            id="microseconds",
        ),
        pytest.param(
            "2024-01-08T11:30:00+02:00",
            datetime(2024, 1, 8, 11, 30, tzinfo=timezone(timedelta(hours=2))),
            id="other offset kept",
        ),
        pytest.param("2024-01-08", datetime(2024, 1, 8, tzinfo=UTC), id="date only: midnight UTC"),
    ],
)
def test_parse_time_reads_platform_datetimes(text: str, expected: datetime) -> None:
    """parse_time reads ISO-8601 as the platform writes it; the result is always aware."""
    parsed = parse_time(text, what="x")
    assert parsed == expected
    assert parsed.tzinfo is not None
    assert parsed.utcoffset() == expected.utcoffset()


def test_parse_time_error_names_what() -> None:
    """An unparseable time raises InvalidEventError naming the field, not echoing the value."""
    with pytest.raises(InvalidEventError, match=r"^some\.field is not an ISO-8601 datetime$"):
        parse_time("not a time", what="some.field")


PLUS_5 = timezone(timedelta(hours=5))
MINUS_5 = timezone(timedelta(hours=-5))


@pytest.mark.parametrize(
    ("text", "expected", "in_utc"),
    [
        pytest.param(
            "0001-01-01T00:00:00+00:00",
            datetime(1, 1, 1, tzinfo=UTC),
            "0001-01-01T00:00:00Z",
            id="first",
        ),
        pytest.param(
            "0001-01-01T00:00:00",
            datetime(1, 1, 1, tzinfo=UTC),
            "0001-01-01T00:00:00Z",
            id="first, naive",
        ),
        pytest.param(
            "0001-01-01T05:00:00+05:00",
            datetime(1, 1, 1, 5, tzinfo=PLUS_5),
            "0001-01-01T00:00:00Z",
            id="first, ahead of UTC",
        ),
        pytest.param(
            "0001-01-01T00:00:00-05:00",
            datetime(1, 1, 1, tzinfo=MINUS_5),
            "0001-01-01T05:00:00Z",
            id="year 1, behind UTC",
        ),
        pytest.param(
            "9999-12-31T23:59:59.999999+00:00",
            datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            "9999-12-31T23:59:59Z",
            id="last",
        ),
        pytest.param(
            "9999-12-31T23:59:59+05:00",
            datetime(9999, 12, 31, 23, 59, 59, tzinfo=PLUS_5),
            "9999-12-31T18:59:59Z",
            id="year 9999, ahead of UTC",
        ),
        pytest.param(
            "9999-12-31T18:59:59-05:00",
            datetime(9999, 12, 31, 18, 59, 59, tzinfo=MINUS_5),
            "9999-12-31T23:59:59Z",
            id="last second, behind UTC",
        ),
    ],
)
def test_edge_dates_with_a_utc_form_are_kept(text: str, expected: datetime, in_utc: str) -> None:
    """Dates at the ends of datetime's range decode as long as their UTC form is in it."""
    parsed = parse_time(text, what="x")
    assert parsed == expected
    assert parsed.utcoffset() == expected.utcoffset()
    assert iso_utc(parsed) == in_utc


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("0001-01-01T00:00:00+05:00", id="year 1 ahead of UTC: year 0 in UTC"),
        pytest.param("0001-01-01T04:59:59+05:00", id="one second short"),
        pytest.param("0001-01-01T00:00:00+00:00:01", id="a one-second offset"),
        pytest.param("0001-01-01T00:00:00+23:59", id="the largest offset"),
        pytest.param("9999-12-31T23:59:59-05:00", id="year 9999 behind UTC: year 10000 in UTC"),
        pytest.param("9999-12-31T19:00:00-05:00", id="one second over"),
        pytest.param("9999-12-31T23:59:59-00:00:01", id="a one-second offset behind"),
    ],
)
def test_a_date_with_no_utc_form_is_poison(text: str) -> None:
    """A date whose UTC form falls outside years 1 to 9999 raises date_out_of_range."""
    with pytest.raises(InvalidEventError) as caught:
        parse_time(text, what="catalog_info.schedule_data.end")
    assert caught.value.reason == "date_out_of_range"
    assert str(caught.value).startswith("catalog_info.schedule_data.end has no UTC form")


@pytest.mark.parametrize("field", ["start", "end", "enrollment_start", "enrollment_end"])
@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"])
def test_a_catalog_date_with_no_utc_form_makes_the_event_poison(field: str, text: str) -> None:
    """Any date of the schedule with no UTC form stops the event at the edge, naming the field."""
    schedule: dict[str, Any] = {field: text}
    with pytest.raises(InvalidEventError) as caught:
        catalog_info_changed(meta(CATALOG), catalog(**schedule))
    assert caught.value.reason == "date_out_of_range"
    assert f"catalog_info.schedule_data.{field} " in str(caught.value)


utc_offsets = st.integers(min_value=-(86_400 * 10**6) + 1, max_value=86_400 * 10**6 - 1).map(
    lambda microseconds: timezone(timedelta(microseconds=microseconds))
)
any_datetime = st.datetimes(timezones=st.none() | st.just(UTC) | utc_offsets)


def _offset(minutes: int) -> str:
    hours, rest = divmod(abs(minutes), 60)
    return f"{'-' if minutes < 0 else '+'}{hours:02d}:{rest:02d}"


# Hypothesis never builds an aware datetime outside the range in UTC, so the texts that
# matter most are written by hand: a day at either end of the range and any offset.
edge_texts = st.builds(
    str.__add__,
    st.sampled_from(["0001-01-01T00:00:00", "9999-12-31T23:59:59"])
    | st.datetimes(max_value=datetime(1, 1, 2)).map(datetime.isoformat)  # noqa: DTZ001 - naive
    | st.datetimes(min_value=datetime(9999, 12, 31)).map(datetime.isoformat),  # noqa: DTZ001
    st.sampled_from(["", "Z"]) | st.integers(-(24 * 60) + 1, 24 * 60 - 1).map(_offset),
)
date_texts = st.one_of(
    edge_texts,
    any_datetime.map(datetime.isoformat),
    st.builds(
        datetime.isoformat,
        any_datetime,
        sep=st.sampled_from(["T", " "]),
        timespec=st.sampled_from(["auto", "hours", "minutes", "seconds", "milliseconds"]),
    ),
    any_datetime.map(lambda value: value.isoformat().replace("+00:00", "Z")),
    st.text(alphabet="0123456789-+:.TZ ", max_size=40),
    st.text(max_size=40),
)


@settings(max_examples=500)
@given(date_texts)
def test_property_a_date_text_has_a_utc_form_or_is_invalid(text: str) -> None:
    """Any text: an aware datetime whose UTC form exists and formats, or InvalidEventError."""
    try:
        parsed = parse_time(text, what="x")
    except InvalidEventError as error:
        reason = error.reason
        assert reason in {"invalid_event", "date_out_of_range"}
        return
    utc = parsed.astimezone(UTC)
    assert utc == parsed
    assert iso_utc(parsed) == utc.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


@settings(max_examples=200)
@given(
    st.sampled_from(["start", "end", "enrollment_start", "enrollment_end"]), edge_texts | date_texts
)
def test_property_catalog_event_dates_all_have_a_utc_form(field: str, text: str) -> None:
    """A catalog event is built only when every date it holds converts to UTC."""
    schedule: dict[str, Any] = {field: text}
    try:
        event = catalog_info_changed(meta(CATALOG), catalog(**schedule))
    except InvalidEventError:
        return
    for value in (event.start, event.end, event.enrollment_start, event.enrollment_end):
        assert value is None or value.astimezone(UTC) == value


@pytest.mark.parametrize(
    "key",
    ["course-v1:OrgX+DemoX+1T2024", "course-v1:edX+DemoX+Demo_Course", "OrgX/DemoX/2014"],
)
def test_parse_course_key_accepts_what_edx_platform_accepts(key: str) -> None:
    """Valid course keys (including deprecated slash keys) parse and print back unchanged."""
    assert str(parse_course_key(key)) == key


@pytest.mark.parametrize(
    "key",
    [
        "",
        "DemoX",
        "course-v1:OrgX+DemoX",
        "block-v1:OrgX+DemoX+1T2024+type@problem+block@p1",
    ],
)
def test_parse_course_key_rejects_non_course_keys(key: str) -> None:
    """Anything that is not a course key raises InvalidEventError."""
    with pytest.raises(InvalidEventError, match="course key"):
        parse_course_key(key)


def test_parsed_course_keys_are_cached_within_a_bound() -> None:
    """A key is parsed once and shared; the cache never holds more than its bound of keys."""
    key = "course-v1:CacheX+Shared+1T2026"
    assert parse_course_key(key) is parse_course_key(key)
    for index in range(COURSE_KEY_CACHE_SIZE + 100):
        parse_course_key(f"course-v1:CacheX+C{index}+1T2026")
    assert _course_key.cache_info().currsize == COURSE_KEY_CACHE_SIZE
    assert str(parse_course_key("course-v1:CacheX+C5+1T2026")) == "course-v1:CacheX+C5+1T2026"


def test_an_invalid_course_key_raises_every_time_naming_its_field() -> None:
    """Invalid keys are not cached as answers: each use raises, with the caller's field name."""
    for what in ("certificate.course", "catalog_info.course_key"):
        with pytest.raises(InvalidEventError, match=f"^{what} is not a valid course key$"):
            parse_course_key("course-v1:OrgX+DemoX", what=what)


# ---------------------------------------------------------------------------- PII


def _both_events() -> list[Event]:
    return [
        certificate_event(meta(), certificate()),
        catalog_info_changed(meta(CATALOG), catalog()),
    ]


@pytest.mark.parametrize("render", [repr, str], ids=["repr", "str"])
def test_username_never_in_repr(render: Callable[[object], str]) -> None:
    """repr()/str() of a certificate event and of its learner never show the username."""
    event = certificate_event(meta(), certificate())
    assert USERNAME not in render(event)
    assert USERNAME not in render(event.learner)
    assert "user_id=42" in render(event.learner)


def test_email_and_full_name_are_not_kept_anywhere() -> None:
    """Nothing reachable from a certificate event holds the e-mail or the full name."""
    event = certificate_event(meta(), certificate())
    for value in values_of(event):
        for pii in (EMAIL, FULL_NAME):
            assert not (isinstance(value, str) and pii in value)
            assert pii not in repr(value)
    assert {item.name for item in dataclasses.fields(Learner)} == {
        "user_id",
        "username",
        "is_active",
    }


def test_events_are_frozen() -> None:
    """Events are immutable values: assigning a field raises."""
    for event in _both_events():
        with pytest.raises(dataclasses.FrozenInstanceError):
            event.meta = meta()  # type: ignore[misc]


# ---------------------------------------------------------------------------- dispatch, keys


@pytest.mark.parametrize("event_type", list(EventType), ids=str)
def test_build_event_dispatches_on_the_event_type(event_type: EventType) -> None:
    """build_event returns a catalog event for catalog_info.changed, else a certificate event."""
    data = catalog() if event_type is CATALOG else certificate()
    event = build_event(meta(event_type), data)
    assert isinstance(event, CatalogInfoChanged if event_type is CATALOG else CertificateEvent)
    assert event.meta.type is event_type


@pytest.mark.parametrize(
    ("event", "key"),
    [
        pytest.param(certificate_event(meta(), certificate()), "user:42", id="certificate: user"),
        pytest.param(
            certificate_event(
                meta(EventType.CERTIFICATE_REVOKED),
                certificate(course={"course_key": "course-v1:OrgY+Other+2T2025"}),
            ),
            "user:42",
            id="another course, same learner: same key",
        ),
        pytest.param(
            catalog_info_changed(meta(CATALOG), catalog()),
            f"course:{RUN}",
            id="catalog: course run",
        ),
    ],
)
def test_ordering_key(event: Event, key: str) -> None:
    """Certificate events are ordered per learner, catalog events per course run."""
    assert ordering_key(event) == key


def test_ordering_keys_of_families_never_collide() -> None:
    """A learner's key and a course run's key are distinct even for look-alike values."""
    learner_key = ordering_key(certificate_event(meta(), certificate()))
    course_key = ordering_key(catalog_info_changed(meta(CATALOG), catalog()))
    assert learner_key.split(":", 1)[0] != course_key.split(":", 1)[0]


def test_ordering_key_has_no_pii() -> None:
    """The ordering key of a certificate event uses the user id, never the username."""
    assert USERNAME not in ordering_key(certificate_event(meta(), certificate()))
