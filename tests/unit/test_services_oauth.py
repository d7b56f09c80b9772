"""The JWT cache: one fetch at a time, refreshed before expiry, one refresh on a 401."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest

from consumer.config import describe
from consumer.errors import AuthRejectedError, ConsumerError, MalformedAnswerError, TransientError
from consumer.services.http import HttpClient
from consumer.services.oauth import OAuthTokens
from consumer.services.settings import ServiceSettings
from tests.fakes.openedx import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, FakeOpenEdx
from tests.support.clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1000.0)


@pytest.fixture
def oauth_http(fake: FakeOpenEdx) -> Iterator[HttpClient]:
    client = HttpClient(
        service="oauth", root=fake.urls["oauth"], connect_timeout=2, read_timeout=5, pool_size=8
    )
    yield client
    client.close()


@pytest.fixture
def tokens(oauth_http: HttpClient, clock: FakeClock) -> OAuthTokens:
    return OAuthTokens(
        oauth_http,
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_CLIENT_SECRET,
        refresh_margin=30,
        clock=clock,
    )


@pytest.fixture
def credentials(fake: FakeOpenEdx, tokens: OAuthTokens) -> Iterator[HttpClient]:
    client = HttpClient(
        service="credentials",
        root=fake.urls["credentials"],
        connect_timeout=2,
        read_timeout=5,
        pool_size=2,
        tokens=tokens,
    )
    yield client
    client.close()


def read(client: HttpClient) -> int:
    reply = client.call(
        "GET",
        "api/v2/credentials/",
        endpoint="credentials_list",
        request_id="e",
        params={"username": "alice"},
    )
    return reply.status


def test_token_request_is_the_documented_form(fake: FakeOpenEdx, tokens: OAuthTokens) -> None:
    """The token is fetched with a form body: client credentials, client id, token_type=jwt."""
    tokens.token("e")
    (record,) = fake.requests(service="oauth")
    assert record.payload == {
        "grant_type": "client_credentials",
        "client_id": DEFAULT_CLIENT_ID,
        "client_secret": "***",
        "token_type": "jwt",
    }


def test_one_token_serves_many_calls(fake: FakeOpenEdx, credentials: HttpClient) -> None:
    """A cached token is reused until it is due: three calls, one token request."""
    statuses = [read(credentials) for _ in range(3)]
    assert statuses == [200, 200, 200]
    assert fake.stats().token_requests == 1


def test_token_is_replaced_before_it_expires(
    fake: FakeOpenEdx, tokens: OAuthTokens, clock: FakeClock
) -> None:
    """A 100 s token is kept for 70 s (30 s margin) and replaced after, without any 401."""
    fake.set_token_lifetime(100)
    first = tokens.token("e")
    clock.now += 69
    kept = tokens.token("e")
    clock.now += 2
    replaced = tokens.token("e")
    assert kept == first
    assert replaced != first
    assert fake.stats().token_requests == 2


def test_short_lived_token_is_kept_for_half_its_life(
    fake: FakeOpenEdx, tokens: OAuthTokens, clock: FakeClock
) -> None:
    """When the lifetime is shorter than the margin, the token is replaced at half its lifetime."""
    fake.set_token_lifetime(10)
    first = tokens.token("e")
    clock.now += 4.9
    assert tokens.token("e") == first
    clock.now += 0.2
    assert tokens.token("e") != first


def test_expired_token_is_refreshed_once_on_401(fake: FakeOpenEdx, credentials: HttpClient) -> None:
    """A 401 "Token has expired." makes the client fetch one new token and send again."""
    read(credentials)
    fake.expire_tokens()
    assert read(credentials) == 200
    statuses = [record.status for record in fake.requests(service="credentials")]
    assert statuses == [200, 401, 200]
    assert fake.stats().token_requests == 2


def test_a_second_401_fails_after_exactly_one_refresh(
    fake: FakeOpenEdx, credentials: HttpClient
) -> None:
    """When the service keeps answering 401 the call fails, outage-class, after one refresh."""
    fake.set_error("credentials", 401)
    with pytest.raises(AuthRejectedError) as caught:
        read(credentials)
    assert caught.value.status == 401
    assert len(fake.requests(service="credentials")) == 2
    assert fake.stats().token_requests == 2


def test_wrong_secret_is_a_rejection_by_oauth(oauth_http: HttpClient) -> None:
    """A client secret the LMS refuses pauses the worker (outage-class), never dead-letters."""
    tokens = OAuthTokens(oauth_http, client_id=DEFAULT_CLIENT_ID, client_secret="wrong")
    with pytest.raises(AuthRejectedError) as caught:
        tokens.token("e")
    assert (caught.value.service, caught.value.status) == ("oauth", 401)


def test_unusable_token_answer_is_transient(fake: FakeOpenEdx, tokens: OAuthTokens) -> None:
    """A 200 without access_token/expires_in is a transient failure, not a cached garbage token."""
    fake.set_error("oauth", 200, times=1)
    with pytest.raises(TransientError):
        tokens.token("e")
    assert tokens.current() is None


def test_concurrent_callers_share_one_fetch(fake: FakeOpenEdx, tokens: OAuthTokens) -> None:
    """Eight threads asking at once cause one token request and all get the same token."""
    fake.set_latency("oauth", 0.2)
    barrier = threading.Barrier(8)
    got: list[str] = []
    lock = threading.Lock()

    def ask() -> None:
        barrier.wait()
        value = tokens.token("e")
        with lock:
            got.append(value)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == 8
    assert len(set(got)) == 1
    assert fake.stats().token_requests == 1


def test_invalidate_keeps_a_newer_token(fake: FakeOpenEdx, tokens: OAuthTokens) -> None:
    """Invalidating a token that is no longer cached keeps the cached one (no extra fetch)."""
    current = tokens.token("e")
    tokens.invalidate("some-older-token")
    assert tokens.token("e") == current
    assert fake.stats().token_requests == 1


def test_secrets_never_appear_in_reprs(tokens: OAuthTokens) -> None:
    """Neither the token cache nor the settings print the client secret."""
    settings = ServiceSettings(
        oauth_url="http://lms/oauth2",
        oauth_client_id="id",
        oauth_client_secret="hunter2",
        credentials_url="http://credentials",
        lms_url="http://lms",
    )
    tokens.token("e")
    printed = repr(tokens) + repr(settings) + repr(tokens.current()) + str(describe(settings))
    assert "hunter2" not in printed
    assert DEFAULT_CLIENT_SECRET not in printed
    assert ("oauth_client_secret", "***") in describe(settings)


@pytest.mark.parametrize(
    "token",
    [
        "eyJh.bad\r\nX-Injected: 1",
        "eyJh.with space",
        "eyJh.caf\N{LATIN SMALL LETTER E WITH ACUTE}",
        "x" * 10_000,
    ],
    ids=["crlf", "space", "non-ascii", "10k"],
)
def test_a_token_that_is_no_header_value_is_a_classified_failure_that_hides_it(
    fake: FakeOpenEdx, tokens: OAuthTokens, token: str
) -> None:
    """An access_token with CR/LF (or unsendable otherwise) is a malformed answer, never cached.

    Neither the message nor the repr of the error holds the token.
    """
    fake.set_answer("oauth", {"access_token": token, "expires_in": 3600}, times=1)
    with pytest.raises(MalformedAnswerError) as caught:
        tokens.token("e")
    assert tokens.current() is None
    assert "eyJh" not in str(caught.value) + repr(caught.value)
    assert "x" * 20 not in str(caught.value) + repr(caught.value)
    assert tokens.token("e") != token  # the next answer is a good one


@pytest.mark.parametrize(
    "expires_in", [0, -5, "3600", True, None, 10**400, float("inf"), [3600]], ids=repr
)
def test_a_lifetime_that_is_no_positive_number_is_a_classified_failure(
    fake: FakeOpenEdx, tokens: OAuthTokens, expires_in: object
) -> None:
    """expires_in of another type, not positive or not finite is a malformed answer."""
    body = json.loads(json.dumps({"access_token": "a.b.c", "expires_in": expires_in}))
    fake.set_answer("oauth", body, times=1)
    with pytest.raises(MalformedAnswerError):
        tokens.token("e")


@pytest.mark.parametrize(
    "echo",
    [
        {"error": "invalid_client", "client_secret": DEFAULT_CLIENT_SECRET + "é"},
        "grant_type=client_credentials&client_secret=fake-client-secret%C3%A9",
        {"error": "invalid_client", "form": "client_secret=fake-client-secret\\u00e9"},
    ],
    ids=["json", "form", "escaped"],
)
def test_the_client_secret_never_reaches_an_error_of_the_token_call(
    fake: FakeOpenEdx, oauth_http: HttpClient, echo: object
) -> None:
    """A provider echoing the form puts no client secret into the error; the client id stays."""
    secret = DEFAULT_CLIENT_SECRET + "é"
    fake.add_oauth_client("echoed-client", secret, username="echo")
    tokens = OAuthTokens(oauth_http, client_id="echoed-client", client_secret=secret)
    fake.set_answer("oauth", {"client": "echoed-client", "echo": echo}, status=400)
    with pytest.raises(ConsumerError) as caught:
        tokens.token("e")
    text = str(caught.value) + repr(caught.value)
    assert "fake-client-secret" not in text
    assert "echoed-client" in text
