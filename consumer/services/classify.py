"""How a call's failure becomes the worker's error: pure functions, no I/O.

``errors.py`` draws the tree; this is the table that sorts into it::

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

``requests``' exceptions are translated exactly once, here (``translate_exception``), from an
explicit table (``EXCEPTION_MAP``) that a unit test holds against every class ``requests``
defines. Messages name the service, endpoint and host (``hostname[:port]``, never a URL's
user info), never a URL path (the LMS puts usernames in paths) and never a body verbatim:
bodies are summarised with every spelling of the caller's ``redact`` strings (the username,
the client secret) masked (``redaction``).
"""

from __future__ import annotations

import email.utils
import json
import math
import socket
from collections.abc import Iterator, Mapping
from datetime import UTC
from typing import Final

import requests.exceptions as rex

from consumer.errors import (
    AuthRejectedError,
    ConsumerError,
    PermanentError,
    RejectedError,
    ServiceUnavailableError,
    TransientError,
)
from consumer.services.redaction import redact_text, redact_value

SUMMARY_LIMIT: Final = 300
"""Longest summary of an error body in a message."""

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
    if issubclass(kind, TransientError):
        return kind(message, service=service, reason=reason)
    return PermanentError(message, service=service, reason=reason)


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
    return text if len(text) <= SUMMARY_LIMIT else text[: SUMMARY_LIMIT - 1] + "…"


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
