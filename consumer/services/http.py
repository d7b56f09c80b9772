"""The one door every HTTP call goes through.

Each service gets one ``HttpClient`` over one *transport* — a ``requests`` adapter, the seam
between the client and the network. In production the transport is ``pooled_transport``:
a connection pool sized to the worker's concurrency, no urllib3 retries (retrying is the
engine's job), whose sockets the total deadline can cut (``deadline``: a server dripping
bytes cannot hold a request). Tests pass any ``requests`` adapter instead (an in-process
fake answering from a function). Every request has connect/read timeouts and a total
deadline, ``User-Agent: credentials-consumer/<version>``, an ``X-Request-ID`` carrying the
event id made safe for a header, and the JWT of ``oauth`` when the service needs one.
Bodies are read up to ``MAX_BODY_BYTES``. ``HttpClient.call`` is the only method that
sends; it fetches a new token once on a 401 and sends again.

A request is prepared here and handed to the transport directly, not through a
``requests.Session``: per request, a session merges settings, scans the whole process
environment for proxies and CA bundles, builds a cookie jar and runs its redirect machinery,
which cost more CPU than the request itself. What the worker needs of that is decided
once, when the client is built: the proxies the environment names for the service's root
(``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY``, minus ``NO_PROXY``) and the CA bundle
(``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``, else the system's; TLS is always verified).
Cookies are neither kept nor sent, redirects never followed, ``.netrc`` never read.

Outcomes are sorted into the error tree by ``classify`` (pure; its docstring has the
table). A ``CallGuard`` (``calls``) sees every request: ``before`` (may raise
``CircuitOpenError`` to refuse it) and ``after`` with a ``CallRecord``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import requests
import requests.adapters
import requests.auth
import requests.exceptions as rex
import structlog
import urllib3.exceptions

from consumer.errors import (
    AuthRejectedError,
    ConsumerError,
    MalformedAnswerError,
    TransientError,
)
from consumer.services import deadline
from consumer.services.calls import NO_GUARD, CallGuard, CallRecord, Reply, TokenSource
from consumer.services.classify import (
    SUMMARY_LIMIT,
    classify_status,
    parse_retry_after,
    translate_exception,
)
from consumer.services.request_parts import (
    default_headers,
    display_host,
    environment_ca_bundle,
    environment_proxies,
    prepared_url,
    request_id_header,
)

log = structlog.get_logger(__name__)

REQUEST_ID_HEADER: Final = "X-Request-ID"
MAX_BODY_BYTES: Final = 10 * 1024 * 1024
"""Largest answer read; a larger 2xx is a ``MalformedAnswerError`` (``answer_too_large``)."""
DEFAULT_TOTAL_TIMEOUT: Final = 25.0
_CHUNK: Final = 64 * 1024


class _JwtAuth(requests.auth.AuthBase):
    """``Authorization: JWT <token>``; as an auth object it also keeps ``.netrc`` out."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"JWT {self._token}"
        return request

    def __repr__(self) -> str:
        return "_JwtAuth(***)"


