"""The faults of a soak, as a timed schedule over the publishing window.

Each fault has a start and an end, as fractions of the window in which events are
published, plus fixed lengths in seconds where a length matters (an outage must outlast the
retry budget). ``FULL`` is the issue's list; ``SMALL`` is the few that ``make test`` runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FaultKind = Literal[
    "noise",  # random 5xx, read timeouts and resets on every service
    "credentials_refused",  # a full Credentials outage: connections refused
    "credentials_503",  # a full Credentials outage: 503 with a long Retry-After
    "discovery_down",  # Discovery refuses connections
    "studio_slow",  # every Studio answer is late
    "registry_down",  # the schema registry is stopped, then started
    "broker_down",  # the Kafka broker is stopped, then started
    "kill_worker",  # SIGKILL the worker, start a new one
    "second_worker",  # a second member joins the group, then leaves (SIGTERM)
    "replay",  # a replay of a time range (a burst of whole stories) beside the live group
]


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault: when it starts (fraction of the window) and how long it lasts (seconds)."""

    kind: FaultKind
    at: float
    seconds: float = 0.0
    """Length; for ``noise`` and ``second_worker`` a fraction of the window if below 1."""

    def length(self, window: float) -> float:
        """The fault's length in seconds in a window of ``window`` seconds."""
        return self.seconds * window if self.seconds < 1 else self.seconds


@dataclass(frozen=True, slots=True)
class Schedule:
    """Faults and the worker settings they are measured against."""

    faults: tuple[Fault, ...]
    retry_seconds: float
    """``CONSUMER_RETRY_MAX_SECONDS``: every outage lasts longer."""
    noise: tuple[float, float, float] = (0.02, 0.002, 0.01)
    """Rates of random 5xx, read timeouts and resets per request while ``noise`` runs."""
    studio_latency: float = 1.0
    credentials_retry_after: int = 45
    replay_burst: tuple[float, float] = (0.6, 0.02)
    """Where (fraction of the stream) and how much (share of events) the replayed range is."""


# A SIGKILLed member keeps its partitions until its session times out (45 s): the whole
# group waits that long, so kills are spaced and the other faults hit a working group. A
# worker that joins while the registry (and Discovery) is down starts with empty caches.
FULL = Schedule(
    faults=(
        Fault("noise", 0.01, 0.94),
        Fault("credentials_refused", 0.06, 25),
        Fault("kill_worker", 0.14),
        Fault("registry_down", 0.28, 30),
        Fault("discovery_down", 0.29, 30),
        Fault("second_worker", 0.30, 0.18),
        Fault("studio_slow", 0.36, 0.14),
        Fault("kill_worker", 0.55),
        Fault("broker_down", 0.68, 20),
        Fault("credentials_503", 0.8, 35),
        Fault("replay", 0.88, 0.08),  # ends (is waited for) after every other fault
    ),
    retry_seconds=10,
)

SMALL = Schedule(
    faults=(
        Fault("noise", 0.0, 0.99),
        Fault("credentials_refused", 0.08, 8),
        Fault("registry_down", 0.3, 8),
        Fault("second_worker", 0.32, 0.3),
        Fault("broker_down", 0.66, 6),
        Fault("kill_worker", 0.85),
    ),
    retry_seconds=4,
)
