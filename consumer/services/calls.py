"""What one HTTP call gives and what sees it: the values and hooks around ``HttpClient.call``.

``Reply`` is a 2xx answer; ``CallRecord`` is what one request did (no URL, no body), handed
to the ``CallGuard`` after each request — the engine's circuit breaker and the HTTP metrics
hang there (``guard.ServiceGuard``); ``NO_GUARD`` does nothing. A ``TokenSource`` gives an
authenticated client its JWT (``oauth.OAuthTokens``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Protocol

from consumer.errors import ConsumerError, ServiceUnavailableError


@dataclass(frozen=True, slots=True)
class Reply:
    """A successful (2xx) answer: the status and the parsed JSON body (``None`` if empty)."""

    status: int
    body: Any


@dataclass(frozen=True, slots=True)
class CallRecord:
    """What one request did, for the circuit breaker and metrics. No URL, no body.

    ``request_id`` is the event's id: the breaker tells events apart by it.
    """

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
