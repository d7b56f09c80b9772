"""The operator's endpoints: /metrics, /healthz, /readyz."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace

import pytest
from prometheus_client import generate_latest

from consumer import __version__
from consumer.config import CircuitSettings
from consumer.engine.accounting import event_type_label
from consumer.events import EventType
from consumer.guard import ServiceGuard, configured_services
from consumer.observability import Health, Metrics, serve
from consumer.services.settings import ServiceSettings
from consumer.wire import Record
from tests.support.clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(100.0)


@pytest.fixture
def health(clock: FakeClock) -> Health:
    return Health(liveness_seconds=60, clock=clock)


@pytest.fixture
def base_url(health: Health) -> Iterator[str]:
    metrics = Metrics()
    metrics.events_received.labels("learning-certificate-lifecycle").inc(3)
    server = serve(metrics, health, port=0, host="127.0.0.1")
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_metrics_are_served_with_the_prefix(base_url: str) -> None:
    """/metrics is Prometheus text with the worker's prefixed series."""
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    assert (
        'credentials_consumer_events_received_total{topic="learning-certificate-lifecycle"} 3.0'
        in text
    )
    assert "credentials_consumer_circuit_state" in text


def test_readiness_follows_the_group_membership(base_url: str, health: Health) -> None:
    """/readyz is 503 until the worker is in its group, 200 while it is, 503 once it leaves."""
    assert status(f"{base_url}/readyz") == 503
    health.ready = True
    assert status(f"{base_url}/readyz") == 200
    health.ready = False
    assert status(f"{base_url}/readyz") == 503


def test_liveness_fails_when_the_poll_loop_stops_turning(
    base_url: str, health: Health, clock: FakeClock
) -> None:
    """/healthz is 200 while the loop beats and 503 once it has been silent too long."""
    health.beat()
    assert status(f"{base_url}/healthz") == 200
    clock.now += 61
    assert status(f"{base_url}/healthz") == 503
    health.beat()
    assert status(f"{base_url}/healthz") == 200


def test_a_stalled_scraper_does_not_delay_the_probes(base_url: str, health: Health) -> None:
    """/healthz answers while another client holds a /metrics request open, half sent."""
    health.beat()
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as slow:
        slow.sendall(b"GET /metrics HTTP/1.1\r\nHost: scraper\r\n")  # never finished
        assert status(f"{base_url}/healthz") == 200


def test_a_scraper_reading_slowly_does_not_delay_the_probes(health: Health) -> None:
    """/healthz answers while a scraper with a tiny window reads a large /metrics body slowly."""
    metrics = Metrics()
    for index in range(40_000):  # a body far larger than the socket buffers
        metrics.lag.labels(f"topic-{index // 1000:03d}-with-a-long-name", str(index)).set(index)
    server = serve(metrics, health, port=0, host="127.0.0.1")
    health.beat()
    try:
        with socket.socket() as slow:
            slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            slow.settimeout(5)
            slow.connect(("127.0.0.1", server.server_port))
            slow.sendall(b"GET /metrics HTTP/1.1\r\nHost: scraper\r\n\r\n")
            assert slow.recv(1024).startswith(b"HTTP/1.")  # the body is being sent, unread
            assert status(f"http://127.0.0.1:{server.server_port}/healthz") == 200
    finally:
        server.shutdown()
        server.server_close()


def test_the_exposition_has_build_info_process_metrics_and_no_created_series() -> None:
    """build_info carries the version; process, platform and GC collectors are there."""
    metrics = Metrics()
    metrics.events_received.labels("learning-certificate-lifecycle").inc()
    metrics.processing_latency.labels("x").observe(0.1)
    text = generate_latest(metrics.registry).decode()
    assert f'credentials_consumer_build_info{{version="{__version__}"}} 1.0' in text
    for family in ("process_cpu_seconds_total", "process_resident_memory_bytes", "python_info"):
        assert f"\n{family}" in text, family
    assert "python_gc_collections_total" in text
    assert "_created" not in text


def test_circuit_series_exist_only_for_configured_services() -> None:
    """Studio and Discovery unset: no circuit series for them; dry-run: none at all."""
    services = ServiceSettings(
        oauth_url="http://lms/oauth2",
        oauth_client_id="id",
        oauth_client_secret="secret",
        credentials_url="http://credentials",
        lms_url="http://lms",
    )
    metrics = Metrics()
    ServiceGuard.for_services(CircuitSettings(), metrics, configured_services(services))
    exported = {
        sample.labels["service"]
        for family in metrics.registry.collect()
        if family.name == "credentials_consumer_circuit_state"
        for sample in family.samples
    }
    assert exported == {"oauth", "credentials", "lms"}
    assert configured_services(None) == ()
    with_all = replace(services, studio_url="http://studio", discovery_url="http://disc/api/v1")
    assert set(configured_services(with_all)) == {*exported, "studio", "discovery"}


@pytest.mark.parametrize(
    ("headers", "label"),
    [
        (
            (("ce_type", b"org.openedx.learning.certificate.changed.v1"),),
            str(EventType.CERTIFICATE_CHANGED),
        ),
        ((("ce_type", b"attacker-chosen-" + b"x" * 150),), "unknown"),
        ((("ce_type", b"\xff\xfe"),), "unknown"),
        ((), "unknown"),
    ],
    ids=["consumed type", "arbitrary text", "not utf-8", "missing"],
)
def test_a_poison_records_event_type_label_is_bounded(
    headers: tuple[tuple[str, bytes], ...], label: str
) -> None:
    """A dead-lettered record's event_type label is a consumed type or `unknown`, never its text."""
    record = Record(topic="t", partition=0, offset=1, key=None, value=b"x", headers=headers)
    assert event_type_label(record) == label
