"""Each client checks its answers' shapes: a malformed answer is one classified failure.

Regression tests of issue 8, items 2c and 3: every case here raised ``KeyError``,
``TypeError``, ``AttributeError`` or ``OverflowError`` (a crash loop on one record), or was
silently misread, before the clients checked what they read.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from consumer.commands import SyncCertificateAvailableDate
from consumer.effects import Effects
from consumer.errors import MalformedAnswerError, ServiceUnavailableError
from consumer.services.answers import AnswerReader
from consumer.services.bundle import Services
from tests.fakes.openedx import FakeOpenEdx

RUN = "course-v1:edX+DemoX+1T2026"
PROGRAM = "8e9d7b1e-5a51-4b9b-9c2e-1b7a3c4d5e6f"


def course_run_item(**credential: Any) -> dict[str, Any]:
    fields = {"type": "course-run", "course_run_key": RUN, "mode": "verified", **credential}
    return {"credential": fields, "status": "awarded", "uuid": "u-1", "username": "José"}


def page(*results: Any, next_url: Any = None) -> dict[str, Any]:
    return {"count": len(results), "next": next_url, "previous": None, "results": list(results)}


def malformed(call: Any) -> MalformedAnswerError:
    with pytest.raises(MalformedAnswerError) as caught:
        call()
    assert caught.value.reason == "malformed_answer"
    assert not isinstance(caught.value, ServiceUnavailableError)  # the event's own failure
    assert "José" not in str(caught.value)  # places and types, never values
    return caught.value


# ---------------------------------------------------------------------------- Credentials


@pytest.mark.parametrize(
    ("answer", "where"),
    [
        (page({"credential": "course-v1:edX+DemoX+1T2026", "status": "awarded"}), "credential"),
        (page(course_run_item(course_run_key=[RUN])), "course_run_key"),
        (page(course_run_item(course_run_key=None)), "course_run_key"),
        (page(course_run_item(mode={"slug": "verified"})), "mode"),
        (page("not an item"), "results[0]"),
        (page(course_run_item(), next_url=7), "next"),
        (page(course_run_item(), next_url="http://[::1"), "next"),
        ({"count": 1, "results": {"0": course_run_item()}}, "results"),
        ([course_run_item()], "page 1"),
    ],
)
def test_credentials_course_run_list_of_another_shape_is_malformed(
    fake: FakeOpenEdx, services: Services, answer: Any, where: str
) -> None:
    """A list item whose credential is a string, a list for a run key, a bad ``next``..."""
    fake.set_answer("credentials", answer, endpoint="credentials_list")
    error = malformed(
        lambda: services.credentials.awarded_course_runs(username="José", request_id="e")
    )
    assert where in str(error)


@pytest.mark.parametrize("program_uuid", [42, ["8e9d"], {"uuid": PROGRAM}, None, ""])
def test_credentials_program_uuid_that_is_not_text_is_malformed(
    fake: FakeOpenEdx, services: Services, program_uuid: Any
) -> None:
    """A program credential whose program_uuid is not a non-empty string is malformed."""
    item = {"credential": {"type": "program", "program_uuid": program_uuid}, "status": "awarded"}
    fake.set_answer("credentials", page(item), endpoint="credentials_list")
    error = malformed(
        lambda: services.credentials.awarded_program_uuids(username="a", request_id="e")
    )
    assert "program_uuid" in str(error)


# ---------------------------------------------------------------------------- LMS


@pytest.mark.parametrize(
    "answer",
    [
        {"results": []},
        ["downloadable"],
        [{"course_id": RUN, "certificate_type": ["verified"], "status": "downloadable"}],
        [{"course_id": 5, "certificate_type": "verified", "status": "downloadable"}],
        [
            {
                "course_id": RUN,
                "certificate_type": "verified",
                "status": "downloadable",
                "is_passing": "yes",
            }
        ],
        [{"course_id": RUN, "certificate_type": "verified"}],
    ],
)
def test_lms_certificates_of_another_shape_are_malformed(
    fake: FakeOpenEdx, services: Services, answer: Any
) -> None:
    """The certificates list must be a list of objects with text fields and a boolean flag."""
    fake.set_answer("lms", answer, endpoint="certificates_list")
    malformed(lambda: services.lms.passing_certificates(username="José", request_id="e"))


@pytest.mark.parametrize(
    "answer", [{"modes": []}, [{"mode_slug": ["verified"]}], [{"slug": "verified"}], ["verified"]]
)
def test_lms_course_modes_of_another_shape_are_malformed(
    fake: FakeOpenEdx, services: Services, answer: Any
) -> None:
    """Course modes must be a list of objects with a mode_slug string (a list is not one)."""
    fake.add_course_run(RUN)
    fake.set_answer("lms", answer, endpoint="course_modes")
    malformed(lambda: services.lms.course_modes(course_run=RUN, request_id="e"))


def test_lms_certificate_detail_of_another_shape_is_malformed(
    fake: FakeOpenEdx, services: Services
) -> None:
    """One run's certificate must be an object like a list item; a 404 means none."""
    assert services.lms.certificate(username="José", course_run=RUN, request_id="e") is None
    fake.set_answer("lms", [RUN], endpoint="certificate_detail")
    malformed(lambda: services.lms.certificate(username="José", course_run=RUN, request_id="e"))


