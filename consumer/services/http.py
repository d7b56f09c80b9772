"""The one door every HTTP call goes through, and the one place failures are classified.

Each service gets one ``HttpClient``: a pooled ``requests.Session`` (pool sized to the
worker's concurrency, no urllib3 retries — retrying is the engine's job), connect/read
timeouts and a total deadline per call (``deadline``: a server dripping bytes cannot hold
a request), ``User-Agent: credentials-consumer/<version>``, an ``X-Request-ID`` carrying the
event id made safe for a header, and the JWT of ``oauth`` when the service needs one.
Bodies are read up to ``MAX_BODY_BYTES``. ``HttpClient.call`` is the only method that sends;
it fetches a new token once on a 401 and sends again.

How a call's failure becomes the worker's error (``errors.py`` draws the tree)::

    what happened                                   error                     outage
    ----------------------------------------------  ------------------------  ------
    connection refused / reset, DNS, TLS, proxy     ServiceUnavailableError   yes
    connect timeout                                 ServiceUnavailableError   yes
    502, 503, 504 (Retry-After honoured)            ServiceUnavailableError   yes
    read timeout, truncated or garbled response     TransientError            no
    no complete answer within the total timeout     TransientError            no
    a 2xx that is not JSON, too large, or not the   MalformedAnswerError      no
      documented shape (``answers.AnswerReader``)
    408, 429 (Retry-After honoured), other 5xx      TransientError            no
    401 after one token refresh, 403                AuthRejectedError         yes
    other 4xx                                       RejectedError             no
    3xx (redirects are not followed)                RejectedError             no
    a malformed request (bad URL, header, body)     PermanentError            no

``RejectedError`` is a ``PermanentError`` that keeps the service's parsed answer so a
client can tell a *skip* (Credentials' "No active ProgramCertificate") from a rejection.
Messages name the service, endpoint and host (``hostname[:port]``, never a URL's user info),
never a URL path (the LMS puts usernames in paths) and never a body verbatim: bodies are
summarised with every spelling of the caller's ``redact`` strings (the username, the client
secret) masked (``redaction``).

A ``CallGuard`` sees every request: ``before`` (may raise ``CircuitOpenError`` to refuse
it) and ``after`` with a ``CallRecord`` (status, elapsed, the error, outage or not). The
engine's circuit breaker and the HTTP metrics hang there; the default does nothing.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import math
import socket
import string
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC
from http.cookiejar import DefaultCookiePolicy
from importlib import metadata
from typing import Any, Final, Protocol
from urllib.parse import quote, urlsplit

import requests
import requests.adapters
import requests.auth
import requests.exceptions as rex
import structlog
import urllib3.exceptions

from consumer.errors import (
    ConsumerError,
    PermanentError,
    ServiceUnavailableError,
    TransientError,
)
from consumer.services import deadline
from consumer.services.redaction import redact_text, redact_value

log = structlog.get_logger(__name__)


def _version() -> str:
    try:
        return metadata.version("credentials-consumer")
    except metadata.PackageNotFoundError:  # running from a source tree without install
        return "0+unknown"


USER_AGENT: Final = f"credentials-consumer/{_version()}"
REQUEST_ID_HEADER: Final = "X-Request-ID"
REQUEST_ID_LIMIT: Final = 128
"""Longest ``X-Request-ID`` sent; a longer (made-safe) id is cut and keeps a hash suffix."""
MAX_BODY_BYTES: Final = 10 * 1024 * 1024
"""Largest answer read; a larger 2xx is a ``MalformedAnswerError`` (``answer_too_large``)."""
DEFAULT_TOTAL_TIMEOUT: Final = 25.0
_SUMMARY_LIMIT: Final = 300
_CHUNK: Final = 64 * 1024


# ---------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class Reply:
    """A successful (2xx) answer: the status and the parsed JSON body (``None`` if empty)."""

    status: int
    body: Any


@dataclass(frozen=True, slots=True)
class CallRecord:
    """What one request did, for the circuit breaker and metrics. No URL, no body."""

    service: str
    endpoint: str
    method: str
    request_id: str
    status: int | None
    elapsed: float
    error: ConsumerError | None

    @property
    def ok(self) -> bool:
        """The request got a 2xx answer."""
        return self.error is None

    @property
    def outage(self) -> bool:
        """The failure says the service is not there (refused, reset, 502/503/504...)."""
        return isinstance(self.error, ServiceUnavailableError)


class CallGuard(Protocol):
    """Hooks around every request (circuit breaker, metrics)."""

    def before(self, service: str, endpoint: str, request_id: str) -> None:
        """Called before a request is sent; raise ``CircuitOpenError`` to refuse it."""

    def after(self, record: CallRecord) -> None:
        """Called once a sent request has an outcome; must not raise."""


class NoGuard:
    """The default guard: lets everything through and records nothing."""

    def before(self, service: str, endpoint: str, request_id: str) -> None:
        """Do nothing."""

    def after(self, record: CallRecord) -> None:
        """Do nothing."""


NO_GUARD: Final = NoGuard()


class TokenSource(Protocol):
    """Where an authenticated client gets its JWT (``oauth.OAuthTokens``)."""

    def token(self, request_id: str) -> str:
        """A token believed valid; may block while one is fetched."""

    def invalidate(self, token: str) -> None:
        """Forget ``token`` (the service rejected it) so the next ``token()`` fetches anew."""


class AuthRejectedError(ServiceUnavailableError):
    """401 (after a token refresh) or 403: the worker's own client or permissions are wrong.

    Not the event's fault, and the same for every event: it is outage-class, so the circuit
    opens and consumption pauses until an operator fixes the client (a rotated secret, a
    missing ``view_usercredential`` grant) instead of dead-lettering the whole backlog.
    """


class MalformedAnswerError(TransientError):
    """A 2xx answer the worker cannot use: not JSON, too large, or not the documented shape.

    Transient and not an outage: a proxy or a deployment in the middle of an upgrade may
    answer so for a while, so it is retried; an event whose answers stay malformed runs
    down its own budget and is dead-lettered. The message names where the answer is wrong,
    never a value from it.
    """

    reason = "malformed_answer"

    def __init__(self, message: str, *, service: str, reason: str | None = None) -> None:
        super().__init__(message, service=service)
        if reason is not None:
            self.reason = reason


class RejectedError(PermanentError):
    """The service answered with a status that retrying cannot change (4xx, 3xx).

    ``body`` is the parsed JSON answer (or a short text) for callers that must tell cases
    apart; it is not part of the message.
    """

    def __init__(
        self, message: str, *, service: str, status: int, endpoint: str, body: object
    ) -> None:
        super().__init__(message, service=service, status=status)
        self.endpoint = endpoint
        self.body = body


# ---------------------------------------------------------------------------- classification

# Every exception class requests defines, mapped to (error class, reason). The lookup walks
# the exception's MRO, so the most specific entry wins; a unit test fails when requests
# grows a class that is not listed here explicitly.
EXCEPTION_MAP: Final[Mapping[type[rex.RequestException], tuple[type[ConsumerError], str]]] = {
    rex.ConnectTimeout: (ServiceUnavailableError, "connect_timeout"),
    rex.ReadTimeout: (TransientError, "read_timeout"),
    rex.Timeout: (TransientError, "timeout"),
    rex.SSLError: (ServiceUnavailableError, "tls_error"),
    rex.ProxyError: (ServiceUnavailableError, "proxy_error"),
    rex.ConnectionError: (ServiceUnavailableError, "connection_error"),
    rex.ChunkedEncodingError: (TransientError, "truncated_response"),
    rex.ContentDecodingError: (TransientError, "undecodable_response"),
    rex.JSONDecodeError: (TransientError, "invalid_json_response"),
    rex.RetryError: (TransientError, "retries_exhausted"),
    rex.HTTPError: (TransientError, "http_error"),
    rex.TooManyRedirects: (PermanentError, "too_many_redirects"),
    rex.InvalidJSONError: (PermanentError, "invalid_request_body"),
    rex.URLRequired: (PermanentError, "invalid_request"),
    rex.MissingSchema: (PermanentError, "invalid_request"),
    rex.InvalidSchema: (PermanentError, "invalid_request"),
    rex.InvalidURL: (PermanentError, "invalid_request"),
    rex.InvalidProxyURL: (PermanentError, "invalid_request"),
    rex.InvalidHeader: (PermanentError, "invalid_request"),
    rex.StreamConsumedError: (PermanentError, "invalid_request"),
    rex.UnrewindableBodyError: (PermanentError, "invalid_request"),
    rex.RequestException: (TransientError, "request_error"),
}

_OUTAGE_STATUSES: Final = frozenset({502, 503, 504})


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error and everything it wraps (args, urllib3's ``reason``, causes, contexts)."""
    seen: set[int] = set()
    stack: list[BaseException] = [error]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        linked += list(current.args)
        stack.extend(item for item in linked if isinstance(item, BaseException))


