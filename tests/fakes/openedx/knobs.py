"""Failure injection, settable per service or per endpoint while the fake runs.

An endpoint-level knob wins over the service-level one, and a knob scoped to one learner
(``username=``: the learner a request is about) wins over both. ``rate`` draws from a seeded
random generator, so a benchmark run is reproducible; ``times`` makes a knob fire that many
times and then stop (``set_error("credentials", 500, times=2)``: two failures, then
success), the deterministic form tests use.

``Chaos`` is the soak's background noise on a whole service: each request independently
answers a random 5xx, hangs until the client gives up (a read timeout), or has its connection
reset, at the given rates. None of these reaches the service's state: a write that fails
this way was not applied, as with a proxy in front of a healthy service.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Any, Literal

OutageMode = Literal["refused", "reset", "503"]
Fault = Literal["outage", "error", "timeout", "reset"]


@dataclass(slots=True)
class ErrorKnob:
    """Answer ``status`` instead of serving, with probability ``rate``, ``times`` times.

    ``body`` (JSON, any shape) replaces the usual error body: with a 2xx status it is how
    a test makes a service answer something malformed.
    """

    status: int
    rate: float = 1.0
    times: int | None = None
    retry_after: str | None = None
    body: Any = None


@dataclass(frozen=True, slots=True)
class Outage:
    """The service is down: ``refused`` (not listening), ``reset`` (RST), ``503``."""

    mode: OutageMode
    retry_after: str | None = None


@dataclass(frozen=True, slots=True)
class Chaos:
    """Random failures of one service: rates per request (their sum at most 1).

    ``timeout``: the fake holds the request, unanswered, until the client hangs up or
    ``timeout_seconds`` pass, then drops it.
    """

    error_rate: float = 0.0
    statuses: tuple[int, ...] = (500, 502, 503, 504)
    timeout_rate: float = 0.0
    timeout_seconds: float = 30.0
    reset_rate: float = 0.0


class Knobs:
    """Latency, errors and outages by (service, endpoint); ``None`` endpoint = whole service."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self._latency: dict[tuple[str, str | None], float] = {}
        self._errors: dict[tuple[str, str | None, str | None], ErrorKnob] = {}
        self._outages: dict[str, Outage] = {}
        self._chaos: dict[str, Chaos] = {}

    def clear(self) -> None:
        """Remove every knob."""
        with self._lock:
            self._latency.clear()
            self._errors.clear()
            self._outages.clear()
            self._chaos.clear()

    def set_latency(self, service: str, seconds: float, endpoint: str | None = None) -> None:
        """Delay every answer of the service (or endpoint) by ``seconds``; 0 removes it."""
        with self._lock:
            if seconds > 0:
                self._latency[(service, endpoint)] = seconds
            else:
                self._latency.pop((service, endpoint), None)

    def latency(self, service: str, endpoint: str) -> float:
        """The delay to apply to one request."""
        with self._lock:
            value = self._latency.get((service, endpoint))
            return value if value is not None else self._latency.get((service, None), 0.0)

    def set_error(
        self,
        service: str,
        knob: ErrorKnob | None,
        endpoint: str | None = None,
        username: str | None = None,
    ) -> None:
        """Install (or with ``None`` remove) an error knob, for one learner if ``username``."""
        with self._lock:
            if knob is None:
                self._errors.pop((service, endpoint, username), None)
            else:
                self._errors[(service, endpoint, username)] = knob

    def draw_error(
        self, service: str, endpoint: str, username: str | None = None
    ) -> ErrorKnob | None:
        """The error to answer for one request, if a knob fires (consumes one of ``times``)."""
        keys: list[tuple[str, str | None, str | None]] = [
            (service, endpoint, None),
            (service, None, None),
        ]
        if username is not None:
            keys[:0] = [(service, endpoint, username), (service, None, username)]
        with self._lock:
            for key in keys:
                knob = self._errors.get(key)
                if knob is None:
                    continue
                if knob.times is not None and knob.times <= 0:
                    continue
                if knob.rate < 1.0 and self._random.random() >= knob.rate:
                    return None
                if knob.times is not None:
                    knob.times -= 1
                return knob
            return None

    def set_outage(self, service: str, outage: Outage | None) -> None:
        """Mark a service down (or up with ``None``)."""
        with self._lock:
            if outage is None:
                self._outages.pop(service, None)
            else:
                self._outages[service] = outage

    def outage(self, service: str) -> Outage | None:
        """The service's outage, if any."""
        with self._lock:
            return self._outages.get(service)

    def set_chaos(self, service: str, chaos: Chaos | None) -> None:
        """Install (or with ``None`` remove) random failures on a whole service."""
        with self._lock:
            if chaos is None:
                self._chaos.pop(service, None)
            else:
                self._chaos[service] = chaos

    def draw_chaos(self, service: str) -> tuple[Fault, int] | None:
        """``("error", status)``, ``("timeout", 0)``, ``("reset", 0)`` or None for one request."""
        with self._lock:
            chaos = self._chaos.get(service)
            if chaos is None:
                return None
            draw = self._random.random()
            if draw < chaos.error_rate:
                return "error", self._random.choice(chaos.statuses)
            draw -= chaos.error_rate
            if draw < chaos.timeout_rate:
                return "timeout", 0
            draw -= chaos.timeout_rate
            if draw < chaos.reset_rate:
                return "reset", 0
            return None

    def chaos_timeout(self, service: str) -> float:
        """How long a ``timeout`` of ``service`` holds the request at most."""
        with self._lock:
            chaos = self._chaos.get(service)
            return chaos.timeout_seconds if chaos else 0.0
