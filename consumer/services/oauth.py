"""The worker's JWT: OAuth2 client credentials against the LMS, cached and shared.

``POST {oauth_url}/access_token`` with a form body ``grant_type=client_credentials``,
``client_id``, ``client_secret``, ``token_type=jwt`` answers ``access_token`` and
``expires_in``. The token is cached and replaced ``refresh_margin`` seconds before it
expires (half its lifetime when that is shorter). One thread fetches at a time; the
others wait for it and reuse its token. A service's 401 makes ``HttpClient`` call
``invalidate`` with the rejected token, then ask again: exactly one new fetch, however many
threads saw the 401.

The answer is checked before anything is cached: a token that could not be sent as a
header (CR/LF, spaces, non-ASCII, longer than ``MAX_TOKEN_LENGTH``) or a lifetime that is
not a positive finite number is a ``MalformedAnswerError`` whose message never holds the
token. The token call redacts the client secret from every error text (a provider that
echoes the form back would otherwise put it there); the client id is not a secret.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import structlog

from consumer.services.answers import AnswerReader
from consumer.services.http import HttpClient

MAX_TOKEN_LENGTH: Final = 8192
"""A JWT is a few hundred bytes to a few kB; a larger one would be refused as a header."""
_TOKEN_CHARS: Final = re.compile(r"[\x21-\x7e]+")
_ANSWER: Final = AnswerReader("oauth", "access_token")

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A token and the monotonic time after which it is no longer used."""

    value: str = field(repr=False)
    refresh_at: float
    expires_in: float


class OAuthTokens:
    """A thread-safe JWT cache for one OAuth2 client (implements ``http.TokenSource``)."""

    def __init__(
        self,
        http: HttpClient,
        *,
        client_id: str,
        client_secret: str,
        refresh_margin: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._client_id = client_id
        self._client_secret = client_secret
        self._refresh_margin = refresh_margin
        self._clock = clock
        self._lock = threading.Lock()
        self._current: AccessToken | None = None
        self.fetches = 0
        """How many tokens were fetched (for tests and the ``check`` command)."""

    def __repr__(self) -> str:
        return f"OAuthTokens(client_id={self._client_id!r}, client_secret=***)"

    def token(self, request_id: str) -> str:
        """A valid token, fetched when none is cached or the cached one is due.

        Blocks while another thread fetches. Raises what ``HttpClient.call`` raises for the
        token endpoint (service ``oauth``), or ``MalformedAnswerError`` if the answer is
        unusable.
        """
        current = self._current
        if current is not None and self._clock() < current.refresh_at:
            return current.value
        with self._lock:
            current = self._current
            if current is not None and self._clock() < current.refresh_at:
                return current.value
            fresh = self._fetch(request_id)
            self._current = fresh
            return fresh.value

    def current(self) -> AccessToken | None:
        """The cached token, if any (never fetches)."""
        return self._current

    def invalidate(self, token: str) -> None:
        """Drop the cached token if it is ``token``; a newer one is kept."""
        with self._lock:
            if self._current is not None and self._current.value == token:
                self._current = None

    def _fetch(self, request_id: str) -> AccessToken:
        started = self._clock()
        reply = self._http.call(
            "POST",
            "access_token",
            endpoint="access_token",
            request_id=request_id,
            form={
                "grant_type": "client_credentials",
                "client_id": self._client_id,
                "client_secret": self._client_secret,
                "token_type": "jwt",
            },
            redact=(self._client_secret,),
        )
        value, lifetime = _token_and_lifetime(reply.body)
        margin = self._refresh_margin if self._refresh_margin < lifetime else lifetime / 2
        self.fetches += 1
        log.info("oauth_token_fetched", expires_in=lifetime)
        return AccessToken(value=value, refresh_at=started + lifetime - margin, expires_in=lifetime)


def _token_and_lifetime(body: object) -> tuple[str, float]:
    """The token and its lifetime from the answer, or ``MalformedAnswerError`` (no token in it)."""
    answer = _ANSWER.mapping(body, "the answer")
    value = answer.get("access_token")
    if not isinstance(value, str) or not value:
        _ANSWER.fail("access_token", "missing or not text")
    if len(value) > MAX_TOKEN_LENGTH or not _TOKEN_CHARS.fullmatch(value):
        _ANSWER.fail("access_token", "that cannot be sent as a header (bad characters or length)")
    expires_in = answer.get("expires_in")
    lifetime = math.nan
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
        try:
            lifetime = float(expires_in)
        except OverflowError:  # an integer with hundreds of digits
            lifetime = math.inf
    if not math.isfinite(lifetime) or lifetime <= 0:
        _ANSWER.fail("expires_in", "that is not a positive number of seconds")
    return value, lifetime