def _connection_reason(error: BaseException, default: str) -> str:
    for cause in _causes(error):
        if isinstance(cause, ConnectionRefusedError):
            return "connection_refused"
        if isinstance(cause, ConnectionResetError | BrokenPipeError):
            return "connection_reset"
        if isinstance(cause, socket.gaierror):
            return "dns_failure"
    return default


def translate_exception(
    error: rex.RequestException, *, service: str, endpoint: str, host: str
) -> ConsumerError:
    """Turn a requests exception into the worker's error; never raises itself."""
    kind: type[ConsumerError] = PermanentError
    reason = "invalid_request"
    for klass in type(error).__mro__:
        entry = EXCEPTION_MAP.get(klass)
        if entry is not None:
            kind, reason = entry
            break
    if kind is ServiceUnavailableError:
        reason = _connection_reason(error, reason)
    message = f"{service} ({host}) {endpoint}: {reason} ({type(error).__name__})"
    translated: ConsumerError
    if issubclass(kind, TransientError):
        translated = kind(message, service=service)
    else:
        translated = PermanentError(message, service=service)
    translated.reason = reason
    return translated


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date).

    ``now`` is the wall-clock time (epoch seconds) the HTTP-date is measured from. Returns
    ``None`` when the header is absent or unreadable; never a negative number.
    """
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, when.timestamp() - now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def summarise_body(body: object, redact: tuple[str, ...] = ()) -> str:
    r"""A short, single-line rendering of an error body with ``redact`` strings masked.

    A parsed body is masked value by value before it is serialised, then the text again
    (a serialiser escapes ``José`` as ``Jos\u00e9``); whitespace is collapsed only after,
    so a username with spaces or newlines cannot slip through either.
    """
    if isinstance(body, str):
        text = body
    else:
        try:
            text = json.dumps(redact_value(body, redact), sort_keys=True, default=str)
        except (ValueError, TypeError, RecursionError):
            text = "(unreadable body)"
    text = " ".join(redact_text(text, redact).split())
    return text if len(text) <= _SUMMARY_LIMIT else text[: _SUMMARY_LIMIT - 1] + "…"


def classify_status(
    status: int,
    *,
    service: str,
    endpoint: str,
    host: str,
    body: object,
    retry_after: float | None,
    redact: tuple[str, ...] = (),
) -> ConsumerError | None:
    """The error a status stands for, or ``None`` for 2xx."""
    if 200 <= status < 300:
        return None
    message = f"{service} ({host}) answered {status} to {endpoint}"
    if status in _OUTAGE_STATUSES:
        return ServiceUnavailableError(
            message, service=service, status=status, retry_after=retry_after
        )
    if status in (408, 429) or status >= 500:
        return TransientError(message, service=service, status=status, retry_after=retry_after)
    if body not in (None, ""):
        message = f"{message}: {summarise_body(body, redact)}"
    if status in (401, 403):
        return AuthRejectedError(message, service=service, status=status)
    return RejectedError(message, service=service, status=status, endpoint=endpoint, body=body)


# ---------------------------------------------------------------------------- the client


class _JwtAuth(requests.auth.AuthBase):
    """``Authorization: JWT <token>``; as an auth object it also keeps ``.netrc`` out."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"JWT {self._token}"
        return request

    def __repr__(self) -> str:
        return "_JwtAuth(***)"


