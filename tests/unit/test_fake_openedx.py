"""The fake Open edX behaves as reference/openedx-services.md says the real services do.

Each test's docstring names the reference fact it checks ("ref: <section>: <fact>"). The
requests here are raw ``requests`` calls, not the worker's clients, so a client bug cannot
hide a fake bug.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.fakes.openedx import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    SERVICE_USERNAME,
    FakeOpenEdx,
    RemoteFake,
)

RUN = "course-v1:edX+DemoX+1T2026"
RUN2 = "course-v1:edX+Other+1T2026"
PROGRAM = "8e9d7b1e-5a51-4b9b-9c2e-1b7a3c4d5e6f"


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def token(
    http: requests.Session,
    fake: FakeOpenEdx,
    client_id: str = DEFAULT_CLIENT_ID,
    secret: str = DEFAULT_CLIENT_SECRET,
) -> str:
    response = http.post(
        f"{fake.urls['oauth']}/access_token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            "token_type": "jwt",
        },
        timeout=5,
    )
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return str(body["access_token"])


def auth(value: str) -> dict[str, str]:
    return {"Authorization": f"JWT {value}"}


def post_credential(
    http: requests.Session, fake: FakeOpenEdx, jwt: str, payload: dict[str, Any]
) -> requests.Response:
    return http.post(f"{fake.url}/api/v2/credentials/", json=payload, headers=auth(jwt), timeout=5)


def course_payload(
    username: str = "alice", run: str = RUN, status: str = "awarded"
) -> dict[str, Any]:
    return {
        "username": username,
        "status": status,
        "credential": {"course_run_key": run, "mode": "verified", "type": "course-run"},
        "date_override": None,
    }


def program_payload(username: str = "alice", program: str = PROGRAM) -> dict[str, Any]:
    return {
        "username": username,
        "lms_user_id": 42,
        "credential": {"type": "program", "program_uuid": program},
    }


# ---------------------------------------------------------------------------- authentication


def test_token_endpoint_issues_jwt_with_expires_in(
    fake: FakeOpenEdx, http: requests.Session
) -> None:
    """ref: Authentication: the token answer has access_token, expires_in and token_type JWT."""
    fake.set_token_lifetime(120)
    response = http.post(
        f"{fake.urls['oauth']}/access_token",
        data={
            "grant_type": "client_credentials",
            "client_id": DEFAULT_CLIENT_ID,
            "client_secret": DEFAULT_CLIENT_SECRET,
            "token_type": "jwt",
        },
        timeout=5,
    )
    body = response.json()
    assert (response.status_code, body["token_type"], body["expires_in"]) == (200, "JWT", 120)
    assert body["access_token"].count(".") == 2


def test_token_endpoint_rejects_a_wrong_secret(fake: FakeOpenEdx, http: requests.Session) -> None:
    """ref: Authentication: a client with a wrong secret gets no token (401 invalid_client)."""
    response = http.post(
        f"{fake.urls['oauth']}/access_token",
        data={
            "grant_type": "client_credentials",
            "client_id": DEFAULT_CLIENT_ID,
            "client_secret": "wrong",
            "token_type": "jwt",
        },
        timeout=5,
    )
    assert (response.status_code, response.json()) == (401, {"error": "invalid_client"})


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        (None, "Authentication credentials were not provided."),
        ("Bearer abc", "Authentication credentials were not provided."),
        ("JWT not.a.token", "Invalid token."),
    ],
)
def test_missing_or_wrong_authorization_answers_documented_401(
    fake: FakeOpenEdx, http: requests.Session, header: str | None, detail: str
) -> None:
    """ref: Credentials auth errors: no token or Bearer → "not provided"; bad → "Invalid token."."""
    headers = {"Authorization": header} if header else {}
    response = http.get(
        f"{fake.url}/api/v2/credentials/", params={"username": "x"}, headers=headers, timeout=5
    )
    assert (response.status_code, response.json()) == (401, {"detail": detail})


def test_expired_tokens_answer_token_has_expired(fake: FakeOpenEdx, http: requests.Session) -> None:
    """ref: Credentials auth errors: expired token → 401 "Token has expired."; a new one works."""
    old = token(http, fake)
    fake.expire_tokens()
    url = f"{fake.url}/api/v2/credentials/"
    expired = http.get(url, params={"username": "x"}, headers=auth(old), timeout=5)
    fresh = http.get(url, params={"username": "x"}, headers=auth(token(http, fake)), timeout=5)
    assert (expired.status_code, expired.json()) == (401, {"detail": "Token has expired."})
    assert fresh.status_code == 200


def test_a_token_signed_by_someone_else_is_invalid(
    fake: FakeOpenEdx, http: requests.Session
) -> None:
    """ref: Credentials auth errors: wrong signature → 401 "Invalid token."."""
    header, payload, _signature = token(http, fake).split(".")
    response = http.get(
        f"{fake.url}/api/v2/credentials/",
        params={"username": "x"},
        headers=auth(f"{header}.{payload}.AAAA"),
        timeout=5,
    )
    assert (response.status_code, response.json()) == (401, {"detail": "Invalid token."})


# ---------------------------------------------------------------------------- Credentials writes


def test_credential_upsert_answers_201_with_a_stable_uuid(
    fake: FakeOpenEdx, http: requests.Session
) -> None:
    """ref: Credentials POST credentials/: create, repeat, revoke, re-award all 201, same uuid."""
    fake.add_course_run(RUN)
    jwt = token(http, fake)
    answers = [
        post_credential(http, fake, jwt, course_payload(status=status))
        for status in ("awarded", "awarded", "revoked", "awarded")
    ]
    assert [answer.status_code for answer in answers] == [201, 201, 201, 201]
    assert len({answer.json()["uuid"] for answer in answers}) == 1
    assert fake.credentials("alice")[0].status == "awarded"


def test_null_date_override_deletes_an_existing_override(
    fake: FakeOpenEdx, http: requests.Session
) -> None:
    """ref: Credentials POST credentials/: a null date_override deletes an existing override."""
    fake.add_course_run(RUN)
    jwt = token(http, fake)
    with_date = {**course_payload(), "date_override": {"date": "2026-01-02T03:04:05Z"}}
    first = post_credential(http, fake, jwt, with_date).json()
    second = post_credential(http, fake, jwt, course_payload()).json()
    assert (first["date_override"], second["date_override"]) == (
        {"date": "2026-01-02T03:04:05Z"},
        None,
    )


def test_a_different_mode_is_ignored_once_the_run_has_a_config(
    fake: FakeOpenEdx, http: requests.Session
) -> None:
    """ref: Credentials POST credentials/: one certificate config per run; other modes ignored."""
    fake.add_course_run(RUN)
    jwt = token(http, fake)
    post_credential(http, fake, jwt, course_payload())
    other = course_payload()
    other["credential"]["mode"] = "professional"
    answer = post_credential(http, fake, jwt, other)
    assert (answer.status_code, answer.json()["credential"]["mode"]) == (201, "verified")


def test_reads_answer_the_runs_config_type_as_every_learners_mode(
    fake: FakeOpenEdx, http: requests.Session
) -> None:
    """ref: Credentials, Consequence for reads (observed): honor in a verified run reads verified.

    Every course-run credential of a run is filed under the run's one certificate config,
    and ``GET credentials/`` answers the config's type as the credential's ``mode``; a
    credential put straight into the fake is filed the same way.
    """
    fake.add_course_run(RUN)
    fake.add_course_run(RUN2)
    fake.add_course_certificate_config(RUN, "verified")
    jwt = token(http, fake)
    honor = course_payload(username="bob")
    honor["credential"]["mode"] = "honor"
    assert post_credential(http, fake, jwt, honor).status_code == 201
    fake.add_course_certificate_config(RUN2, "verified")
    fake.add_credential("carol", course_run=RUN2, mode="honor")
    modes = {}
    for username in ("bob", "carol"):
        answer = http.get(
            f"{fake.url}/api/v2/credentials/",
            params={"username": username, "type": "course-run"},
            headers=auth(jwt),
            timeout=5,
        )
        (item,) = answer.json()["results"]
        modes[username] = item["credential"]["mode"]
    assert modes == {"bob": "verified", "carol": "verified"}
    assert {
        key: config.certificate_type for key, config in fake.course_certificate_configs().items()
    } == {
        RUN: "verified",
        RUN2: "verified",
    }


def test_set_answer_serves_any_json_instead(fake: FakeOpenEdx, http: requests.Session) -> None:
    """Failure injection: an endpoint answers the given JSON (even a bare string), then recovers."""
    fake.add_course_run(RUN)
    fake.set_answer("lms", "not a list", endpoint="course_modes", times=1)
    url = f"{fake.url}/api/course_modes/v1/courses/{RUN}/"
    jwt = token(http, fake)
    first = http.get(url, headers=auth(jwt), timeout=5)
    second = http.get(url, headers=auth(jwt), timeout=5)
    assert (first.status_code, first.json()) == (200, "not a list")
    assert isinstance(second.json(), list)


def test_unknown_program_answers_the_nested_400(fake: FakeOpenEdx, http: requests.Session) -> None:
    """ref: Credentials errors: unknown program → 400 {"credential": {"program_uuid": ...}}."""
    fake.add_user("alice", 42)
    answer = post_credential(http, fake, token(http, fake), program_payload())
    assert answer.status_code == 400
    assert answer.json() == {
        "credential": {
            "program_uuid": f"No active ProgramCertificate exists for program [{PROGRAM}]"
        }
    }


def test_unknown_program_answers_404_on_older_deployments(
    fake: FakeOpenEdx, http: requests.Session
) -> None:
    """ref: Credentials errors: older deployments answered 404 for an unconfigured program."""
    fake.add_user("alice", 42)
    fake.set_program_not_configured_status(404)
    answer = post_credential(http, fake, token(http, fake), program_payload())
    assert answer.status_code == 404


def test_run_missing_from_the_catalog_answers_the_nested_400(
    fake: FakeOpenEdx, http: requests.Session
) -> None:
    """ref: Credentials errors: run not in the catalog → 400 "CourseCertificate failed ..."."""
    fake.add_course_run(RUN, in_credentials_catalog=False)
    answer = post_credential(http, fake, token(http, fake), course_payload())
    assert answer.status_code == 400
    assert answer.json() == {
        "credential": {
            "course_run_key": "CourseCertificate failed to create because the CourseRun "
            f"{RUN} doesn't exist in the catalog"
        }
    }


def test_inactive_course_config_answers_the_nested_400(
    fake: FakeOpenEdx, http: requests.Session
) -> None:
    """ref: Credentials errors: inactive course config → 400 "No active CourseCertificate ..."."""
    fake.add_course_run(RUN)
    fake.add_course_certificate_config(RUN, "verified", is_active=False)
    answer = post_credential(http, fake, token(http, fake), course_payload())
    assert (answer.status_code, answer.json()) == (
        400,
        {
            "credential": {
                "course_run_key": f"No active CourseCertificate exists for course run [{RUN}]"
            }
        },
    )


def test_bad_status_answers_400(fake: FakeOpenEdx, http: requests.Session) -> None:
    """ref: Credentials errors: a bad status → 400 {"status": [... is not a valid choice.]}."""
    fake.add_course_run(RUN)
    answer = post_credential(http, fake, token(http, fake), course_payload(status="x"))
    assert (answer.status_code, answer.json()) == (400, {"status": ['"x" is not a valid choice.']})


def test_program_award_for_a_learner_without_user_row_answers_500(
    fake: FakeOpenEdx, http: requests.Session
) -> None:
    """ref: Credentials: 500 on a program award for a learner Credentials has no user row for."""
    fake.add_user("alice", 42, in_credentials=False)
    fake.add_program(PROGRAM, {"edX+DemoX": {RUN: "verified"}})
    answer = post_credential(http, fake, token(http, fake), program_payload())
    assert answer.status_code == 500


def test_program_date_override_is_ignored(fake: FakeOpenEdx, http: requests.Session) -> None:
    """ref: Credentials POST credentials/: date_override is ignored for programs."""
    fake.add_user("alice", 42)
    fake.add_program(PROGRAM, {"edX+DemoX": {RUN: "verified"}})
    payload = {**program_payload(), "date_override": {"date": "2026-01-02T03:04:05Z"}}
    answer = post_credential(http, fake, token(http, fake), payload)
    assert (answer.status_code, answer.json()["date_override"]) == (201, None)


def test_course_certificate_config_upsert_answers_201(
    fake: FakeOpenEdx, http: requests.Session
) -> None:
    """ref: Credentials POST course_certificates/: upsert by run and type, 201 both times."""
    jwt = token(http, fake)
    url = f"{fake.url}/api/v2/course_certificates/"
    body = {
        "course_id": RUN,
        "certificate_type": "verified",
        "certificate_available_date": "2026-09-01T00:00:00Z",
        "is_active": True,
    }
    created = http.post(url, json=body, headers=auth(jwt), timeout=5)
    updated = http.post(
        url, json={**body, "certificate_available_date": None}, headers=auth(jwt), timeout=5
    )
    assert (created.status_code, updated.status_code) == (201, 201)
    assert fake.course_certificate_configs()[RUN].certificate_available_date is None


@pytest.mark.parametrize("missing", ["is_active", "certificate_available_date"])
def test_course_certificate_config_without_a_field_answers_500(
    fake: FakeOpenEdx, http: requests.Session, missing: str
) -> None:
    """ref: Credentials POST course_certificates/: omitting is_active or the CAD → 500."""
    body = {
        "course_id": RUN,
        "certificate_type": "verified",
        "certificate_available_date": None,
        "is_active": True,
    }
    del body[missing]
    answer = http.post(
        f"{fake.url}/api/v2/course_certificates/",
        json=body,
        headers=auth(token(http, fake)),
        timeout=5,
    )
    assert answer.status_code == 500


def test_course_certificate_config_rejects_credit_and_the_text_none(
    fake: FakeOpenEdx, http: requests.Session
) -> None:
    """ref: Credentials POST course_certificates/: credit → 400; the text "None" is no date."""
    jwt = token(http, fake)
    url = f"{fake.url}/api/v2/course_certificates/"
    base = {"course_id": RUN, "certificate_available_date": None, "is_active": True}
    credit = http.post(
        url, json={**base, "certificate_type": "credit"}, headers=auth(jwt), timeout=5
    )
    text_none = http.post(
        url,
        json={**base, "certificate_type": "verified", "certificate_available_date": "None"},
        headers=auth(jwt),
        timeout=5,
    )
    assert (credit.status_code, credit.json()) == (
        400,
        {"certificate_type": ['"credit" is not a valid choice.']},
    )
    assert text_none.status_code == 400


def test_second_certificate_type_for_a_run_answers_500(
    fake: FakeOpenEdx, http: requests.Session
) -> None:
    """ref: Credentials POST course_certificates/: a second type for a run with a config → 500."""
    jwt = token(http, fake)
    url = f"{fake.url}/api/v2/course_certificates/"
    base = {"course_id": RUN, "certificate_available_date": None, "is_active": True}
    http.post(url, json={**base, "certificate_type": "verified"}, headers=auth(jwt), timeout=5)
    second = http.post(
        url, json={**base, "certificate_type": "honor"}, headers=auth(jwt), timeout=5
    )
    assert second.status_code == 500


def test_course_certificate_config_is_staff_only(fake: FakeOpenEdx, http: requests.Session) -> None:
    """ref: Credentials POST course_certificates/: staff only (403 otherwise)."""
    fake.add_oauth_client("learner-app", "s3cret", username="bob", lms_user_id=7, is_staff=False)
    answer = http.post(
        f"{fake.url}/api/v2/course_certificates/",
        json={"course_id": RUN, "certificate_type": "verified"},
        headers=auth(token(http, fake, "learner-app", "s3cret")),
        timeout=5,
    )
    assert answer.status_code == 403


# ---------------------------------------------------------------------------- Credentials reads


def test_list_is_20_per_page_with_full_next_urls_and_404_past_the_end(
    fake: FakeOpenEdx, http: requests.Session
) -> None:
    """ref: Credentials GET credentials/: 20 a page, page_size ignored, full next, 404 past end."""
    for index in range(45):
        fake.add_credential("alice", course_run=f"course-v1:edX+C{index}+1T2026", mode="verified")
    jwt = token(http, fake)
    url: str | None = f"{fake.url}/api/v2/credentials/?username=alice&page_size=100"
    sizes = []
    while url:
        page = http.get(url, headers=auth(jwt), timeout=5).json()
        sizes.append(len(page["results"]))
        url = page["next"]
        assert url is None or url.startswith(fake.url)
    past = http.get(
        f"{fake.url}/api/v2/credentials/",
        params={"username": "alice", "page": "4"},
        headers=auth(jwt),
        timeout=5,
    )
    assert sizes == [20, 20, 5]
    assert (past.status_code, past.json()) == (404, {"detail": "Invalid page."})


def test_list_filters_by_type_status_and_program(fake: FakeOpenEdx, http: requests.Session) -> None:
    """ref: GET credentials/: type, status, program_uuid filter; unknown type ignored."""
    fake.add_credential("alice", course_run=RUN, mode="verified")
    fake.add_credential("alice", program_uuid=PROGRAM)
    fake.add_credential("alice", program_uuid="other", status="revoked")
    jwt = token(http, fake)

    def count(**params: str) -> int:
        answer = http.get(
            f"{fake.url}/api/v2/credentials/",
            params={"username": "alice", **params},
            headers=auth(jwt),
            timeout=5,
        )
        return int(answer.json()["count"])

    assert count(type="program") == 2
    assert count(type="program", status="awarded") == 1
    assert count(program_uuid=PROGRAM) == 1
    assert count(type="nonsense") == 3


def test_unknown_status_filter_answers_400(fake: FakeOpenEdx, http: requests.Session) -> None:
    """ref: Credentials GET credentials/: an unknown status → 400."""
    answer = http.get(
        f"{fake.url}/api/v2/credentials/",
        params={"username": "alice", "status": "bogus"},
        headers=auth(token(http, fake)),
        timeout=5,
    )
    assert answer.status_code == 400


def test_only_visible_hides_credentials_before_their_available_date(
    fake: FakeOpenEdx, http: requests.Session
) -> None:
    """ref: GET credentials/: only_visible hides credentials before their (courses') CAD."""
    future = datetime.now(UTC) + timedelta(days=30)
    fake.add_program(PROGRAM, {"edX+DemoX": {RUN: "verified"}})
    fake.add_course_certificate_config(RUN, "verified", certificate_available_date=future)
    fake.add_credential("alice", course_run=RUN, mode="verified")
    fake.add_credential("alice", program_uuid=PROGRAM)
    jwt = token(http, fake)

    def count(**params: str) -> int:
        answer = http.get(
            f"{fake.url}/api/v2/credentials/",
            params={"username": "alice", **params},
            headers=auth(jwt),
            timeout=5,
        )
        return int(answer.json()["count"])

    assert (count(), count(only_visible="true")) == (2, 0)
    fake.add_course_certificate_config(RUN, "verified", certificate_available_date=None)
    assert count(only_visible="true") == 2


def test_reading_another_users_list_needs_view_permission(
    fake: FakeOpenEdx, http: requests.Session
) -> None:
    """ref: Credentials GET credentials/: an admin token without view_usercredential gets 403."""
    fake.add_oauth_client("admin-app", "s3cret", username="admin", lms_user_id=2, permissions=())
    fake.add_oauth_client(
        "super-app", "s3cret", username="root", lms_user_id=3, permissions=(), is_superuser=True
    )
    url = f"{fake.url}/api/v2/credentials/"
    admin = http.get(
        url,
        params={"username": "alice"},
        headers=auth(token(http, fake, "admin-app", "s3cret")),
        timeout=5,
    )
    own = http.get(
        url,
        params={"username": "admin"},
        headers=auth(token(http, fake, "admin-app", "s3cret")),
        timeout=5,
    )
    root = http.get(
        url,
        params={"username": "alice"},
        headers=auth(token(http, fake, "super-app", "s3cret")),
        timeout=5,
    )
    assert (admin.status_code, own.status_code, root.status_code) == (403, 200, 200)


def test_a_permission_granted_while_running_applies_to_the_token_already_issued(
    fake: FakeOpenEdx, http: requests.Session
) -> None:
    """ref: Credentials checks permissions per request: a grant needs no new token."""
    fake.add_oauth_client("admin-app", "s3cret", username="admin", lms_user_id=2, permissions=())
    jwt = token(http, fake, "admin-app", "s3cret")

    def read() -> int:
        url = f"{fake.url}/api/v2/credentials/"
        answer = http.get(url, params={"username": "alice"}, headers=auth(jwt), timeout=5)
        return answer.status_code

    before = read()
    fake.set_permissions("admin", ["view_usercredential"])
    assert (before, read()) == (403, 200)


def test_non_staff_are_throttled_after_15_requests_a_minute(
    fake: FakeOpenEdx, http: requests.Session
) -> None:
    """ref: Credentials throttling: non-staff get 429 + Retry-After after 15 requests a minute."""
    fake.add_oauth_client("learner-app", "s3cret", username="bob", lms_user_id=7, is_staff=False)
    jwt = token(http, fake, "learner-app", "s3cret")
    answers = [
        http.get(
            f"{fake.url}/api/v2/credentials/",
            params={"username": "bob"},
            headers=auth(jwt),
            timeout=5,
        )
        for _ in range(16)
    ]
    last = answers[-1]
    assert [answer.status_code for answer in answers[:15]] == [200] * 15
    assert last.status_code == 429
    assert last.headers["Retry-After"] == "60"
    assert last.json() == {"detail": "Request was throttled. Expected available in 60 seconds."}


def test_staff_are_never_throttled(fake: FakeOpenEdx, http: requests.Session) -> None:
    """ref: Credentials throttling: staff are never throttled."""
    jwt = token(http, fake)
    statuses = {
        http.get(
            f"{fake.url}/api/v2/credentials/",
            params={"username": "alice"},
            headers=auth(jwt),
            timeout=5,
        ).status_code
        for _ in range(20)
    }
    assert statuses == {200}


def test_permission_is_checked_before_the_throttle(
    fake: FakeOpenEdx, http: requests.Session
) -> None:
    """ref: Credentials throttling: permission is checked before the throttle (403s not counted)."""
    fake.add_oauth_client(
        "learner-app", "s3cret", username="bob", lms_user_id=7, is_staff=False, permissions=()
    )
    jwt = token(http, fake, "learner-app", "s3cret")
    url = f"{fake.url}/api/v2/credentials/"
    denied = [
        http.get(url, params={"username": "alice"}, headers=auth(jwt), timeout=5).status_code
        for _ in range(20)
    ]
    own = http.get(url, params={"username": "bob"}, headers=auth(jwt), timeout=5)
    assert set(denied) == {403}
    assert own.status_code == 200


# ---------------------------------------------------------------- LMS, Studio, Discovery


def test_lms_certificates_list_is_passing_and_viewable_only(
    fake: FakeOpenEdx, http: requests.Session
) -> None:
    """ref: LMS: the certificates list is a plain list of passing certificates, viewable only."""
    fake.add_course_run(RUN)
    fake.add_course_run(RUN2, certificates_viewable=False)
    fake.add_lms_certificate("alice", RUN, status="downloadable")
    fake.add_lms_certificate("alice", RUN2, status="downloadable")
    fake.add_lms_certificate("alice", "course-v1:edX+Failed+1T2026", status="notpassing")
    answer = http.get(
        f"{fake.url}/api/certificates/v0/certificates/alice/",
        headers=auth(token(http, fake)),
        timeout=5,
    )
    assert [item["course_id"] for item in answer.json()] == [RUN]
    assert answer.json()[0]["certificate_type"] == "verified"


def test_lms_certificate_detail_answers_404_without_a_certificate(
    fake: FakeOpenEdx, http: requests.Session
) -> None:
    """ref: LMS: per-run certificate detail answers 404 with code no_certificate_for_user."""
    answer = http.get(
        f"{fake.url}/api/certificates/v0/certificates/alice/courses/{RUN}/",
        headers=auth(token(http, fake)),
        timeout=5,
    )
    assert (answer.status_code, answer.json()["error_code"]) == (404, "no_certificate_for_user")


def test_course_modes_are_a_plain_list_of_mode_slugs(
    fake: FakeOpenEdx, http: requests.Session
) -> None:
    """ref: LMS: course modes is a plain list of {course_id, mode_slug, ...}."""
    fake.add_course_run(RUN, modes=("audit", "verified"))
    answer = http.get(
        f"{fake.url}/api/course_modes/v1/courses/{RUN}/",
        headers=auth(token(http, fake)),
        timeout=5,
    )
    assert [item["mode_slug"] for item in answer.json()] == ["audit", "verified"]


def test_studio_course_details_has_no_trailing_slash(
    fake: FakeOpenEdx, http: requests.Session
) -> None:
    """ref: Studio: course_details/{course_id} has no trailing slash; it has the behaviour."""
    fake.add_course_run(
        RUN, display_behavior="end_with_date", certificate_available_date="2026-09-01T00:00:00Z"
    )
    jwt = token(http, fake)
    url = f"{fake.url}/api/contentstore/v1/course_details/{RUN}"
    answer = http.get(url, headers=auth(jwt), timeout=5)
    slashed = http.get(f"{url}/", headers=auth(jwt), timeout=5)
    body = answer.json()
    assert (body["certificates_display_behavior"], body["certificate_available_date"]) == (
        "end_with_date",
        "2026-09-01T00:00:00Z",
    )
    assert slashed.status_code == 404


def test_discovery_lists_uuids_then_details(fake: FakeOpenEdx, http: requests.Session) -> None:
    """ref: Discovery: uuids_only=1 is a flat UUID list (active, retired); details per program."""
    fake.add_program(PROGRAM, {"edX+DemoX": {RUN: "verified", RUN2: None}})
    fake.add_program("retired-one", {}, status="retired")
    fake.add_program("unpublished-one", {}, status="unpublished")
    jwt = token(http, fake)
    uuids = http.get(
        f"{fake.urls['discovery']}/programs/",
        params=[
            ("exclude_utm", "1"),
            ("status", "active"),
            ("status", "retired"),
            ("uuids_only", "1"),
        ],
        headers=auth(jwt),
        timeout=5,
    ).json()
    detail = http.get(
        f"{fake.urls['discovery']}/programs/{PROGRAM}/",
        params={"exclude_utm": 1},
        headers=auth(jwt),
        timeout=5,
    ).json()
    runs = detail["courses"][0]["course_runs"]
    assert sorted(uuids) == sorted([PROGRAM, "retired-one"])
    assert [(run["key"], run["type"]) for run in runs] == [(RUN, "verified"), (RUN2, None)]


# ---------------------------------------------------------------------------- knobs and records


def test_error_knob_fails_exactly_times_then_serves(
    fake: FakeOpenEdx, http: requests.Session
) -> None:
    """The error knob with ``times`` answers its status that many times, then serves normally."""
    fake.set_error("credentials", 503, times=2, retry_after=7)
    jwt = token(http, fake)
    answers = [
        http.get(
            f"{fake.url}/api/v2/credentials/",
            params={"username": "a"},
            headers=auth(jwt),
            timeout=5,
        )
        for _ in range(3)
    ]
    assert [answer.status_code for answer in answers] == [503, 503, 200]
    assert answers[0].headers["Retry-After"] == "7"


def test_endpoint_knob_wins_over_service_knob(fake: FakeOpenEdx, http: requests.Session) -> None:
    """An endpoint-level error knob applies only to that endpoint and wins over the service one."""
    fake.set_error("credentials", 500, endpoint="credentials_post")
    jwt = token(http, fake)
    read = http.get(
        f"{fake.url}/api/v2/credentials/", params={"username": "a"}, headers=auth(jwt), timeout=5
    )
    write = post_credential(http, fake, jwt, course_payload())
    assert (read.status_code, write.status_code) == (200, 500)


def test_learner_knob_fails_only_that_learners_requests(
    fake: FakeOpenEdx, http: requests.Session
) -> None:
    """An error knob scoped to one learner answers its status to that learner's requests only."""
    fake.add_course_run(RUN)
    fake.set_error("credentials", 500, endpoint="credentials_post", username="alice")
    jwt = token(http, fake)
    alice = post_credential(http, fake, jwt, course_payload("alice"))
    bob = post_credential(http, fake, jwt, course_payload("bob"))
    fake.clear_error("credentials", endpoint="credentials_post", username="alice")
    again = post_credential(http, fake, jwt, course_payload("alice"))
    assert (alice.status_code, bob.status_code, again.status_code) == (500, 201, 201)


def test_refused_outage_comes_back_on_the_same_port(
    fake: FakeOpenEdx, http: requests.Session
) -> None:
    """A refused outage stops listening; clearing it listens again on the same port."""
    url = f"{fake.urls['discovery']}/programs/"
    jwt = token(http, fake)
    fake.set_outage("discovery", "refused")
    with pytest.raises(requests.ConnectionError):
        http.get(url, headers=auth(jwt), timeout=5)
    fake.clear_outage()
    assert http.get(url, headers=auth(jwt), timeout=5).status_code == 200


def test_refused_outage_of_one_service_with_separate_ports(http: requests.Session) -> None:
    """With per-service ports, one service refuses connections while the others answer."""
    with FakeOpenEdx.start(per_service_ports=True) as fake:
        jwt = token(http, fake)
        fake.set_outage("credentials", "refused")
        lms = http.get(
            f"{fake.urls['lms']}/api/certificates/v0/certificates/alice/",
            headers=auth(jwt),
            timeout=5,
        )
        with pytest.raises(requests.ConnectionError):
            http.get(f"{fake.urls['credentials']}/api/v2/credentials/", timeout=5)
        assert lms.status_code == 200


def test_reset_outage_resets_the_connection(fake: FakeOpenEdx, http: requests.Session) -> None:
    """A reset outage aborts each request's connection instead of answering it."""
    fake.set_outage("lms", "reset")
    with pytest.raises(requests.ConnectionError):
        http.get(f"{fake.url}/api/course_modes/v1/courses/{RUN}/", timeout=5)
    assert fake.requests(service="lms")[0].status is None


def test_503_outage_answers_503(fake: FakeOpenEdx, http: requests.Session) -> None:
    """A 503 outage answers every request of the service with 503."""
    fake.set_outage("studio", "503", retry_after=30)
    answer = http.get(f"{fake.url}/api/contentstore/v1/course_details/{RUN}", timeout=5)
    assert (answer.status_code, answer.headers["Retry-After"]) == (503, "30")


def test_chaos_answers_random_5xx_timeouts_and_resets_at_its_rates(
    fake: FakeOpenEdx, http: requests.Session
) -> None:
    """Chaos fails about its rates of requests, each kind recorded as a fault; the rest serve."""
    fake.add_course_run(RUN)
    jwt = token(http, fake)
    fake.set_chaos("lms", error_rate=0.2, statuses=(500, 503), reset_rate=0.2)
    url = f"{fake.url}/api/course_modes/v1/courses/{RUN}/"
    statuses: list[int | None] = []
    for _ in range(200):
        try:
            statuses.append(http.get(url, headers=auth(jwt), timeout=5).status_code)
        except requests.ConnectionError:
            statuses.append(None)
    records = fake.requests(service="lms")
    faults = [record.fault for record in records]
    assert 20 <= faults.count("error") <= 60
    assert 20 <= faults.count("reset") <= 60
    assert {record.status for record in records if record.fault == "error"} <= {500, 503}
    assert all(record.status == 200 for record in records if record.fault is None)
    assert statuses.count(200) == faults.count(None)
    fake.clear_chaos()
    assert http.get(url, headers=auth(jwt), timeout=5).status_code == 200


def test_a_chaos_timeout_holds_the_request_until_the_client_gives_up(
    fake: FakeOpenEdx, http: requests.Session
) -> None:
    """A chaos timeout never answers nor applies; its record ends when the client hangs up."""
    fake.add_course_run(RUN)
    jwt = token(http, fake)
    fake.set_chaos("credentials", timeout_rate=1.0, timeout_seconds=30)
    with pytest.raises(requests.ReadTimeout):
        http.post(
            f"{fake.url}/api/v2/credentials/", json=course_payload(), headers=auth(jwt), timeout=0.3
        )
    deadline = time.monotonic() + 10
    while not fake.requests(service="credentials") and time.monotonic() < deadline:
        time.sleep(0.02)  # recorded once the fake notices the hang-up
    (record,) = fake.requests(service="credentials")
    assert (record.fault, record.status) == ("timeout", None)
    assert record.ended - record.started < 5  # not the 30 s bound: the client hung up
    assert fake.credentials() == []


def test_only_requests_that_reached_the_service_have_no_fault(
    fake: FakeOpenEdx, http: requests.Session
) -> None:
    """Outages and error knobs are recorded as faults; a served request (even a 4xx) is not."""
    headers = auth(token(http, fake))
    fake.set_error("lms", 500, times=1)
    fake.set_outage("studio", "503")
    http.get(f"{fake.url}/api/course_modes/v1/courses/{RUN}/", headers=headers, timeout=5)
    http.get(f"{fake.url}/api/course_modes/v1/courses/{RUN}/", headers=headers, timeout=5)
    http.get(f"{fake.url}/api/contentstore/v1/course_details/{RUN}", headers=headers, timeout=5)
    assert [(r.endpoint, r.status, r.fault) for r in fake.requests()][1:] == [
        ("course_modes", 500, "error"),
        ("course_modes", 404, None),
        ("course_details", 503, "outage"),
    ]


def test_records_are_saved_as_json_lines_and_issued_tokens_are_listed(
    fake: FakeOpenEdx, http: requests.Session, tmp_path: Path
) -> None:
    """``save_records`` writes one JSON object per request; ``issued_tokens`` lists every token."""
    first, second = token(http, fake), token(http, fake)
    path = tmp_path / "records.jsonl"
    assert fake.save_records(str(path)) == 2
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["endpoint"] for line in lines] == ["access_token", "access_token"]
    assert lines[0]["payload"]["client_secret"] == "***"
    assert fake.issued_tokens() == [first, second]


