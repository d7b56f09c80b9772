"""Any JSON a service answers goes through the clients and effects as a classified outcome.

Each example answers one endpoint with arbitrary JSON — of any shape, or a sane answer with
one part replaced by arbitrary JSON — while the other endpoints answer sanely, and applies a
command that reaches that endpoint. The only outcomes allowed are an ``EffectResult`` or a
``ConsumerError`` subclass: anything else would crash-loop the worker on one record.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumer.commands import (
    AwardPrograms,
    Command,
    RevokePrograms,
    SyncCertificateAvailableDate,
    SyncCourseCertificate,
)
from consumer.effects import EffectResult, Effects
from consumer.errors import ConsumerError
from consumer.events import Learner
from consumer.services.bundle import build_services
from consumer.services.settings import ServiceSettings
from tests.support.transport import MockTransport

ALICE = Learner(user_id=42, username="José.García")
A1 = "course-v1:edX+A+1T2026"
B1 = "course-v1:edX+B+1T2026"
P = "11111111-1111-4111-8111-111111111111"


def _course_run_item(run: str) -> dict[str, Any]:
    return {
        "username": ALICE.username,
        "credential": {"type": "course-run", "course_run_key": run, "mode": "verified"},
        "status": "awarded",
        "uuid": "c0ffee",
    }


def _certificate(run: str) -> dict[str, Any]:
    return {
        "username": ALICE.username,
        "course_id": run,
        "certificate_type": "verified",
        "status": "downloadable",
        "is_passing": True,
    }


def _credentials_list(request: requests.PreparedRequest) -> dict[str, Any]:
    """Alice holds A1; she holds program P only in the revocation's world."""
    query = parse_qs(urlsplit(request.url or "").query)
    if query.get("type") == ["course-run"]:
        results = [_course_run_item(A1)]
    elif request.headers.get("X-Request-ID") == "revoke":
        program = {"type": "program", "program_uuid": P}
        results = [{"credential": program, "status": "awarded", "uuid": "beef"}]
    else:
        results = []
    return {"count": len(results), "next": None, "previous": None, "results": results}


# A1 is not yet viewable: the LMS list leaves it out and the per-run read finds it.
SANE: dict[str, Callable[[requests.PreparedRequest], Any]] = {
    "access_token": lambda _r: {"access_token": "a.b.c", "expires_in": 3600},
    "credentials_list": _credentials_list,
    "credentials_post": lambda _r: {"uuid": "c0ffee"},
    "course_certificates_post": lambda _r: {"id": 1},
    "certificates_list": lambda _r: [_certificate("course-v1:edX+Other+1T2026")],
    "certificate_detail": lambda _r: _certificate(A1),
    "course_modes": lambda _r: [{"mode_slug": "audit"}, {"mode_slug": "verified"}],
    "course_details": lambda _r: {
        "certificates_display_behavior": "end_with_date",
        "certificate_available_date": "2026-07-01T00:00:00Z",
        "self_paced": False,
        "end_date": "2026-06-01T00:00:00+02:00",
    },
    "programs_list": lambda _r: [P],
    "program_detail": lambda _r: {
        "uuid": P,
        "status": "active",
        "courses": [
            {"key": "edX+A", "course_runs": [{"key": A1, "type": "verified"}]},
            {"key": "edX+B", "course_runs": [{"key": B1, "type": "verified"}]},
        ],
    },
}


ROUTES = (
    ("/access_token", "access_token", "access_token"),
    ("/api/v2/credentials/", "credentials_list", "credentials_post"),
    ("/api/v2/course_certificates/", "course_certificates_post", "course_certificates_post"),
    ("/api/course_modes/", "course_modes", "course_modes"),
    ("/course_details/", "course_details", "course_details"),
    ("/courses/course-v1:", "certificate_detail", "certificate_detail"),
    ("/api/certificates/v0/certificates/", "certificates_list", "certificates_list"),
    ("/programs/", "programs_list", "programs_list"),
)


def endpoint_of(request: requests.PreparedRequest) -> str:
    """The fake's endpoint name for a request of the worker's clients (GET, POST)."""
    path = urlsplit(request.url or "").path
    for part, read, write in ROUTES:
        if part in path and (part != "/programs/" or path.endswith(part)):
            return write if request.method == "POST" else read
    return "program_detail"


