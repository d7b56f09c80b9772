"""Outcome accounting: metrics handed over once per turn, and what is logged at which level.

Per event, the engine only counts; ``Accounting.flush`` (every turn, and at shutdown) hands
the counts to Prometheus. At ``INFO`` an applied event writes no line of its own: the
periodic ``events_progress`` line sums it up, and names a partition whose oldest pending
event has waited longer than the summary interval. Skips and failures keep their lines.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import structlog
from structlog.testing import capture_logs

from consumer.engine.accounting import SUMMARY_SECONDS, Accounting
from consumer.events import CertificateEvent, EventMeta, EventType, Learner, parse_course_key
from consumer.observability import Metrics
from consumer.outcomes import Applied, Skipped
from consumer.wire import Record
from tests.support.clock import FakeClock
from tests.support.engine_fakes import P0, Engines, send, turns, wait_until
from tests.support.memory_consumer import MemoryConsumer

TOPIC = "learning-certificate-lifecycle"
CHANGED = EventType.CERTIFICATE_CHANGED


def record(offset: int) -> Record:
    return Record(topic=TOPIC, partition=0, offset=offset, key=None, value=b"")


def event(event_id: str) -> CertificateEvent:
    return CertificateEvent(
        meta=EventMeta(id=event_id, type=CHANGED, time=datetime(2026, 1, 1, tzinfo=UTC)),
        learner=Learner(user_id=7, username="learner7"),
        course_key=parse_course_key("course-v1:Unit+C1+2026"),
        mode="verified",
        status="downloadable",
    )


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
def at_info() -> Iterator[None]:
    """Log lines filtered at INFO, as the worker runs by default."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
    yield
    structlog.reset_defaults()


def test_a_turn_s_counts_reach_prometheus_at_the_flush_exactly_once() -> None:
    """Received, done (by outcome and reason), skips and both histograms: all, once."""
    metrics = Metrics()
    accounting = Accounting(metrics)
    for offset in range(3):
        accounting.received(record(offset))
    accounting.finished(record(0), event("a"), Applied(commands=1), elapsed=0.01)
    accounting.finished(record(1), event("b"), Applied(commands=1), elapsed=0.02)
    accounting.finished(record(2), event("c"), Skipped(reason="ineligible_mode"), elapsed=0.03)

    for _ in range(2):  # a second flush adds nothing
        accounting.flush()
        received = "credentials_consumer_events_received_total"
        assert sample(metrics, received, topic=TOPIC) == 3
        done = "credentials_consumer_events_done_total"
        labels = {"topic": TOPIC, "event_type": str(CHANGED)}
        assert sample(metrics, done, **labels, outcome="applied", reason="") == 2
        assert sample(metrics, done, **labels, outcome="skipped", reason="ineligible_mode") == 1
        assert sample(metrics, "credentials_consumer_skips_total", reason="ineligible_mode") == 1
        latency = "credentials_consumer_processing_duration_seconds"
        assert sample(metrics, f"{latency}_count", event_type=str(CHANGED)) == 3
        assert sample(metrics, f"{latency}_sum", event_type=str(CHANGED)) == pytest.approx(0.06)
        age = "credentials_consumer_event_age_seconds_count"
        assert sample(metrics, age, event_type=str(CHANGED)) == 3


@pytest.mark.usefixtures("at_info")
def test_at_info_an_applied_event_has_no_line_and_the_progress_line_counts_it(
    engines: Engines,
) -> None:
    """No event_applied at INFO; events_progress (every 10 s of the clock) counts the events."""
    consumer = MemoryConsumer()
    for index in range(4):
        send(consumer, P0, f"e{index}", learner=index)
    consumer.assign(P0)
    clock = FakeClock()
    with capture_logs() as lines:
        running = engines.start(consumer, clock=clock, inline=True)
        wait_until(lambda: running.engine.tally.applied == 4)
        clock.advance(SUMMARY_SECONDS)
        wait_until(lambda: any(line["event"] == "events_progress" for line in lines))
        running.stop()

    assert not [line for line in lines if line["event"] == "event_applied"]
    progress = [line for line in lines if line["event"] == "events_progress"]
    assert progress[0]["applied"] == 4
    assert progress[0]["skipped"] == progress[0]["failed"] == 0
    assert progress[0]["oldest_pending"] == {}
    assert len(progress) == 1  # nothing finished since: no second line at shutdown


@pytest.mark.usefixtures("at_info")
def test_the_progress_line_names_a_partition_whose_oldest_event_waits_too_long(
    engines: Engines,
) -> None:
    """A held event older than the summary interval: its partition and offset are named."""
    consumer = MemoryConsumer()
    send(consumer, P0, "fast", learner=1)
    send(consumer, P0, "stuck", learner=2)
    consumer.assign(P0)
    clock = FakeClock()
    with capture_logs() as lines:
        running = engines.start(consumer, clock=clock)
        running.processor.hold("stuck")
        wait_until(lambda: running.engine.tally.applied == 1)
        clock.advance(SUMMARY_SECONDS + 1)
        turns(consumer)
        wait_until(lambda: any(line["event"] == "events_progress" for line in lines))
        running.processor.release_all()
        running.stop()

    (progress, *_) = [line for line in lines if line["event"] == "events_progress"]
    assert progress["oldest_pending"] == {f"{P0[0]}:{P0[1]}": 1}


def test_at_debug_each_applied_event_still_has_its_line(engines: Engines) -> None:
    """CONSUMER_LOG_LEVEL=DEBUG: event_applied names each event, as before."""
    consumer = MemoryConsumer()
    for index in range(3):
        send(consumer, P0, f"e{index}", learner=index)
    consumer.assign(P0)
    with capture_logs() as lines:
        running = engines.start(consumer, inline=True)
        wait_until(lambda: running.engine.tally.applied == 3)
        running.stop()
    applied = [line for line in lines if line["event"] == "event_applied"]
    assert [line["offset"] for line in applied] == [0, 1, 2]