def test_writes_record_payload_learner_and_request_id(
    fake: FakeOpenEdx, http: requests.Session
) -> None:
    """Every write is recorded with payload, username, LMS user id, run, request id and times."""
    fake.add_user("alice", 42)
    fake.add_course_run(RUN)
    response = http.post(
        f"{fake.url}/api/v2/credentials/",
        json=course_payload(),
        headers={**auth(token(http, fake)), "X-Request-ID": "event-1"},
        timeout=5,
    )
    (write,) = fake.writes(username="alice")
    assert response.status_code == 201
    assert (write.endpoint, write.lms_user_id, write.course_run, write.request_id) == (
        "credentials_post",
        42,
        RUN,
        "event-1",
    )
    assert write.payload == course_payload()
    assert write.started <= write.ended


def test_token_requests_are_recorded_without_the_secret(
    fake: FakeOpenEdx, http: requests.Session
) -> None:
    """A token request is recorded (not as a write) with the client secret masked."""
    token(http, fake)
    (record,) = fake.requests(service="oauth")
    assert record.payload["client_secret"] == "***"
    assert not record.is_write


def test_concurrency_is_measured_overall_and_per_learner(fake: FakeOpenEdx) -> None:
    """Concurrent requests are counted overall and per learner (here: 4 at once for one learner)."""
    fake.set_latency("lms", 0.5)
    barrier = threading.Barrier(4)

    def read() -> None:
        with requests.Session() as session:
            barrier.wait()
            session.get(f"{fake.url}/api/certificates/v0/certificates/alice/", timeout=5)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = fake.stats()
    assert stats.max_in_flight >= 2
    assert stats.max_in_flight_per_learner["alice"] == stats.max_in_flight


