"""The fast serving mode answers what the threaded server answers (same fake, other sockets)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.fakes.openedx import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, FakeOpenEdx, RemoteFake
from tests.fakes.openedx.fast import FastServer

RUN = "course-v1:edX+DemoX+1T2026"


def _world(fake: FakeOpenEdx) -> None:
    fake.add_user("alice", 42)
    fake.add_user("bob", 43)
    fake.add_course_run(RUN, modes=("audit", "verified"))
    fake.add_lms_certificate("alice", RUN, mode="verified")


@pytest.fixture
def servers() -> Iterator[tuple[dict[str, str], dict[str, str], FastServer]]:
    threaded = FakeOpenEdx.start(keep_records=False)
    plain = FakeOpenEdx(keep_records=False)
    _world(threaded)
    _world(plain)
    fast = FastServer(plain)
    fast.start()
    yield threaded.urls, fast.urls, fast
    fast.stop()
    threaded.stop()


def _conversation(urls: dict[str, str]) -> list[tuple[int, Any]]:
    """A token, writes, reads of both kinds, a 404 and a 405; answers without ids and dates."""
    with requests.Session() as http:
        token = http.post(
            f"{urls['oauth']}/access_token",
            data={
                "grant_type": "client_credentials",
                "client_id": DEFAULT_CLIENT_ID,
                "client_secret": DEFAULT_CLIENT_SECRET,
                "token_type": "jwt",
            },
            timeout=5,
        ).json()["access_token"]
        headers = {"Authorization": f"JWT {token}"}
        answers = [
            http.post(
                f"{urls['credentials']}/api/v2/credentials/",
                json={
                    "username": name,
                    "status": "awarded",
                    "credential": {"course_run_key": RUN, "mode": "verified"},
                },
                headers=headers,
                timeout=5,
            )
            for name in ("alice", "bob", "alice")
        ]
        answers += [
            http.get(
                f"{urls['credentials']}/api/v2/credentials/",
                params={"username": "alice", "status": "awarded"},
                headers=headers,
                timeout=5,
            ),
            http.get(
                f"{urls['lms']}/api/certificates/v0/certificates/alice/", headers=headers, timeout=5
            ),
            http.get(
                f"{urls['lms']}/api/certificates/v0/certificates/bob/", headers=headers, timeout=5
            ),
            http.get(
                f"{urls['lms']}/api/course_modes/v1/courses/{RUN}/", headers=headers, timeout=5
            ),
            http.get(f"{urls['credentials']}/api/v2/credentials/", timeout=5),
            http.get(f"{urls['credentials']}/api/v2/nowhere/", headers=headers, timeout=5),
            http.delete(f"{urls['credentials']}/api/v2/credentials/", headers=headers, timeout=5),
        ]
    return [(answer.status_code, _stable(answer)) for answer in answers]


def _stable(answer: requests.Response) -> Any:
    if "json" not in answer.headers.get("Content-Type", ""):
        return answer.text
    return _strip(answer.json())


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: _strip(item)
            for key, item in value.items()
            if key
            not in (
                "uuid",
                "created",
                "modified",
                "created_date",
                "modified_date",
                "certificate_url",
            )
        }
    if isinstance(value, list):
        return [_strip(item) for item in value]
    return value


def test_the_fast_server_answers_as_the_threaded_one(
    servers: tuple[dict[str, str], dict[str, str], FastServer],
) -> None:
    threaded, fast, _ = servers
    assert _conversation(fast) == _conversation(threaded)


def test_the_fast_server_counts_what_it_served_and_takes_control_calls(
    servers: tuple[dict[str, str], dict[str, str], FastServer],
) -> None:
    _, urls, server = servers
    _conversation(urls)
    served = RemoteFake(server.url).call("served")
    assert served["credentials/credentials_post"] == 3
    assert served["lms/certificates_list"] == 2
    RemoteFake(server.url).call("add_user", username="carol", lms_user_id=44)
    assert "carol" in server.fake.app.users
    RemoteFake(server.url).call("clear_served")
    assert RemoteFake(server.url).call("served") == {}
