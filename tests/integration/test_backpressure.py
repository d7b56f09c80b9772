"""Memory stays flat on any backlog: the engine never holds more than its buffer allows."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from consumer.config import EngineSettings, KafkaSettings, consumer_config
from consumer.engine import Engine, HeldFailures
from consumer.events import Event, EventType
from consumer.observability import Metrics
from consumer.outcomes import Applied, Outcome
from consumer.wire import Decoder
from tests.integration.conftest import Stack
from tests.support.lms import LmsProducer, certificate_data
from tests.support.worker import wait_for

pytestmark = pytest.mark.integration

EVENTS = 300
MAX_BUFFERED = 20


def test_a_stuck_backlog_holds_exactly_the_buffer_then_drains(
    stack: Stack, lms: LmsProducer, topic: str, decoder: Decoder
) -> None:
    """With every worker stuck, the engine takes in max_buffered events and not one more."""
    for user_id in range(EVENTS):
        data = certificate_data(user_id=user_id, course_key=f"course-v1:Bp+C{user_id % 7}+2026")
        lms.send(EventType.CERTIFICATE_CHANGED, data, topic)
    lms.flush()
    gate = threading.Event()

    def stuck_until_released(_event: Event, _cancelled: threading.Event) -> Outcome:
        gate.wait(60)
        return Applied(commands=1)

    kafka = KafkaSettings(bootstrap_servers=stack.bootstrap_servers, topics=(topic,))
    metrics = Metrics()
    engine = Engine(
        consumer_config=consumer_config(kafka, group_id=f"bp-{uuid.uuid4().hex[:6]}"),
        topics=[topic],
        decoder=decoder,
        processor=stuck_until_released,
        sink=HeldFailures(),
        settings=EngineSettings(
            max_in_flight=4, max_buffered=MAX_BUFFERED, commit_interval_seconds=0.2
        ),
        metrics=metrics,
        stop_when_idle=1.0,
    )
    runner = threading.Thread(target=engine.run, name="engine")
    runner.start()

    def received() -> float:
        value = metrics.registry.get_sample_value(
            "credentials_consumer_events_received_total", {"topic": topic}
        )
        return value or 0.0

    try:
        wait_for(lambda: received() >= MAX_BUFFERED, timeout=30, what="the buffer to fill")
        time.sleep(2)  # ample time to overshoot, were the bound only per batch
        assert received() == MAX_BUFFERED
        assert metrics.registry.get_sample_value("credentials_consumer_paused_partitions") == 3
    finally:
        gate.set()
        runner.join(timeout=120)
    assert not runner.is_alive()
    assert engine.tally.applied == EVENTS