def test_reset_forgets_state_knobs_and_records_but_keeps_the_default_client(
    fake: FakeOpenEdx, http: requests.Session
) -> None:
    """``reset`` returns to a fresh fake whose default OAuth client still gets tokens."""
    fake.add_credential("alice", course_run=RUN)
    fake.set_error("credentials", 500)
    token(http, fake)
    fake.reset()
    jwt = token(http, fake)
    answer = http.get(
        f"{fake.url}/api/v2/credentials/",
        params={"username": "alice"},
        headers=auth(jwt),
        timeout=5,
    )
    assert (answer.status_code, answer.json()["count"]) == (200, 0)
    assert len(fake.requests()) == 2


def test_service_user_is_staff_with_view_permission(fake: FakeOpenEdx) -> None:
    """The default OAuth client is a staff user with view_usercredential (what the README asks)."""
    user = fake.app.users[SERVICE_USERNAME]
    assert (user.is_staff, "view_usercredential" in user.permissions) == (True, True)


def test_runs_as_a_process_driven_through_the_control_endpoint(http: requests.Session) -> None:
    """``python -m tests.fakes.openedx --port N`` serves and is driven with RemoteFake."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.openedx", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        started = json.loads(process.stdout.readline())
        remote = RemoteFake(started["url"])
        remote.call("add_user", username="alice", lms_user_id=42)
        remote.call("add_course_run", key=RUN, end="2026-06-01T00:00:00Z")
        jwt = token_at(http, started["urls"]["oauth"])
        answer = http.post(
            f"{started['urls']['credentials']}/api/v2/credentials/",
            json=course_payload(),
            headers=auth(jwt),
            timeout=5,
        )
        writes = remote.call("writes", username="alice")
        assert answer.status_code == 201
        assert [write["lms_user_id"] for write in writes] == [42]
    finally:
        process.terminate()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


def token_at(http: requests.Session, oauth_url: str) -> str:
    response = http.post(
        f"{oauth_url}/access_token",
        data={
            "grant_type": "client_credentials",
            "client_id": DEFAULT_CLIENT_ID,
            "client_secret": DEFAULT_CLIENT_SECRET,
            "token_type": "jwt",
        },
        timeout=5,
    )
    return str(response.json()["access_token"])
