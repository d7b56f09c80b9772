"""The one door every HTTP call goes through, and the one place failures are classified.

Each service gets one ``HttpClient``: a pooled ``requests.Session`` (pool sized to the
worker's concurrency, no urllib3 retries — retrying is the engine's job), connect/read
timeouts, ``User-Agent: credentials-consumer/<version>``, an ``X-Request-ID`` carrying the
event id, and the JWT of ``oauth`` when the service needs one. ``HttpClient.call`` is the
only method that sends; it fetches a new token once on a 401 and sends again.

How a call's failure becomes the worker's error (``errors.py`` draws the tree)::

    what happened                                   error                     outage
    ----------------------------------------------  ------------------------  ------
    connection refused / reset, DNS, TLS, proxy     ServiceUnavailableError   yes
    connect timeout                                 ServiceUnavailableError   yes
    502, 503, 504 (Retry-After honoured)            ServiceUnavailableError   yes
    read timeout, truncated or garbled response     TransientError            no
    408, 429 (Retry-After honoured), other 5xx      TransientError            no
    401 after one token refresh, 403                AuthRejectedError         yes
    other 4xx                                       RejectedError             no
    3xx (redirects are not followed)                RejectedError             no
    a malformed request (bad URL, header, body)     PermanentError            no

``RejectedError`` is a ``PermanentError`` that keeps the service's parsed answer so a
client can tell a *skip* (Credentials' "No active ProgramCertificate") from a rejection.
Messages name the service, endpoint and host, never a URL path (the LMS puts usernames in
paths) and never a body verbatim: bodies are summarised with the caller's ``redact``
strings (the username) replaced.

A ``CallGuard`` sees every request: ``before`` (may raise ``CircuitOpenError`` to refuse
it) and ``after`` with a ``CallRecord`` (status, elapsed, the error, outage or not). The
engine's circuit breaker and the HTTP metrics hang there; the default does nothing.
"""

from __future__ import annotations

import email.utils
import json
import math
import socket
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

from consumer.errors import (
    ConsumerError,
    PermanentError,
    ServiceUnavailableError,
    TransientError,
)

log = structlog.get_logger(__name__)


def _version() -> str:
    try:
        return metadata.version("credentials-consumer")
    except metadata.PackageNotFoundError:  # running from a source tree without install
        return "0+unknown"


USER_AGENT: Final = f"credentials-consumer/{_version()}"
REQUEST_ID_HEADER: Final = "X-Request-ID"
_SUMMARY_LIMIT: Final = 300


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
    """A short, single-line rendering of an error body with ``redact`` strings masked."""
    text = body if isinstance(body, str) else json.dumps(body, sort_keys=True, default=str)
    text = " ".join(text.split())
    for secret in redact:
        if secret:
            text = text.replace(secret, "<redacted>")
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
    adapter = requests.adapters.HTTPAdapter(
        pool_connections=4, pool_maxsize=pool_size, max_retries=0, pool_block=False
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    session.headers["Accept"] = "application/json"
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    return session


def path_segment(value: str) -> str:
    """Quote a value (course key, username) for use as one URL path segment."""
    return quote(value, safe=":+@")


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
        tokens: TokenSource | None = None,
        guard: CallGuard = NO_GUARD,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.service = service
        self.root = root.rstrip("/")
        self.host = urlsplit(self.root).netloc
        self._timeouts = (connect_timeout, read_timeout)
        self._tokens = tokens
        self._guard = guard
        self._clock = clock
        self._wall_clock = wall_clock
        self._session = build_session(pool_size)
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
        ``X-Request-ID``. On a 401 the token is refreshed once and the request sent again;
        a second 401 raises ``AuthRejectedError``. Blocks for at most the timeouts (twice on a
        401). Raises ``TransientError``/``ServiceUnavailableError``/``PermanentError``
        (``RejectedError``) as the module docstring tabulates; ``CircuitOpenError`` when
        the guard refuses. Not idempotent by itself: callers send only upserts and reads.
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
        if self._tokens is None:
            return self._send(request, token=None)
        token = self._tokens.token(request_id)
        try:
            return self._send(request, token=token)
        except AuthRejectedError as error:
            if error.status != 401:
                raise
            self._tokens.invalidate(token)
            log.info(
                "token_rejected", service=self.service, endpoint=endpoint, request_id=request_id
            )
        return self._send(request, token=self._tokens.token(request_id))

    def _send(self, request: _Request, *, token: str | None) -> Reply:
        """The single place a request leaves the worker and its outcome is classified."""
        endpoint, request_id = request.endpoint, request.request_id
        self._guard.before(self.service, endpoint, request_id)
        started = self._clock()
        status: int | None = None
        error: ConsumerError | None = None
        try:
            try:
                response = self._session.request(
                    request.method,
                    request.url,
                    params=request.params,
                    json=request.json_body,
                    data=request.form,
                    headers={REQUEST_ID_HEADER: request_id},
                    auth=_JwtAuth(token) if token is not None else None,
                    timeout=self._timeouts,
                    allow_redirects=False,
                )
                status = response.status_code
                body = _parse_body(response, ok=200 <= status < 300)
            except rex.RequestException as exc:
                raise translate_exception(
                    exc, service=self.service, endpoint=endpoint, host=self.host
                ) from None
            classified = classify_status(
                status,
                service=self.service,
                endpoint=endpoint,
                host=self.host,
                body=body,
                retry_after=parse_retry_after(
                    response.headers.get("Retry-After"), now=self._wall_clock()
                ),
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

    def close(self) -> None:
        """Close the pooled connections. Idempotent."""
        if not self._closed.is_set():
            self._closed.set()
            self._session.close()


def _parse_body(response: requests.Response, *, ok: bool) -> object:
    """The JSON body; on a 2xx an unreadable body raises (``JSONDecodeError``)."""
    if not response.content:
        return None
    if ok:
        return response.json()
    try:
        return response.json()
    except rex.JSONDecodeError:
        return response.text[:_SUMMARY_LIMIT]
