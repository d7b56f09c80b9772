"""Metrics, health endpoints and log set-up: everything an operator watches, in one place.

Every metric is declared here with the ``credentials_consumer_`` prefix, in a registry of
its own (so tests can build a fresh one), and follows Prometheus naming: base units,
counters end in ``_total``, durations in ``_duration_seconds``; no ``_created`` series.
Labels never carry a user, only bounded values: topic, partition, event type, outcome,
reason, stage, error class, service, endpoint and status class. The README's metric table
lists every family exported here (a test keeps the two in step).

``/metrics`` is Prometheus text; ``/healthz`` answers 200 while the poll loop has turned
within ``liveness_seconds``; ``/readyz`` answers 200 while the worker is in its consumer
group and not shutting down. The server handles each request on its own thread, so a slow
scraper cannot hold up the kubelet's probes.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any, TextIO
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import structlog
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
    make_wsgi_app,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from consumer import __version__

PREFIX = "credentials_consumer"
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_AGE_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600, 7 * 24 * 3600)


class Metrics:
    """The worker's metrics; one instance per process (or per test)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        p = PREFIX
        # ``_created`` series double the series count for no use on a dashboard or in an
        # alert. The switch is process-wide (the library's); every Metrics wants it off.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self.build_info = Info(f"{p}_build", "The worker's version.", registry=r)
        self.build_info.info({"version": __version__})

        # ---- events
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
        self.processing_latency = Histogram(
            f"{p}_processing_duration_seconds",
            "Time to apply one event (handle + effects + retries), from the moment a worker "
            "thread picks it up.",
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

        # ---- HTTP
        self.http_requests = Counter(
            f"{p}_http_requests",
            "HTTP requests to Open edX services by status class (2xx, 4xx, 5xx, error).",
            ["service", "endpoint", "status_class"],
            registry=r,
        )
        self.http_latency = Histogram(
            f"{p}_http_request_duration_seconds",
            "HTTP request latency.",
            ["service", "endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.retries = Counter(
            f"{p}_retries", "Retries of transient failures.", ["service", "reason"], registry=r
        )
        self.circuit_state = Gauge(
            f"{p}_circuit_state",
            "Circuit breaker state of each configured service: 0 closed, 1 half-open, 2 open.",
            ["service"],
            registry=r,
        )
        self.circuit_opened = Counter(
            f"{p}_circuit_opened",
            "Times a service's circuit opened, by cause (HTTP status class or error reason).",
            ["service", "cause"],
            registry=r,
        )

        # ---- dead letters
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

        # ---- work in progress
        self.in_flight = Gauge(
            f"{p}_in_flight_events", "Events running on a worker thread now.", registry=r
        )
        self.queued = Gauge(
            f"{p}_queued_events",
            "Events accepted but not started: waiting for a free worker thread, or behind an "
            "earlier event of the same ordering key.",
            registry=r,
        )
        self.buffered = Gauge(
            f"{p}_buffered_events",
            "Events held in memory: running, queued, or waiting for a dead-letter "
            "acknowledgement (partitions pause at CONSUMER_MAX_BUFFERED).",
            registry=r,
        )
        self.oldest_pending_age = Gauge(
            f"{p}_oldest_pending_age_seconds",
            "Seconds since the oldest event of the partition that is not yet done was "
            "consumed (0 when none is pending).",
            ["topic", "partition"],
            registry=r,
        )

        # ---- partitions and offsets
        self.paused_partitions = Gauge(
            f"{p}_paused_partitions", "Assigned partitions paused now.", registry=r
        )
        self.assigned_partitions = Gauge(
            f"{p}_assigned_partitions", "Partitions assigned to this worker.", registry=r
        )
        self.lag = Gauge(
            f"{p}_lag_records",
            "Records between the partition's end and the group's committed offset (the "
            "worker's watermark in dry-run), refreshed every few seconds.",
            ["topic", "partition"],
            registry=r,
        )
        self.last_commit = Gauge(
            f"{p}_last_commit_timestamp_seconds",
            "When offsets were last committed (Unix time).",
            registry=r,
        )
        self.commits = Counter(
            f"{p}_commits",
            "Offset commits by result (landed, failed).",
            ["result"],
            registry=r,
        )
        self.rebalances = Counter(
            f"{p}_rebalances",
            "Rebalance callbacks by kind: assign, revoke, lost.",
            ["kind"],
            registry=r,
        )

        # ---- dependencies
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

        # ---- replay (set by the replay command)
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

        for result in ("landed", "failed"):
            self.commits.labels(result)
        for kind in ("assign", "revoke", "lost"):
            self.rebalances.labels(kind)

    def expect_topics(self, topics: Iterable[str], dead_letter_topics: Iterable[str] = ()) -> None:
        """Export the per-topic counters at 0 from the start.

        A counter born at 1 shows no ``increase()`` for its first event; one exported at 0
        does, and dashboards show "none yet" instead of "no data".
        """
        for topic in topics:
            self.events_received.labels(topic)
        for topic in dead_letter_topics:
            self.dead_letter_errors.labels(topic)


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
    timeout = 30  # a client that stalls mid-request loses its thread after this long

    def log_message(self, format: str, *args: object) -> None:
        """Scrapes every few seconds are not worth a log line."""


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    """One thread per request: a slow scraper never holds up a probe."""

    daemon_threads = True


def serve(metrics: Metrics, health: Health, port: int, host: str = "0.0.0.0") -> WSGIServer:  # noqa: S104 - scraped from the pod IP
    """Serve ``/metrics``, ``/healthz`` and ``/readyz`` on daemon threads; return the server.

    Each request gets its own thread: a scraper that reads slowly (or a client that stalls
    before finishing its request) holds only its own thread, never the probes.
    """
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

    server = make_server(
        host, port, app, server_class=_ThreadingServer, handler_class=_QuietHandler
    )
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
