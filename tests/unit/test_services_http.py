"""The one HTTP path: headers, error classification, Retry-After and the guard hooks."""

from __future__ import annotations

import email.utils
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import requests.exceptions as rex

from consumer.errors import (
    CircuitOpenError,
    ConsumerError,
    PermanentError,
    ServiceUnavailableError,
    TransientError,
)
from consumer.services.http import (
    EXCEPTION_MAP,
    USER_AGENT,
    AuthRejectedError,
    CallRecord,
    HttpClient,
    RejectedError,
    build_session,
    classify_status,
    parse_retry_after,
    summarise_body,
    translate_exception,
)
from consumer.services.oauth import OAuthTokens
from tests.fakes.openedx import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, FakeOpenEdx

NOW = 1_800_000_000.0


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


Factory = Callable[..., HttpClient]


@pytest.fixture
def client_for(fake: FakeOpenEdx) -> Iterator[Factory]:
    made: list[HttpClient] = []

    def make(service: str = "credentials", **options: Any) -> HttpClient:
        oauth = HttpClient(
            service="oauth",
            root=fake.urls["oauth"],
            connect_timeout=2,
            read_timeout=5,
            pool_size=2,
        )
        tokens = OAuthTokens(
            oauth, client_id=DEFAULT_CLIENT_ID, client_secret=DEFAULT_CLIENT_SECRET
        )
        settings: dict[str, Any] = {
            "service": service,
            "root": fake.urls[service],
            "connect_timeout": 2,
            "read_timeout": 5,
            "pool_size": 2,
            "tokens": tokens,
        }
        settings.update(options)
        client = HttpClient(**settings)
        made.extend([oauth, client])
        return client

    yield make
    for client in made:
        client.close()


def raised(call: Callable[[], object]) -> ConsumerError:
    with pytest.raises(ConsumerError) as caught:
        call()
    return caught.value


# ---------------------------------------------------------------------------- exceptions


def test_every_requests_exception_class_is_mapped_explicitly() -> None:
    """Fails when requests grows an exception class the translation table does not name."""
    classes = {
        klass
        for _, klass in inspect.getmembers(rex, inspect.isclass)
        if issubclass(klass, rex.RequestException)
    }
    assert classes - set(EXCEPTION_MAP) == set()


@pytest.mark.parametrize(
    ("exception", "expected", "outage"),
    [
        (rex.ConnectTimeout(), ServiceUnavailableError, True),
        (rex.ConnectionError(), ServiceUnavailableError, True),
        (rex.SSLError(), ServiceUnavailableError, True),
        (rex.ProxyError(), ServiceUnavailableError, True),
        (rex.ReadTimeout(), TransientError, False),
        (rex.ChunkedEncodingError(), TransientError, False),
        (rex.JSONDecodeError("bad", "x", 0), TransientError, False),
        (rex.InvalidURL(), PermanentError, False),
        (rex.TooManyRedirects(), PermanentError, False),
    ],
)
def test_requests_exceptions_translate_to_the_error_tree(
    exception: rex.RequestException, expected: type[ConsumerError], outage: bool
) -> None:
    """Connection failures are outages, read failures transient, malformed requests permanent."""
    error = translate_exception(exception, service="lms", endpoint="course_modes", host="lms:80")
    assert type(error) is expected
    assert isinstance(error, ServiceUnavailableError) is outage


def test_connection_refused_is_named_in_the_reason() -> None:
    """A refused connection wrapped by urllib3 and requests still reads as connection_refused."""
    inner = ConnectionRefusedError(111, "Connection refused")
    wrapped = rex.ConnectionError(OSError("Max retries exceeded", inner))
    wrapped.args[0].__cause__ = inner
    error = translate_exception(wrapped, service="lms", endpoint="course_modes", host="lms:80")
    assert error.reason == "connection_refused"


# ---------------------------------------------------------------------------- statuses


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, None),
        (201, None),
        (408, TransientError),
        (429, TransientError),
        (500, TransientError),
        (501, TransientError),
        (502, ServiceUnavailableError),
        (503, ServiceUnavailableError),
        (504, ServiceUnavailableError),
        (301, RejectedError),
        (400, RejectedError),
        (401, AuthRejectedError),
        (403, AuthRejectedError),
        (404, RejectedError),
        (409, RejectedError),
    ],
)
def test_statuses_classify_as_the_table_says(
    status: int, expected: type[ConsumerError] | None
) -> None:
    """2xx pass, 408/429/5xx are transient (502-504 outages), other 4xx and 3xx are rejections."""
    error = classify_status(
        status,
        service="credentials",
        endpoint="credentials_post",
        host="h",
        body=None,
        retry_after=None,
    )
    assert (type(error) if error else None) is expected


