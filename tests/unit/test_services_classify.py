"""How a call's failure becomes the worker's error: exceptions, statuses, bodies, Retry-After.

Moved from ``test_services_http.py`` with the classification itself (``services.classify``).
"""

from __future__ import annotations

import email.utils
import inspect

import pytest
import requests.exceptions as rex

from consumer.errors import (
    AuthRejectedError,
    ConsumerError,
    PermanentError,
    RejectedError,
    ServiceUnavailableError,
    TransientError,
)
from consumer.services.classify import (
    EXCEPTION_MAP,
    classify_status,
    parse_retry_after,
    summarise_body,
    translate_exception,
)

NOW = 1_800_000_000.0


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


def _instance(klass: type[rex.RequestException]) -> rex.RequestException:
    return klass("bad", "x", 0) if klass is rex.JSONDecodeError else klass()


@pytest.mark.parametrize(
    "klass",
    [item for item, (kind, _) in EXCEPTION_MAP.items() if kind is not ServiceUnavailableError],
)
def test_each_translated_error_carries_the_reason_of_its_table_row(
    klass: type[rex.RequestException],
) -> None:
    """The reason comes from the table, given to the error as it is built (never set after)."""
    error = translate_exception(
        _instance(klass), service="lms", endpoint="course_modes", host="lms:80"
    )
    assert (type(error), error.reason) == EXCEPTION_MAP[klass]