# ---------------------------------------------------------------------------- Discovery


@pytest.mark.parametrize(
    "answer", [{"results": [PROGRAM]}, [PROGRAM, 7], [{"uuid": PROGRAM}], [""]]
)
def test_discovery_program_list_of_another_shape_is_malformed(
    fake: FakeOpenEdx, services: Services, answer: Any
) -> None:
    """The uuids_only list must be a list of UUID strings."""
    fake.set_answer("discovery", answer, endpoint="programs_list")
    assert services.discovery is not None
    discovery = services.discovery
    malformed(lambda: discovery.program_uuids(request_id="e"))


@pytest.mark.parametrize(
    "answer",
    [
        [PROGRAM],
        {"uuid": 5, "courses": []},
        {"uuid": PROGRAM, "courses": {"key": "edX+A"}},
        {"uuid": PROGRAM, "courses": ["edX+A"]},
        {"uuid": PROGRAM, "courses": [{"key": "edX+A", "course_runs": "course-v1:edX+A+1"}]},
        {"uuid": PROGRAM, "courses": [{"key": "edX+A", "course_runs": [{"key": ["x"]}]}]},
        {"uuid": PROGRAM, "courses": [{"key": "A", "course_runs": [{"key": RUN, "type": 1}]}]},
    ],
)
def test_discovery_program_of_another_shape_is_malformed(
    fake: FakeOpenEdx, services: Services, answer: Any
) -> None:
    """A program document must have a UUID string and lists of course and run objects."""
    fake.set_answer("discovery", answer, endpoint="program_detail")
    assert services.discovery is not None
    discovery = services.discovery
    malformed(lambda: discovery.program(PROGRAM, request_id="e"))


# ---------------------------------------------------------------------------- Studio


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("certificate_available_date", "0001-01-01T00:00:00+05:00"),
        ("certificate_available_date", "9999-12-31T23:59:59-05:00"),
        ("end_date", "0001-01-01T00:00:00+05:00"),
        ("end_date", "9999-12-31T23:59:59-05:00"),
        ("certificate_available_date", "next spring"),
        ("end_date", 1767225600),
        ("certificates_display_behavior", ["end"]),
        ("self_paced", "false"),
    ],
)
def test_studio_values_that_are_not_what_they_say_are_malformed(
    fake: FakeOpenEdx, services: Services, field: str, value: Any
) -> None:
    """A date with no UTC form or no date at all, or a field of another type: malformed.

    Through the effects too: the CAD sync raises the classified error (retried, then
    dead-lettered), never ``OverflowError``.
    """
    fake.add_course_run(RUN)
    details = {
        "certificates_display_behavior": "end_with_date",
        "certificate_available_date": "2026-07-01T00:00:00Z",
        "self_paced": False,
        "end_date": "2026-06-01T00:00:00Z",
        field: value,
    }
    fake.set_answer("studio", details, endpoint="course_details")
    assert services.studio is not None
    studio = services.studio
    error = malformed(lambda: studio.course_details(course_run=RUN, request_id="e"))
    assert field in str(error)
    command = SyncCertificateAvailableDate(
        course_run=RUN, pacing="instructor", end=datetime(2026, 6, 1, tzinfo=UTC)
    )
    malformed(lambda: Effects(services).apply(command, "e"))
    assert fake.writes() == []


def test_studio_dates_with_a_utc_form_are_read_in_utc(
    fake: FakeOpenEdx, services: Services
) -> None:
    """Offsets are converted to UTC, a naive date is UTC, null and a missing field are None."""
    fake.add_course_run(RUN)
    fake.set_answer(
        "studio",
        {"certificate_available_date": "2026-07-01T02:00:00+02:00", "end_date": "2026-06-01T00:00"},
        endpoint="course_details",
    )
    assert services.studio is not None
    details = services.studio.course_details(course_run=RUN, request_id="e")
    assert details.certificate_available_date == datetime(2026, 7, 1, tzinfo=UTC)
    assert details.end == datetime(2026, 6, 1, tzinfo=UTC)
    assert (details.display_behavior, details.self_paced) == (None, False)


def test_the_answer_reader_names_place_and_type_never_the_value() -> None:
    """Messages say where and what type, so an answer's personal data never reaches a log."""
    read = AnswerReader("credentials", "credentials_list")
    with pytest.raises(MalformedAnswerError) as caught:
        read.text(["Jos\u00e9.Garc\u00eda"], "results[0].username")
    assert str(caught.value) == (
        "credentials answered credentials_list with results[0].username as a list, not text"
    )
