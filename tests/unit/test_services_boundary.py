"""The HTTP boundary holds against hostile input: ids, answers, sizes, drips, URLs, names.

Each test here is a regression test of issue 8: a request id that is no header value, a
body that is no JSON or too large, a server that drips its answer, a username that is a dot
segment, user info in a service URL.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from consumer.config import describe
from consumer.errors import (
    ConsumerError,
    MalformedAnswerError,
    RejectedError,
    ServiceUnavailableError,
    TransientError,
)
from consumer.services.bundle import Services, build_services
from consumer.services.check import check_services
from consumer.services.http import MAX_BODY_BYTES, HttpClient
from consumer.services.request_parts import REQUEST_ID_LIMIT, request_id_header
from consumer.services.settings import ServiceSettings
from tests.fakes.openedx import FakeOpenEdx
from tests.fakes.openedx.settings import service_settings

RUN = "course-v1:edX+DemoX+1T2026"


def raised(call: Callable[[], object]) -> ConsumerError:
    with pytest.raises(ConsumerError) as caught:
        call()
    return caught.value


# ---------------------------------------------------------------------------- a raw server


class RawServer:
    """A loopback server that answers every connection with ``serve(connection)``."""

    def __init__(self, serve: Callable[[socket.socket], None]) -> None:
        self._serve = serve
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket) -> None:
        with connection:
            try:
                connection.recv(65536)
                self._serve(connection)
            except OSError:
                pass

    def stop(self) -> None:
        self._stopping.set()
        self._socket.close()


@pytest.fixture
def raw_server() -> Iterator[Callable[[Callable[[socket.socket], None]], RawServer]]:
    servers: list[RawServer] = []

    def start(serve: Callable[[socket.socket], None]) -> RawServer:
        server = RawServer(serve)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def head(status: int = 200, length: int | None = None) -> bytes:
    size = f"Content-Length: {length}\r\n" if length is not None else ""
    return (
        f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{size}Connection: close\r\n\r\n"
    ).encode()


def client(root: str, **options: Any) -> HttpClient:
    settings: dict[str, Any] = {
        "service": "lms",
        "root": root,
        "connect_timeout": 2,
        "read_timeout": 5,
        "pool_size": 2,
    }
    settings.update(options)
    return HttpClient(**settings)


# ---------------------------------------------------------------------------- 2a: request ids


@pytest.mark.parametrize(
    "event_id",
    ["ce-\N{GRINNING FACE}-1", "ce-1\r\nX-Injected: yes", "ce-\x00\x7f-1", "x" * 10_000, " é "],
)
def test_any_event_id_is_sent_as_a_safe_bounded_request_id(
    fake: FakeOpenEdx, services: Services, event_id: str
) -> None:
    """An emoji, CR/LF, control characters or 10 kB in ce_id still apply the request.

    The id is a correlation id: it goes out percent-encoded and bounded, never as an error.
    """
    fake.add_course_run(RUN)
    modes = services.lms.course_modes(course_run=RUN, request_id=event_id)
    (record,) = fake.requests(endpoint="course_modes")
    assert modes == ("audit", "verified")
    assert record.request_id == request_id_header(event_id)
    assert record.request_id is not None
    assert len(record.request_id) <= REQUEST_ID_LIMIT
    assert all(0x21 <= ord(char) <= 0x7E for char in record.request_id)


def test_request_ids_stay_distinct_and_plain_ids_unchanged() -> None:
    """Plain ids go out as they are; two long ids that share a prefix stay apart."""
    assert request_id_header("0b2f6c1e-7c2e-11ef-9a8e-0242ac120002") == (
        "0b2f6c1e-7c2e-11ef-9a8e-0242ac120002"
    )
    assert request_id_header("x" * 500 + "a") != request_id_header("x" * 500 + "b")


# ---------------------------------------------------------------------------- 10: dot segments


@pytest.mark.parametrize("username", [".", ".."])
def test_dot_usernames_are_quoted_as_path_segments(
    fake: FakeOpenEdx, services: Services, username: str
) -> None:
    """A username ``.`` or ``..`` reaches that learner's list, not a parent path."""
    fake.add_course_run(RUN)
    fake.add_lms_certificate(username, RUN)
    found = services.lms.passing_certificates(username=username, request_id="e")
    (record,) = fake.requests(service="lms")
    assert [cert.course_run for cert in found] == [RUN]
    assert (record.endpoint, record.username) == ("certificates_list", username)


# ---------------------------------------------------------------------------- 10: total deadline


