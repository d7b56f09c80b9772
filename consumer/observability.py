"""Metrics, health endpoints and log set-up: everything an operator watches, in one place.

Every metric is declared here with the ``credentials_consumer_`` prefix, in a registry of
its own (so tests can build a fresh one). Labels never carry a user, only bounded values:
topic, partition, event type, outcome, reason, stage, error class, service, endpoint and
status class. ``/metrics`` is Prometheus text; ``/healthz`` answers 200 while the poll loop
has turned within ``liveness_seconds``; ``/readyz`` answers 200 while the worker is in its
consumer group and not shutting down.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TextIO
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app

PREFIX = "credentials_consumer"
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_AGE_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600, 7 * 24 * 3600)


class Metrics:
    """The worker's metrics; one instance per process (or per test)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        p = PREFIX
        self.events_received = Counter(
            f"{p}_events_received", "Records consumed.", ["topic"], registry=r
        )
        self.events_done = Counter(
            f"{p}_events_done",
            "Events finished, by outcome (applied, skipped, dead_lettered) and reason.",
            ["topic", "event_type", "outcome", "reason"],
            registry=r,
        )
        self.commands = Counter(
            f"{p}_commands",
            "Commands applied, by command and result.",
            ["command", "result"],
            registry=r,
        )
        self.skips = Counter(
            f"{p}_skips", "Commands or events skipped, by reason.", ["reason"], registry=r
        )
        self.assumptions = Counter(
            f"{p}_assumptions",
            "Commands applied on an assumption, by reason (e.g. the display behaviour taken as "
            "end because Studio is not configured).",
            ["reason"],
            registry=r,
        )
        self.http_requests = Counter(
            f"{p}_http_requests",
            "HTTP requests to Open edX services by status class (2xx, 4xx, 5xx, error).",
            ["service", "endpoint", "status_class"],
            registry=r,
        )
        self.http_latency = Histogram(
            f"{p}_http_request_seconds",
            "HTTP request latency.",
            ["service", "endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.processing_latency = Histogram(
            f"{p}_processing_seconds",
            "Time to apply one event (handle + effects + retries).",
            ["event_type"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.event_age = Histogram(
            f"{p}_event_age_seconds",
            "Age of an event (from ce_time) when it is done.",
            ["event_type"],
            buckets=_AGE_BUCKETS,
            registry=r,
        )
        self.retries = Counter(
            f"{p}_retries", "Retries of transient failures.", ["service", "reason"], registry=r
        )
        self.dead_letters = Counter(
            f"{p}_dead_letters",
            "Records written to a dead-letter topic.",
            ["topic", "stage", "error_class"],
            registry=r,
        )
        self.dead_letter_errors = Counter(
            f"{p}_dead_letter_produce_errors",
            "Failed attempts to write a dead-letter record (it is retried; the offset waits).",
            ["topic"],
            registry=r,
        )
        self.in_flight = Gauge(
            f"{p}_in_flight", "Events running now (heads of key lanes).", registry=r
        )
        self.buffered = Gauge(
            f"{p}_buffered",
            "Events held in memory: running, waiting behind their key, or "
            "waiting for a dead-letter acknowledgement.",
            registry=r,
        )
        self.paused_partitions = Gauge(
            f"{p}_paused_partitions", "Assigned partitions paused now.", registry=r
        )
        self.assigned_partitions = Gauge(
            f"{p}_assigned_partitions", "Partitions assigned to this worker.", registry=r
        )
        self.lag = Gauge(
            f"{p}_lag",
            "Records between the committed watermark and the partition's end.",
            ["topic", "partition"],
            registry=r,
        )
        self.circuit_state = Gauge(
            f"{p}_circuit_state",
            "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
            ["service"],
            registry=r,
        )
        self.last_commit = Gauge(
            f"{p}_last_commit_timestamp_seconds",
            "When offsets were last committed.",
            registry=r,
        )
        self.registry_unavailable = Counter(
            f"{p}_schema_registry_unavailable",
            "Times a partition waited because the schema registry could not be reached.",
            registry=r,
        )
        self.program_cache_stale = Gauge(
            f"{p}_program_cache_stale",
            "1 while the Discovery program cache serves its last good copy after a failed "
            "refresh, or misses programs whose details failed.",
            registry=r,
        )
        self.replay_planned = Gauge(
            f"{p}_replay_planned_records", "Records in the replay's range.", ["topic"], registry=r
        )
        self.replay_done = Gauge(
            f"{p}_replay_done_records",
            "Records of the replay's range done (below the committed watermark).",
            ["topic"],
            registry=r,
        )
        self.replay_last_progress = Gauge(
            f"{p}_replay_last_progress_timestamp_seconds",
            "When the replay last made progress (Unix time).",
            registry=r,
        )


class Health:
    """Liveness and readiness flags, written by the poll thread, read by the HTTP server."""

    def __init__(
        self, *, liveness_seconds: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self._liveness = liveness_seconds
        self._last_beat = clock()
        self.ready = False

    def beat(self) -> None:
        """The poll loop turned."""
        self._last_beat = self._clock()

    @property
    def alive(self) -> bool:
        """True while the poll loop turned recently."""
        return self._clock() - self._last_beat <= self._liveness


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Scrapes every few seconds are not worth a log line."""


def serve(metrics: Metrics, health: Health, port: int, host: str = "0.0.0.0") -> WSGIServer:  # noqa: S104 - scraped from the pod IP
    """Serve ``/metrics``, ``/healthz`` and ``/readyz`` on a daemon thread; return the server."""
    metrics_app = make_wsgi_app(metrics.registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path in ("/healthz", "/readyz"):
            ok = health.alive if path == "/healthz" else (health.ready and health.alive)
            start_response(
                "200 OK" if ok else "503 Service Unavailable", [("Content-Type", "text/plain")]
            )
            return [b"ok\n" if ok else b"not ok\n"]
        return metrics_app(environ, start_response)  # type: ignore[no-any-return]

    server = make_server(host, port, app, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics-server", daemon=True).start()
    return server


def configure_logging(
    *, fmt: str = "json", level: str = "INFO", stream: TextIO | None = None
) -> None:
    """Set up structlog once: JSON lines (production) or a console renderer (humans)."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
