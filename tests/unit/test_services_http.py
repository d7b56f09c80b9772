"""The one HTTP path, on a fake transport: headers, tokens, classification and the guard.

``MockTransport`` (``tests.support.transport``) stands where the pooled connections stand in
production, so these tests need no server; what only real sockets can show (refused and
reset connections, a slow answer) is in ``test_services_boundary.py``.
"""

from __future__ import annotations

import email.utils
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import requests.exceptions as rex

from consumer.errors import (
    AuthRejectedError,
    CircuitOpenError,
    ConsumerError,
    ServiceUnavailableError,
    TransientError,
)
from consumer.services import deadline
from consumer.services.calls import CallRecord
from consumer.services.http import HttpClient, pooled_transport
from consumer.services.request_parts import USER_AGENT, prepared_url
from tests.support.transport import Answer, Handler, MockTransport

NOW = 1_800_000_000.0
ROOT = "http://credentials.test"
PATH = "api/v2/credentials/"


class RecordingGuard:
    """Records the hook calls; refuses requests while ``open``."""

    def __init__(self) -> None:
        self.before_calls: list[tuple[str, str, str]] = []
        self.records: list[CallRecord] = []
        self.open = False

    def before(self, service: str, endpoint: str, request_id: str) -> None:
        self.before_calls.append((service, endpoint, request_id))
        if self.open:
            raise CircuitOpenError("open", service=service)

    def after(self, record: CallRecord) -> None:
        self.records.append(record)


class Tokens:
    """A token source handing out ``token-1``, ``token-2``... and recording invalidations."""

    def __init__(self) -> None:
        self.issued = 0
        self.current: str | None = None
        self.invalidated: list[str] = []

    def token(self, request_id: str) -> str:
        del request_id
        if self.current is None:
            self.issued += 1
            self.current = f"token-{self.issued}"
        return self.current

    def invalidate(self, token: str) -> None:
        self.invalidated.append(token)
        if self.current == token:
            self.current = None


Factory = Callable[..., tuple[HttpClient, MockTransport]]


@pytest.fixture
def client_for() -> Iterator[Factory]:
    """``client_for(handler, **options)``: a credentials client sending to ``handler``."""
    made: list[HttpClient] = []

    def make(handler: Handler, **options: Any) -> tuple[HttpClient, MockTransport]:
        transport = MockTransport(handler)
        settings: dict[str, Any] = {
            "service": "credentials",
            "root": ROOT,
            "connect_timeout": 2,
            "read_timeout": 5,
            "pool_size": 2,
            "transport": transport,
        }
        settings.update(options)
        client = HttpClient(**settings)
        made.append(client)
        return client, transport

    yield make
    for client in made:
        client.close()


def answering(*answers: Answer) -> Handler:
    """A handler giving ``answers`` in turn, the last one for ever."""
    queue = list(answers)

    def handle(_request: requests.PreparedRequest) -> Answer:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return handle


def raising(error: Exception) -> Handler:
    def handle(_request: requests.PreparedRequest) -> Answer:
        raise error

    return handle


def call(client: HttpClient, request_id: str = "e") -> object:
    return client.call("GET", PATH, endpoint="credentials_list", request_id=request_id)


def raised(thunk: Callable[[], object]) -> ConsumerError:
    with pytest.raises(ConsumerError) as caught:
        thunk()
    return caught.value


# ---------------------------------------------------------------------------- requests


def test_requests_carry_user_agent_request_id_and_jwt(client_for: Factory) -> None:
    """Every request says who sends it and which event it is for, with the source's JWT."""
    client, transport = client_for(answering(Answer(200, {"results": []})), tokens=Tokens())
    reply = client.call(
        "GET", PATH, endpoint="credentials_list", request_id="event-77", params={"username": "a"}
    )
    (sent,) = transport.requests
    assert reply.status == 200
    assert (sent.headers["User-Agent"], sent.headers["X-Request-ID"]) == (USER_AGENT, "event-77")
    assert sent.headers["Authorization"] == "JWT token-1"
    assert sent.url == f"{ROOT}/{PATH}?username=a"
    assert USER_AGENT.startswith("credentials-consumer/")


def test_a_401_fetches_one_new_token_and_sends_again(client_for: Factory) -> None:
    """A rejected token is dropped and the request sent once more with a fresh one."""
    tokens = Tokens()
    client, transport = client_for(answering(Answer(401), Answer(200, {})), tokens=tokens)
    call(client)
    assert [sent.headers["Authorization"] for sent in transport.requests] == [
        "JWT token-1",
        "JWT token-2",
    ]
    assert tokens.invalidated == ["token-1"]


def test_a_second_401_is_an_auth_rejection(client_for: Factory) -> None:
    """A service that refuses the fresh token too: the worker's own client is wrong (outage)."""
    client, transport = client_for(answering(Answer(401)), tokens=Tokens())
    error = raised(lambda: call(client))
    assert isinstance(error, AuthRejectedError)
    assert len(transport.requests) == 2