def test_rejection_keeps_the_body_and_redacts_the_username_in_the_message() -> None:
    """A 4xx keeps its parsed body; its message never shows the redacted username."""
    body = {"username": ["alice is not allowed"]}
    error = classify_status(
        400,
        service="credentials",
        endpoint="credentials_post",
        host="h",
        body=body,
        retry_after=None,
        redact=("alice",),
    )
    assert isinstance(error, RejectedError)
    assert error.body == body
    assert "alice" not in str(error)


def test_body_summary_is_one_short_line() -> None:
    """Long or multi-line bodies are summarised to one line of bounded length."""
    summary = summarise_body("<html>\n" + "x" * 1000 + "\n</html>")
    assert "\n" not in summary
    assert len(summary) <= 300


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("7", 7.0),
        ("0", 0.0),
        ("-3", 0.0),
        (email.utils.formatdate(NOW + 30, usegmt=True), 30.0),
        (email.utils.formatdate(NOW - 30, usegmt=True), 0.0),
        ("soon", None),
        ("nan", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_reads_seconds_and_http_dates(
    header: str | None, expected: float | None
) -> None:
    """Retry-After is delta-seconds or an HTTP-date; never negative; unreadable means None."""
    assert parse_retry_after(header, now=NOW) == expected


# ---------------------------------------------------------------------------- against the fake


def test_requests_carry_user_agent_request_id_and_jwt(
    fake: FakeOpenEdx, client_for: Factory
) -> None:
    """Every request says who sends it and which event it is for, with a JWT the service accepts."""
    reply = client_for().call(
        "GET",
        "api/v2/credentials/",
        endpoint="credentials_list",
        request_id="event-77",
        params={"username": "alice"},
    )
    (record,) = fake.requests(service="credentials")
    assert reply.status == 200
    assert (record.user_agent, record.request_id) == (USER_AGENT, "event-77")
    assert USER_AGENT.startswith("credentials-consumer/")


def test_429_with_retry_after_is_transient_and_carries_the_wait(
    fake: FakeOpenEdx, client_for: Factory
) -> None:
    """A 429 becomes a TransientError whose retry_after is the service's Retry-After."""
    fake.set_error("credentials", 429, retry_after=7)
    error = raised(
        lambda: client_for().call(
            "GET", "api/v2/credentials/", endpoint="credentials_list", request_id="e"
        )
    )
    assert isinstance(error, TransientError)
    assert not isinstance(error, ServiceUnavailableError)
    assert (error.status, error.retry_after) == (429, 7.0)


def test_503_with_an_http_date_is_an_outage_with_retry_after(
    fake: FakeOpenEdx, client_for: Factory
) -> None:
    """A 503 is outage-class; an HTTP-date Retry-After is measured from the injected wall clock."""
    fake.set_outage("credentials", "503", retry_after=email.utils.formatdate(NOW + 12, usegmt=True))
    client = client_for(wall_clock=lambda: NOW)
    error = raised(
        lambda: client.call(
            "GET", "api/v2/credentials/", endpoint="credentials_list", request_id="e"
        )
    )
    assert isinstance(error, ServiceUnavailableError)
    assert error.retry_after == 12.0


def test_500_is_transient_but_not_an_outage(fake: FakeOpenEdx, client_for: Factory) -> None:
    """A 500 is retried, but is not a sign that the service is down."""
    fake.set_error("credentials", 500)
    error = raised(
        lambda: client_for().call(
            "GET", "api/v2/credentials/", endpoint="credentials_list", request_id="e"
        )
    )
    assert isinstance(error, TransientError)
    assert not isinstance(error, ServiceUnavailableError)
    assert error.status == 500


def test_slow_answer_is_a_read_timeout(fake: FakeOpenEdx, client_for: Factory) -> None:
    """An answer slower than the read timeout is a transient read_timeout, not an outage."""
    fake.set_latency("lms", 2.0)
    client = client_for("lms", read_timeout=0.1)
    error = raised(
        lambda: client.call(
            "GET", "api/course_modes/v1/courses/x/", endpoint="course_modes", request_id="e"
        )
    )
    assert isinstance(error, TransientError)
    assert not isinstance(error, ServiceUnavailableError)
    assert error.reason == "read_timeout"


def test_refused_connection_is_an_outage_without_the_url_in_the_message(
    fake: FakeOpenEdx, client_for: Factory
) -> None:
    """A refused connection is an outage whose message names the host, never the path's username."""
    client = client_for("lms")
    path = "api/certificates/v0/certificates/alice/"
    client.call("GET", path, endpoint="certificates_list", request_id="e")
    fake.set_outage("lms", "refused")
    error = raised(lambda: client.call("GET", path, endpoint="certificates_list", request_id="e"))
    assert isinstance(error, ServiceUnavailableError)
    assert error.reason == "connection_refused"
    assert "alice" not in str(error)


def test_reset_connection_is_an_outage(fake: FakeOpenEdx, client_for: Factory) -> None:
    """A connection reset by the service is outage-class."""
    fake.set_outage("credentials", "reset")
    error = raised(
        lambda: client_for().call(
            "GET", "api/v2/credentials/", endpoint="credentials_list", request_id="e"
        )
    )
    assert isinstance(error, ServiceUnavailableError)
    assert error.reason in ("connection_reset", "connection_error")


def test_forbidden_is_an_auth_rejection_with_the_service_body(
    fake: FakeOpenEdx, client_for: Factory
) -> None:
    """A 403 is an AuthRejectedError (outage-class: the worker's permissions) with the body."""
    fake.add_oauth_client("plain", "s3cret", username="viewer", permissions=())
    client = client_for()
    tokens = OAuthTokens(
        HttpClient(
            service="oauth", root=fake.urls["oauth"], connect_timeout=2, read_timeout=5, pool_size=1
        ),
        client_id="plain",
        client_secret="s3cret",
    )
    restricted = HttpClient(
        service="credentials",
        root=client.root,
        connect_timeout=2,
        read_timeout=5,
        pool_size=1,
        tokens=tokens,
    )
    try:
        error = raised(
            lambda: restricted.call(
                "GET",
                "api/v2/credentials/",
                endpoint="credentials_list",
                request_id="e",
                params={"username": "alice"},
            )
        )
    finally:
        restricted.close()
    assert isinstance(error, AuthRejectedError)
    assert error.status == 403
    assert "You do not have permission to perform this action." in str(error)


def test_guard_sees_every_request_with_its_outcome(fake: FakeOpenEdx, client_for: Factory) -> None:
    """The guard runs before each request and after it with status, outage flag and request id."""
    guard = RecordingGuard()
    client = client_for(guard=guard)
    client.call("GET", "api/v2/credentials/", endpoint="credentials_list", request_id="ok-1")
    fake.set_error("credentials", 503)
    raised(
        lambda: client.call(
            "GET", "api/v2/credentials/", endpoint="credentials_list", request_id="down-2"
        )
    )
    assert guard.before_calls == [
        ("credentials", "credentials_list", "ok-1"),
        ("credentials", "credentials_list", "down-2"),
    ]
    assert [(r.request_id, r.status, r.ok, r.outage) for r in guard.records] == [
        ("ok-1", 200, True, False),
        ("down-2", 503, False, True),
    ]


def test_a_refusing_guard_stops_the_request_before_it_is_sent(
    fake: FakeOpenEdx, client_for: Factory
) -> None:
    """A guard raising CircuitOpenError stops the request before it is sent; no ``after``."""
    guard = RecordingGuard()
    guard.open = True
    client = client_for(guard=guard, tokens=None)
    error = raised(
        lambda: client.call(
            "GET", "api/v2/credentials/", endpoint="credentials_list", request_id="e"
        )
    )
    assert isinstance(error, CircuitOpenError)
    assert (fake.requests(service="credentials"), guard.records) == ([], [])


def test_session_pool_is_sized_to_the_concurrency() -> None:
    """The session keeps as many connections per host as the worker runs requests at once."""
    with build_session(pool_size=37) as session:
        adapter = session.get_adapter("http://example.invalid/")
        assert isinstance(adapter, requests.adapters.HTTPAdapter)
        assert adapter._pool_maxsize == 37  # type: ignore[attr-defined]
        assert adapter.max_retries.total == 0