def drip_headers(connection: socket.socket) -> None:
    """One byte a second, from the status line on: no read ever waits a full second."""
    for byte in head(200, 2) + b"{}":
        connection.sendall(bytes([byte]))
        threading.Event().wait(1.0)


def drip_body(connection: socket.socket) -> None:
    """Headers at once, then the body one byte a second."""
    body = json.dumps({"detail": "x" * 30}).encode()
    connection.sendall(head(200, len(body)))
    for byte in body:
        connection.sendall(bytes([byte]))
        threading.Event().wait(1.0)


@pytest.mark.parametrize("serve", [drip_headers, drip_body], ids=["headers", "body"])
def test_a_dripping_server_cannot_hold_a_request_past_the_total_timeout(
    raw_server: Callable[..., RawServer], serve: Callable[[socket.socket], None]
) -> None:
    """One byte a second beats the read timeout, not the total one: total_timeout, transient."""
    server = raw_server(serve)
    slow = client(server.url, read_timeout=5, total_timeout=2)
    try:
        error = raised(lambda: slow.call("GET", "x", endpoint="course_modes", request_id="e"))
    finally:
        slow.close()
    assert isinstance(error, TransientError)
    assert not isinstance(error, ServiceUnavailableError)
    assert error.reason == "total_timeout"


def test_the_total_timeout_comes_from_the_settings(fake: FakeOpenEdx) -> None:
    """CONSUMER_HTTP_TOTAL_TIMEOUT reaches every client: a slow service ends at that bound."""
    fake.add_course_run(RUN)
    fake.set_latency("lms", 3.0)
    services = build_services(service_settings(fake, read_timeout=10, total_timeout=1))
    try:
        error = raised(lambda: services.lms.course_modes(course_run=RUN, request_id="e"))
    finally:
        services.close()
    assert error.reason == "total_timeout"


def test_a_pooled_connection_is_reused_after_a_deadline(fake: FakeOpenEdx) -> None:
    """A finished request's deadline never cuts the connection a later request reuses."""
    fake.add_course_run(RUN)
    services = build_services(service_settings(fake, total_timeout=0.5))
    try:
        for _ in range(3):
            assert services.lms.course_modes(course_run=RUN, request_id="e")
            threading.Event().wait(0.6)  # every earlier deadline has passed by now
        assert services.lms.course_modes(course_run=RUN, request_id="e")
    finally:
        services.close()


# ---------------------------------------------------------------------------- 10: size cap


def test_an_answer_over_the_size_cap_is_a_malformed_answer(
    raw_server: Callable[..., RawServer],
) -> None:
    """A 2xx body larger than 10 MiB is not read whole: a classified, retryable failure."""
    body = b"[" + b"0," * (MAX_BODY_BYTES // 2) + b"0]"

    def serve(connection: socket.socket) -> None:
        connection.sendall(head(200) + body)  # no Content-Length: read until the cap

    server = raw_server(serve)
    big = client(server.url)
    try:
        error = raised(lambda: big.call("GET", "x", endpoint="course_modes", request_id="e"))
    finally:
        big.close()
    assert isinstance(error, MalformedAnswerError)
    assert error.reason == "answer_too_large"


def test_a_declared_oversized_answer_is_refused_before_reading(
    raw_server: Callable[..., RawServer],
) -> None:
    """A Content-Length over the cap is refused at once; an error status keeps its class."""

    def serve(connection: socket.socket) -> None:
        connection.sendall(head(200, MAX_BODY_BYTES + 1) + b"[]")

    def serve_error(connection: socket.socket) -> None:
        connection.sendall(head(400, MAX_BODY_BYTES + 1) + b"{}")

    ok, bad = raw_server(serve), raw_server(serve_error)
    first, second = client(ok.url), client(bad.url)
    try:
        too_large = raised(lambda: first.call("GET", "x", endpoint="e", request_id="e"))
        rejected = raised(lambda: second.call("GET", "x", endpoint="e", request_id="e"))
    finally:
        first.close()
        second.close()
    assert too_large.reason == "answer_too_large"
    assert isinstance(rejected, RejectedError)
    assert rejected.status == 400


# ---------------------------------------------------------------------------- 3: not JSON


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"<html>proxy login</html>", "html"),
        (b"[" * 100_000 + b"]" * 100_000, "nested deeper than the parser's recursion"),
        (b"1" * 5000, "an integer past Python's 4300-digit limit"),
        (b"\xff\xfe\xfd", "not UTF-8"),
    ],
)
def test_a_2xx_that_is_not_json_is_a_malformed_answer(
    raw_server: Callable[..., RawServer], body: bytes, why: str
) -> None:
    """A 2xx body that json cannot read is a classified failure, whatever the parser raises."""
    del why

    def serve(connection: socket.socket) -> None:
        connection.sendall(head(200, len(body)) + body)

    server = raw_server(serve)
    odd = client(server.url)
    try:
        error = raised(lambda: odd.call("GET", "x", endpoint="course_modes", request_id="e"))
    finally:
        odd.close()
    assert isinstance(error, MalformedAnswerError)
    assert error.reason == "invalid_json_response"