# ---------------------------------------------------------------------------- answers


def test_429_with_retry_after_is_transient_and_carries_the_wait(client_for: Factory) -> None:
    """A 429 becomes a TransientError whose retry_after is the service's Retry-After."""
    client, _ = client_for(answering(Answer(429, headers={"Retry-After": "7"})))
    error = raised(lambda: call(client))
    assert isinstance(error, TransientError)
    assert not isinstance(error, ServiceUnavailableError)
    assert (error.status, error.retry_after, error.reason) == (429, 7.0, "http_429")


def test_503_with_an_http_date_is_an_outage_with_retry_after(client_for: Factory) -> None:
    """A 503 is outage-class; an HTTP-date Retry-After is measured from the injected wall clock."""
    when = email.utils.formatdate(NOW + 12, usegmt=True)
    client, _ = client_for(
        answering(Answer(503, headers={"Retry-After": when})), wall_clock=lambda: NOW
    )
    error = raised(lambda: call(client))
    assert isinstance(error, ServiceUnavailableError)
    assert error.retry_after == 12.0


def test_500_is_transient_but_not_an_outage(client_for: Factory) -> None:
    """A 500 is retried, but is not a sign that the service is down."""
    client, _ = client_for(answering(Answer(500, b"<html>oops</html>")))
    error = raised(lambda: call(client))
    assert isinstance(error, TransientError)
    assert not isinstance(error, ServiceUnavailableError)
    assert error.status == 500


def test_forbidden_is_an_auth_rejection_with_the_service_body(client_for: Factory) -> None:
    """A 403 is an AuthRejectedError (outage-class: the worker's permissions) with the body."""
    detail = {"detail": "You do not have permission to perform this action."}
    client, _ = client_for(answering(Answer(403, detail)), tokens=Tokens())
    error = raised(lambda: call(client))
    assert isinstance(error, AuthRejectedError)
    assert error.status == 403
    assert "You do not have permission to perform this action." in str(error)


def test_a_2xx_larger_than_the_cap_is_malformed(client_for: Factory) -> None:
    """An answer over ``max_body`` is not read whole: answer_too_large, retried."""
    client, _ = client_for(answering(Answer(200, b"[" + b"1," * 100 + b"1]")), max_body=64)
    assert raised(lambda: call(client)).reason == "answer_too_large"


# ---------------------------------------------------------------------------- transport errors


@pytest.mark.parametrize(
    ("error", "expected", "reason"),
    [
        (rex.ConnectTimeout(), ServiceUnavailableError, "connect_timeout"),
        (rex.ReadTimeout(), TransientError, "read_timeout"),
        (
            rex.ConnectionError(OSError("Max retries exceeded", ConnectionRefusedError(111))),
            ServiceUnavailableError,
            "connection_refused",
        ),
        (
            rex.ConnectionError(ConnectionResetError(104, "Connection reset by peer")),
            ServiceUnavailableError,
            "connection_reset",
        ),
    ],
    ids=["connect timeout", "read timeout", "refused", "reset"],
)
def test_what_the_transport_raises_is_translated_once(
    client_for: Factory, error: Exception, expected: type[ConsumerError], reason: str
) -> None:
    """The transport's exceptions become the error tree's, with the reason and the host only."""
    client, _ = client_for(raising(error))
    path = "api/certificates/v0/certificates/alice/"
    translated = raised(
        lambda: client.call("GET", path, endpoint="certificates_list", request_id="e")
    )
    assert (type(translated), translated.reason) == (expected, reason)
    assert "credentials.test" in str(translated)
    assert "alice" not in str(translated)


# ---------------------------------------------------------------------------- the guard


def test_guard_sees_every_request_with_its_outcome(client_for: Factory) -> None:
    """The guard runs before each request and after it with status, outage flag and request id."""
    guard = RecordingGuard()
    client, _ = client_for(answering(Answer(200, {}), Answer(503)), guard=guard)
    call(client, "ok-1")
    raised(lambda: call(client, "down-2"))
    assert guard.before_calls == [
        ("credentials", "credentials_list", "ok-1"),
        ("credentials", "credentials_list", "down-2"),
    ]
    assert [(r.request_id, r.status, r.ok, r.outage) for r in guard.records] == [
        ("ok-1", 200, True, False),
        ("down-2", 503, False, True),
    ]


def test_a_refusing_guard_stops_the_request_before_it_is_sent(client_for: Factory) -> None:
    """A guard raising CircuitOpenError stops the request before it is sent; no ``after``."""
    guard = RecordingGuard()
    guard.open = True
    client, transport = client_for(answering(Answer(200, {})), guard=guard)
    assert isinstance(raised(lambda: call(client)), CircuitOpenError)
    assert (transport.requests, guard.records) == ([], [])