# Values that broke the clients before their answers were checked, drawn as often as the rest.
TRAPS = st.sampled_from(
    [
        "",
        "\r\n",
        "0001-01-01T00:00:00+05:00",
        "9999-12-31T23:59:59-05:00",
        "not a date",
        "http://[::1",
        0,
        -1,
        True,
        None,
        [],
        {},
        ["course-v1:edX+A+1T2026"],
        {"key": "course-v1:edX+A+1T2026"},
        float("inf"),
        float("nan"),
        10**30,
    ]
)

# Arbitrary JSON: every type, nested, with non-finite numbers and odd strings.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20) | TRAPS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=20), children, max_size=4)
    ),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = json.loads(json.dumps(value))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return copy


@st.composite
def answers(draw: st.DrawFn, endpoint: str) -> tuple[int, Any]:
    """A status and a body: arbitrary JSON, or a sane answer with one part replaced."""
    status = draw(st.sampled_from([200, 200, 200, 201, 400, 404]))
    if draw(st.booleans()):
        return status, draw(json_values)
    sane = SANE[endpoint](requests.Request("GET", "http://x/?type=course-run").prepare())
    path = draw(st.sampled_from(_paths(sane)[1:] or [()]))  # a part, not the whole answer
    return status, _replace(sane, path, draw(TRAPS | TRAPS | json_values))


COMMANDS: dict[str, Command] = {
    "award": AwardPrograms(learner=ALICE, course_run=B1, mode="verified", status="downloadable"),
    "revoke": RevokePrograms(learner=ALICE, course_run=A1),
    "cad": SyncCertificateAvailableDate(
        course_run=A1, pacing="instructor", end=datetime(2026, 6, 1, tzinfo=UTC)
    ),
    "sync": SyncCourseCertificate(learner=ALICE, course_run=A1, mode="verified", status="awarded"),
}

# Which endpoints each command reaches in a sane world (program cache: Discovery).
REACHED = {
    "award": [
        "access_token",
        "credentials_list",
        "certificates_list",
        "certificate_detail",
        "programs_list",
        "program_detail",
        "credentials_post",
    ],
    "revoke": [
        "access_token",
        "credentials_list",
        "programs_list",
        "program_detail",
        "credentials_post",
    ],
    "cad": ["access_token", "course_modes", "course_details", "course_certificates_post"],
    "sync": ["access_token", "credentials_post"],
}

SETTINGS = ServiceSettings(
    oauth_url="http://lms.test/oauth2",
    oauth_client_id="id",
    oauth_client_secret="secret",
    credentials_url="http://credentials.test",
    lms_url="http://lms.test",
    studio_url="http://studio.test",
    discovery_url="http://discovery.test/api/v1",
)


def apply_with(
    fuzzed: str, answer: tuple[int, Any], name: str, seen: set[str] | None = None
) -> EffectResult:
    """Apply command ``name`` with ``fuzzed`` answering ``answer``; the rest answer sanely."""
    status, body = answer

    def respond(request: requests.PreparedRequest) -> tuple[int, bytes]:
        endpoint = endpoint_of(request)
        if seen is not None:
            seen.add(endpoint)
        if endpoint == fuzzed:
            return status, json.dumps(body).encode()
        return (201 if request.method == "POST" else 200), json.dumps(
            SANE[endpoint](request)
        ).encode()

    services = build_services(SETTINGS, transport=MockTransport(respond))
    try:
        return Effects(services).apply(COMMANDS[name], name)
    finally:
        services.close()


CASES = [(name, endpoint) for name, endpoints in REACHED.items() for endpoint in endpoints]


@pytest.mark.parametrize(("command", "endpoint"), CASES, ids=[f"{c}-{e}" for c, e in CASES])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_json_answer_is_a_result_or_a_classified_error(
    command: str, endpoint: str, data: st.DataObject
) -> None:
    """Whatever JSON the endpoint answers, applying the command returns or raises ConsumerError."""
    answer = data.draw(answers(endpoint), label="answer")
    outcome: EffectResult | ConsumerError
    try:
        outcome = apply_with(endpoint, answer, command)
    except ConsumerError as error:
        outcome = error
    assert isinstance(outcome, EffectResult | ConsumerError)
    if isinstance(outcome, ConsumerError):
        assert outcome.reason
        assert ALICE.username not in str(outcome)


@pytest.mark.parametrize("command", sorted(REACHED))
def test_the_sane_world_applies_each_command_through_every_fuzzed_endpoint(command: str) -> None:
    """Sanely answered, each command is applied and asks every endpoint its fuzz cases name."""
    seen: set[str] = set()
    result = apply_with("none", (200, None), command, seen)
    assert result.status == "applied"
    assert seen == set(REACHED[command])
