"""Commands as data: the datetime format Credentials gets, and the dry-run form."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumer.commands import SyncCertificateAvailableDate, SyncCourseCertificate, iso_utc
from consumer.events import Learner

PLUS_5 = timezone(timedelta(hours=5))
MINUS_5 = timezone(timedelta(hours=-5))
RUN = "course-v1:OrgX+DemoX+1T2024"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, None, id="none"),
        pytest.param(datetime(2024, 3, 1, 12, tzinfo=UTC), "2024-03-01T12:00:00Z", id="UTC"),
        pytest.param(
            datetime(2024, 3, 1, 12, 0, 0, 999999, tzinfo=PLUS_5),
            "2024-03-01T07:00:00Z",
            id="offset converted, microseconds dropped",
        ),
        pytest.param(
            datetime(2024, 3, 1, 12),  # noqa: DTZ001 - the naive case itself
            "2024-03-01T12:00:00Z",
            id="naive is UTC",
        ),
        pytest.param(datetime(1, 1, 1, tzinfo=UTC), "0001-01-01T00:00:00Z", id="year 1: 4 digits"),
        pytest.param(
            datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), "9999-12-31T23:59:59Z", id="year 9999"
        ),
        pytest.param(
            datetime(1, 1, 1, tzinfo=PLUS_5),
            "0001-01-01T00:00:00+05:00",
            id="no UTC form: the same instant with its offset",
        ),
        pytest.param(
            datetime(9999, 12, 31, 23, 59, 59, tzinfo=MINUS_5),
            "9999-12-31T23:59:59-05:00",
            id="no UTC form at the other end",
        ),
    ],
)
def test_iso_utc(value: datetime | None, expected: str | None) -> None:
    """Credentials' format, 4-digit years; a value with no UTC form never raises."""
    assert iso_utc(value) == expected


offsets = st.integers(min_value=-(86_400 * 10**6) + 1, max_value=86_400 * 10**6 - 1).map(
    lambda microseconds: timezone(timedelta(microseconds=microseconds))
)


@given(st.datetimes(timezones=st.none() | offsets))
def test_property_iso_utc_never_raises(value: datetime) -> None:
    """Any datetime formats: in Credentials' format when it has a UTC form, to the second."""
    text = iso_utc(value)
    assert text is not None
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        utc = aware.astimezone(UTC)
    except OverflowError:
        assert text == aware.isoformat(timespec="seconds")
        return
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", text)
    assert datetime.fromisoformat(text) == utc.replace(microsecond=0)


def test_dry_run_form_of_a_date_with_no_utc_form_does_not_raise() -> None:
    """The dry-run of a CAD command crashed with OverflowError on such an end date."""
    command = SyncCertificateAvailableDate(
        course_run=RUN,
        pacing="instructor",
        end=datetime(1, 1, 1, tzinfo=PLUS_5),
        certificate_available_date=datetime(9999, 12, 31, 23, 59, 59, tzinfo=MINUS_5),
    )
    assert command.to_json()["end"] == "0001-01-01T00:00:00+05:00"
    assert command.to_json()["certificate_available_date"] == "9999-12-31T23:59:59-05:00"


def test_dry_run_form_of_a_course_certificate() -> None:
    """The date override is sent in UTC; the learner is the LMS user id, never the username."""
    command = SyncCourseCertificate(
        learner=Learner(user_id=7, username="secret_handle"),
        course_run=RUN,
        mode="verified",
        status="awarded",
        date_override=datetime(2024, 3, 1, 12, tzinfo=PLUS_5),
    )
    assert command.to_json() == {
        "command": "sync_course_certificate",
        "lms_user_id": 7,
        "course_run": RUN,
        "mode": "verified",
        "status": "awarded",
        "date_override": "2024-03-01T07:00:00Z",
    }