def build_session(pool_size: int) -> requests.Session:
    """A session with a pool of ``pool_size`` connections per host and no hidden retries.

    Cookies are refused (each call stands alone) and the pool never blocks: with the pool
    sized to the worker's concurrency no caller waits for a connection.
    """
    session = requests.Session()
    adapter = deadline.DeadlineAdapter(
        pool_connections=4, pool_maxsize=pool_size, max_retries=0, pool_block=False
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    session.headers["Accept"] = "application/json"
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    return session


def path_segment(value: str) -> str:
    """Quote a value (course key, username) for use as one URL path segment.

    ``.`` and ``..`` are percent-encoded too: as literal segments they would be resolved
    (by urllib3, a proxy or the server) and change the path.
    """
    if value in (".", ".."):
        return value.replace(".", "%2E")
    return quote(value, safe=":+@")


_HEADER_SAFE: Final = "".join(sorted(set(string.punctuation) - {"%"}))


def request_id_header(request_id: str) -> str:
    """``request_id`` as a valid, bounded header value: a correlation id, never an error.

    Anything outside visible ASCII (an emoji, CR/LF, a space) is percent-encoded as UTF-8;
    an id longer than ``REQUEST_ID_LIMIT`` is cut and ends in a short hash of the whole id.
    """
    value = quote(request_id, safe=_HEADER_SAFE, errors="surrogatepass")
    if len(value) <= REQUEST_ID_LIMIT:
        return value
    digest = hashlib.sha256(request_id.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{value[: REQUEST_ID_LIMIT - 13]}~{digest}"


def display_host(root: str) -> str:
    """``hostname[:port]`` of a URL for messages: never the user info a URL may carry."""
    try:
        netloc = urlsplit(root).netloc
    except ValueError:  # an unparsable URL still gets a message, without its user info
        netloc = root.partition("://")[2].partition("/")[0]
    return netloc.rpartition("@")[2]


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


class _TooLarge(Exception):
    """The answer is longer than the client reads."""


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
        """``transport`` replaces the pooled HTTP adapter (tests: an in-process service)."""
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
        self._session = build_session(pool_size)
        if transport is not None:
            self._session.mount("http://", transport)
            self._session.mount("https://", transport)
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
        ``PermanentError`` (``RejectedError``) as the module docstring tabulates;
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
                log.info(
                    "token_rejected",
                    service=self.service,
                    endpoint=endpoint,
                    request_id=request_id,
                )
            return self._send(request, token=self._tokens.token(request_id), ends_at=ends_at)

    def _total_timeout_error(self, endpoint: str) -> TransientError:
        error = TransientError(
            f"{self.service} ({self.host}) {endpoint}: total_timeout "
            f"(no complete answer within {self._total_timeout:g} s)",
            service=self.service,
        )
        error.reason = "total_timeout"
        return error

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
            except _TooLarge:
                if watch.expired:
                    raise self._total_timeout_error(endpoint) from None
                raise MalformedAnswerError(
                    f"{self.service} ({self.host}) {endpoint}: answer larger than "
                    f"{self._max_body} bytes",
                    service=self.service,
                    reason="answer_too_large",
                ) from None
            ok = 200 <= status < 300
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
                request_id=request_id,
            )
            self._guard.after(record)

    def _exchange(
        self, request: _Request, token: str | None, watch: deadline.Deadline
    ) -> tuple[int, Mapping[str, str], bytes | None]:
        """Send and read the whole answer: (status, headers, body or ``None`` if too large).

        Raises requests' and urllib3's exceptions, and ``_TooLarge`` for a 2xx over the cap.
        """
        remaining = max(watch.remaining(), 0.001)
        connect, read = self._timeouts
        response = self._session.request(
            request.method,
            request.url,
            params=request.params,
            json=request.json_body,
            data=request.form,
            headers={REQUEST_ID_HEADER: request_id_header(request.request_id)},
            auth=_JwtAuth(token) if token is not None else None,
            timeout=(min(connect, remaining), min(read, remaining)),
            allow_redirects=False,
            stream=True,
        )
        try:
            status = response.status_code
            try:
                raw: bytes | None = self._read_body(response, watch)
            except _TooLarge:
                if 200 <= status < 300:
                    raise
                raw = None
            return status, response.headers, raw
        finally:
            response.close()

    def _read_body(self, response: requests.Response, watch: deadline.Deadline) -> bytes:
        """The decoded body, read in chunks; ``_TooLarge`` past ``max_body`` bytes."""
        declared = response.headers.get("Content-Length", "").strip()
        if declared.isdecimal() and int(declared) > self._max_body:
            raise _TooLarge
        parts: list[bytes] = []
        size = 0
        for chunk in response.iter_content(_CHUNK):
            size += len(chunk)
            if size > self._max_body:
                raise _TooLarge
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
            return raw[: _SUMMARY_LIMIT * 4].decode("utf-8", "replace")

    def close(self) -> None:
        """Close the pooled connections. Idempotent."""
        if not self._closed.is_set():
            self._closed.set()
            self._session.close()