# ---------------------------------------------------------------------------- environment


def test_proxies_and_ca_bundle_come_from_the_environment_read_when_the_client_is_built(
    client_for: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP(S)_PROXY and REQUESTS_CA_BUNDLE as requests reads them, once: later changes unseen."""
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.test:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/private-ca.pem")
    client, transport = client_for(answering(Answer(200, {})))
    monkeypatch.setenv("HTTP_PROXY", "http://other.test:8080")
    call(client)
    call(client)
    assert transport.settings == 2 * [
        {
            "verify": "/etc/ssl/private-ca.pem",
            "cert": None,
            "proxies": {"http": "http://proxy.test:3128"},
        }
    ]


def test_no_proxy_for_the_service_root_means_no_proxy_and_tls_is_verified_by_default(
    client_for: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NO_PROXY naming the service's host wins; without a CA bundle, the system's verifies."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "ALL_PROXY", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.test:3128")
    monkeypatch.setenv("NO_PROXY", "credentials.test")
    client, transport = client_for(answering(Answer(200, {})))
    call(client)
    assert transport.settings == [{"verify": True, "cert": None, "proxies": {}}]


def test_cookies_are_never_sent_back_and_redirects_never_followed(client_for: Factory) -> None:
    """A Set-Cookie is not returned on the next request; a 302 is an answer, not a hop."""
    client, transport = client_for(
        answering(
            Answer(200, {}, headers={"Set-Cookie": "sessionid=abc; Path=/"}),
            Answer(302, b"", headers={"Location": "http://elsewhere.test/"}),
        )
    )
    call(client)
    with pytest.raises(ConsumerError):
        call(client)
    assert [request.url for request in transport.requests] == 2 * [f"{ROOT}/{PATH}"]
    assert all("Cookie" not in request.headers for request in transport.requests)


def test_a_prepared_url_is_the_one_requests_prepares_and_a_bad_one_raises_each_time() -> None:
    """The cache changes nothing: same quoting and query; an invalid URL is never cached."""
    params = {"username": "Jos\u00e9 +&=/", "page": 2}
    fresh = requests.PreparedRequest()
    fresh.prepare_url(f"{ROOT}/api/v2/credentials/", params)
    assert prepared_url(f"{ROOT}/api/v2/credentials/", params) == fresh.url
    assert prepared_url(f"{ROOT}/api/v2/credentials/", params) == fresh.url
    listed = {"status": ["awarded", "revoked"]}  # not hashable: prepared without the cache
    fresh.prepare_url(f"{ROOT}/x", listed)
    assert prepared_url(f"{ROOT}/x", listed) == fresh.url
    for _ in range(2):
        with pytest.raises(rex.InvalidURL):
            prepared_url("http://", None)


def test_the_pooled_transport_looks_an_origin_s_pool_up_once_and_replaces_a_closed_one() -> None:
    """Same origin, same pool; another origin, another; a pool the manager closed is replaced."""
    adapter = pooled_transport(2)

    def pool_for(url: str, proxies: dict[str, str] | None = None) -> object:
        request = requests.PreparedRequest()
        request.prepare(method="GET", url=url)
        return adapter.get_connection_with_tls_context(request, True, proxies)

    try:
        first = pool_for("http://lms.test/api/a?x=1")
        assert pool_for("http://lms.test/api/b") is first
        assert pool_for("http://studio.test/api/a") is not first
        adapter.poolmanager.clear()  # an eviction: urllib3 forgets the pool and closes it
        first.close()  # type: ignore[attr-defined]
        replaced = pool_for("http://lms.test/api/a")
        assert replaced is not first
        assert replaced.pool is not None  # type: ignore[attr-defined]
        proxied = pool_for("http://lms.test/api/a", {"http": "http://proxy.test:3128"})
        assert proxied is not replaced
    finally:
        adapter.close()


# ---------------------------------------------------------------------------- the seam


def test_without_a_transport_the_client_pools_connections_its_deadline_can_cut() -> None:
    """The default transport keeps as many connections per host as the worker runs at once."""
    client = HttpClient(
        service="lms", root="http://lms.test", connect_timeout=2, read_timeout=5, pool_size=37
    )
    try:
        adapter = client._transport
    finally:
        client.close()
    assert isinstance(adapter, deadline.DeadlineAdapter)
    assert adapter._pool_maxsize == 37  # type: ignore[attr-defined]
    assert adapter.max_retries.total == 0


def test_the_pooled_transport_never_retries_and_never_blocks() -> None:
    """No urllib3 retries (retrying is the engine's job); the pool never makes a caller wait."""
    adapter = pooled_transport(5)
    try:
        assert adapter.max_retries.total == 0
        assert adapter._pool_block is False  # type: ignore[attr-defined]
    finally:
        adapter.close()