# ---------------------------------------------------------------------------- the real transport
# Moved from test_services_http.py (which now runs on a fake transport): what only real
# sockets show, against the pooled transport of production.


def test_a_slow_answer_is_a_read_timeout(
    raw_server: Callable[[Callable[[socket.socket], None]], RawServer],
) -> None:
    """An answer slower than the read timeout is a transient read_timeout, not an outage."""

    def never_in_time(_connection: socket.socket) -> None:
        threading.Event().wait(2.0)

    server = raw_server(never_in_time)
    slow = client(server.url, read_timeout=0.1)
    try:
        error = raised(lambda: slow.call("GET", "x", endpoint="course_modes", request_id="e"))
    finally:
        slow.close()
    assert isinstance(error, TransientError)
    assert not isinstance(error, ServiceUnavailableError)
    assert error.reason == "read_timeout"


def test_a_refused_connection_is_an_outage_without_the_path_in_the_message() -> None:
    """A refused connection is an outage whose message names the host, never the path's username."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    refused = client(f"http://127.0.0.1:{port}")
    path = "api/certificates/v0/certificates/alice/"
    try:
        error = raised(
            lambda: refused.call("GET", path, endpoint="certificates_list", request_id="e")
        )
    finally:
        refused.close()
    assert isinstance(error, ServiceUnavailableError)
    assert error.reason == "connection_refused"
    assert f"127.0.0.1:{port}" in str(error)
    assert "alice" not in str(error)


def test_a_reset_connection_is_an_outage(
    raw_server: Callable[[Callable[[socket.socket], None]], RawServer],
) -> None:
    """A connection reset by the service (RST instead of an answer) is outage-class."""

    def reset(connection: socket.socket) -> None:
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    server = raw_server(reset)
    resetting = client(server.url)
    try:
        error = raised(lambda: resetting.call("GET", "x", endpoint="course_modes", request_id="e"))
    finally:
        resetting.close()
    assert isinstance(error, ServiceUnavailableError)
    assert error.reason in ("connection_reset", "connection_error")


# ---------------------------------------------------------------------------- 8: URL user info


def test_user_info_of_a_service_url_never_reaches_a_message(fake: FakeOpenEdx) -> None:
    """``https://user:pass@host`` shows as host:port in errors, check output and describe()."""
    fake.set_outage("lms", "503")
    settings = service_settings(
        fake,
        lms_url=fake.urls["lms"].replace("http://", "http://lms-user:lms-pass@"),
        credentials_url=fake.urls["credentials"].replace("http://", "http://cu:cred-pass@"),
    )
    services = build_services(settings)
    try:
        error = raised(lambda: services.lms.course_modes(course_run=RUN, request_id="e"))
    finally:
        services.close()
    printed = "\n".join(result.line() for result in check_services(settings))
    described = str(describe(settings))
    for text in (str(error), printed, described):
        assert "lms-pass" not in text
        assert "cred-pass" not in text
        assert "lms-user" not in text
    assert f"127.0.0.1:{fake.url.rsplit(':', 1)[1]}" in str(error)
    assert "***@127.0.0.1" in described


def test_describe_masks_user_info_even_in_a_url_that_does_not_parse() -> None:
    """A URL urllib cannot split still shows no user info."""
    settings = ServiceSettings(
        oauth_url="http://u:p@[::1",
        oauth_client_id="id",
        oauth_client_secret="s",
        credentials_url="https://c:secret-pw@credentials.example.com:8443/x",
        lms_url="http://lms",
    )
    rows = dict(describe(settings))
    assert "p@" not in rows["oauth_url"]
    assert rows["credentials_url"] == "https://***@credentials.example.com:8443/x"
    assert rows["lms_url"] == "http://lms"
    assert rows["oauth_client_secret"] == "***"


def test_the_raw_server_helper_answers(raw_server: Callable[..., RawServer]) -> None:
    """The raw server of these tests answers a plain request (so its failures mean something)."""

    def serve(connection: socket.socket) -> None:
        connection.sendall(head(200, 2) + b"[]")

    server = raw_server(serve)
    assert requests.get(server.url, timeout=5).json() == []