def pooled_transport(pool_size: int) -> requests.adapters.HTTPAdapter:
    """The production transport: ``pool_size`` connections per host, no hidden retries.

    The pool never blocks (sized to the worker's concurrency, no caller waits for a
    connection), and the total deadline can cut its sockets (``deadline.DeadlineAdapter``).
    """
    return deadline.DeadlineAdapter(
        pool_connections=4, pool_maxsize=pool_size, max_retries=0, pool_block=False
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class _Request:
    method: str
    url: str
    endpoint: str
    request_id: str
    params: Mapping[str, Any] | None
    json_body: object
    form: Mapping[str, str] | None
    redact: tuple[str, ...]


class HttpClient:
    """One service's pooled session and its single ``call`` path. Thread-safe."""

    def __init__(
        self,
        *,
        service: str,
        root: str,
        connect_timeout: float,
        read_timeout: float,
        pool_size: int,
        total_timeout: float = DEFAULT_TOTAL_TIMEOUT,
        max_body: int = MAX_BODY_BYTES,
        tokens: TokenSource | None = None,
        guard: CallGuard = NO_GUARD,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        transport: requests.adapters.BaseAdapter | None = None,
    ) -> None:
        """``transport`` is where requests go: ``pooled_transport(pool_size)`` unless given.

        Any ``requests`` adapter will do (tests: one answering in-process); ``pool_size``
        matters only to the pooled one. ``close`` closes the transport too.
        """
        self.service = service
        self.root = root.rstrip("/")
        self.host = display_host(self.root)
        self._timeouts = (connect_timeout, read_timeout)
        self._total_timeout = total_timeout
        self._max_body = max_body
        self._tokens = tokens
        self._guard = guard
        self._clock = clock
        self._wall_clock = wall_clock
        self._transport = transport if transport is not None else pooled_transport(pool_size)
        self._headers = default_headers()
        self._proxies = environment_proxies(self.root)
        self._verify = environment_ca_bundle()
        self._closed = threading.Event()

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` under this service's root."""
        return f"{self.root}/{path.lstrip('/')}"

    def call(
        self,
        method: str,
        path: str,
        *,
        endpoint: str,
        request_id: str,
        params: Mapping[str, Any] | None = None,
        json_body: object = None,
        form: Mapping[str, str] | None = None,
        redact: tuple[str, ...] = (),
    ) -> Reply:
        """Send one request and return its 2xx answer, or raise the classified error.

        ``path`` is relative to the root (or an absolute URL under it). ``endpoint`` is a
        low-cardinality name for metrics and messages; ``request_id`` goes into
        ``X-Request-ID`` (made safe: ``request_id_header``). On a 401 the token is
        refreshed once and the request sent again; a second 401 raises
        ``AuthRejectedError``. Blocks for at most the total timeout, token fetch and a
        401's second request included (a call made inside another ends with the outer).
        Raises ``TransientError``/``ServiceUnavailableError``/``MalformedAnswerError``/
        ``PermanentError`` (``RejectedError``) as ``classify`` tabulates;
        ``CircuitOpenError`` when the guard refuses. Not idempotent by itself: callers
        send only upserts and reads.
        """
        request = _Request(
            method=method,
            url=path if path.startswith(("http://", "https://")) else self.url(path),
            endpoint=endpoint,
            request_id=request_id,
            params=params,
            json_body=json_body,
            form=form,
            redact=redact,
        )
        with deadline.bounded(self._total_timeout) as ends_at:
            if self._tokens is None:
                return self._send(request, token=None, ends_at=ends_at)
            token = self._tokens.token(request_id)
            try:
                return self._send(request, token=token, ends_at=ends_at)
            except AuthRejectedError as error:
                if error.status != 401:
                    raise
                self._tokens.invalidate(token)
                log.info("token_rejected", service=self.service, endpoint=endpoint)
            return self._send(request, token=self._tokens.token(request_id), ends_at=ends_at)

    def _total_timeout_error(self, endpoint: str) -> TransientError:
        return TransientError(
            f"{self.service} ({self.host}) {endpoint}: total_timeout "
            f"(no complete answer within {self._total_timeout:g} s)",
            service=self.service,
            reason="total_timeout",
        )

    def _send(self, request: _Request, *, token: str | None, ends_at: float) -> Reply:
        """The single place a request leaves the worker and its outcome is classified."""
        endpoint, request_id = request.endpoint, request.request_id
        if ends_at - time.monotonic() <= 0:
            raise self._total_timeout_error(endpoint)
        self._guard.before(self.service, endpoint, request_id)
        started = self._clock()
        status: int | None = None
        error: ConsumerError | None = None
        watch = deadline.Deadline(ends_at)
        try:
            try:
                with deadline.watched(watch):
                    status, headers, raw = self._exchange(request, token, watch)
            except (rex.RequestException, urllib3.exceptions.HTTPError) as exc:
                if watch.expired:
                    raise self._total_timeout_error(endpoint) from None
                if not isinstance(exc, rex.RequestException):
                    exc = rex.ChunkedEncodingError(exc)  # urllib3's own, from the body read
                raise translate_exception(
                    exc, service=self.service, endpoint=endpoint, host=self.host
                ) from None
            ok = 200 <= status < 300
            if raw is None and ok:
                if watch.expired:
                    raise self._total_timeout_error(endpoint)
                raise MalformedAnswerError(
                    f"{self.service} ({self.host}) {endpoint}: answer larger than "
                    f"{self._max_body} bytes",
                    service=self.service,
                    reason="answer_too_large",
                )
            body = self._parse_body(raw, ok=ok, endpoint=endpoint)
            classified = classify_status(
                status,
                service=self.service,
                endpoint=endpoint,
                host=self.host,
                body=body,
                retry_after=parse_retry_after(headers.get("Retry-After"), now=self._wall_clock()),
                redact=request.redact,
            )
            if classified is not None:
                raise classified
            return Reply(status=status, body=body)
        except ConsumerError as exc:
            error = exc
            raise
        finally:
            record = CallRecord(
                service=self.service,
                endpoint=endpoint,
                method=request.method,
                request_id=request_id,
                status=status,
                elapsed=self._clock() - started,
                error=error,
            )
            log.debug(
                "http_call",
                service=self.service,
                endpoint=endpoint,
                method=request.method,
                status=status,
                elapsed=round(record.elapsed, 4),
                error=error.reason if error else None,
            )
            self._guard.after(record)

    def _exchange(
        self, request: _Request, token: str | None, watch: deadline.Deadline
    ) -> tuple[int, Mapping[str, str], bytes | None]:
        """Send and read the whole answer: (status, headers, body or ``None`` if too large).

        Raises requests' and urllib3's exceptions.
        """
        remaining = max(watch.remaining(), 0.001)
        connect, read = self._timeouts
        prepared = requests.PreparedRequest()
        prepared.prepare_method(request.method)
        prepared.url = prepared_url(request.url, request.params)
        prepared.prepare_headers(
            {**self._headers, REQUEST_ID_HEADER: request_id_header(request.request_id)}
        )
        prepared.prepare_body(request.form, None, request.json_body)
        prepared.prepare_auth(_JwtAuth(token) if token is not None else None, prepared.url or "")
        response = self._transport.send(
            prepared,
            stream=True,
            timeout=(min(connect, remaining), min(read, remaining)),
            verify=self._verify,
            cert=None,
            proxies=self._proxies,
        )
        try:
            return response.status_code, response.headers, self._read_body(response, watch)
        finally:
            response.close()

    def _read_body(self, response: requests.Response, watch: deadline.Deadline) -> bytes | None:
        """The decoded body, read in chunks; ``None`` (reading stops) past ``max_body`` bytes."""
        declared = response.headers.get("Content-Length", "").strip()
        if declared.isdecimal() and int(declared) > self._max_body:
            return None
        parts: list[bytes] = []
        size = 0
        for chunk in response.iter_content(_CHUNK):
            size += len(chunk)
            if size > self._max_body:
                return None
            if watch.expired:
                raise rex.ReadTimeout("total deadline passed")
            parts.append(chunk)
        return b"".join(parts)

    def _parse_body(self, raw: bytes | None, *, ok: bool, endpoint: str) -> object:
        """The JSON body (``None`` if empty); a 2xx that is not JSON is a malformed answer.

        An error answer that is not JSON is kept as a short text for its summary.
        """
        if raw is None:
            return f"(answer larger than {self._max_body} bytes)"
        if not raw:
            return None
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
            if ok:
                raise MalformedAnswerError(
                    f"{self.service} ({self.host}) {endpoint}: answer is not JSON",
                    service=self.service,
                    reason="invalid_json_response",
                ) from None
            return raw[: SUMMARY_LIMIT * 4].decode("utf-8", "replace")

    def close(self) -> None:
        """Close the pooled connections. Idempotent."""
        if not self._closed.is_set():
            self._closed.set()
            self._transport.close()
