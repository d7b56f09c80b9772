"""The engine's gauges tell the truth on the real broker: running vs queued, stuck, lag.

Each test would fail on the metrics as they were: ``in_flight`` counted every event handed to
the pool, processing time ran from that hand-over, and lag only moved when a commit landed.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from confluent_kafka.admin import AdminClient

from consumer.config import EngineSettings, KafkaSettings, consumer_config
from consumer.engine import Engine, HeldFailures
from consumer.events import Event, EventType
from consumer.lag import LagMonitor
from consumer.observability import Metrics
from consumer.outcomes import Applied, Outcome
from consumer.wire import Decoder
from tests.integration.conftest import Stack
from tests.support.lms import LmsProducer, certificate_data
from tests.support.worker import wait_for

pytestmark = pytest.mark.integration

CHANGED = EventType.CERTIFICATE_CHANGED


def publish(lms: LmsProducer, topic: str, users: range) -> None:
    for user_id in users:
        data = certificate_data(user_id=user_id, course_key=f"course-v1:Gauge+C{user_id % 5}+2026")
        lms.send(CHANGED, data, topic)
    lms.flush()


def value(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def per_partition(metrics: Metrics, name: str, topic: str) -> dict[str, float]:
    return {
        sample.labels["partition"]: sample.value
        for family in metrics.registry.collect()
        for sample in family.samples
        if sample.name == name and sample.labels["topic"] == topic
    }


def test_running_queued_stuck_and_lag_while_every_worker_is_stuck(
    stack: Stack, lms: LmsProducer, topic: str, decoder: Decoder
) -> None:
    """With 2 threads stuck and 6 events buffered: 2 in flight, 4 queued, ages rising, lag live.

    Then more events arrive while nothing can be committed: the lag follows them anyway.
    Once released, everything drains and lag, ages, in flight and queued return to 0.
    """
    publish(lms, topic, range(12))
    gate = threading.Event()

    def stuck_until_released(_event: Event, _cancelled: threading.Event) -> Outcome:
        gate.wait(60)
        return Applied(commands=1)

    group = f"gauges-{uuid.uuid4().hex[:6]}"
    kafka = KafkaSettings(bootstrap_servers=stack.bootstrap_servers, topics=(topic,))
    metrics = Metrics()
    engine = Engine(
        consumer_config=consumer_config(kafka, group_id=group),
        topics=[topic],
        decoder=decoder,
        processor=stuck_until_released,
        sink=HeldFailures(),
        settings=EngineSettings(max_in_flight=2, max_buffered=6, commit_interval_seconds=0.2),
        metrics=metrics,
        lag_monitor=LagMonitor(
            AdminClient({"bootstrap.servers": stack.bootstrap_servers}),
            metrics,
            interval=0.3,
        ),
    )
    runner = threading.Thread(target=engine.run, name="engine")
    runner.start()

    def total_lag() -> float:
        return sum(per_partition(metrics, "credentials_consumer_lag_records", topic).values())

    def ages() -> dict[str, float]:
        return per_partition(metrics, "credentials_consumer_oldest_pending_age_seconds", topic)

    received = "credentials_consumer_events_received_total"
    try:
        try:
            wait_for(
                lambda: value(metrics, received, topic=topic) >= 6, timeout=30, what="a full buffer"
            )
            wait_for(
                lambda: (
                    value(metrics, "credentials_consumer_in_flight_events") == 2
                    and value(metrics, "credentials_consumer_queued_events") == 4
                ),
                timeout=10,
                what="2 in flight and 4 queued",
            )
            assert value(metrics, "credentials_consumer_buffered_events") == 6

            before = ages()
            time.sleep(0.5)
            after = ages()
            stuck = [partition for partition, age in before.items() if age > 0]
            assert stuck, before
            assert all(after[partition] > before[partition] for partition in stuck)

            wait_for(lambda: total_lag() == 12, timeout=15, what="lag of the 12 events")
            publish(lms, topic, range(100, 105))
            wait_for(lambda: total_lag() == 17, timeout=15, what="lag following new events")
        finally:
            gate.set()
        wait_for(lambda: total_lag() == 0, timeout=60, what="lag back to 0")
        wait_for(
            lambda: (
                value(metrics, "credentials_consumer_in_flight_events") == 0
                and value(metrics, "credentials_consumer_queued_events") == 0
                and set(ages().values()) == {0.0}
            ),
            timeout=10,
            what="nothing pending",
        )
        assert value(metrics, "credentials_consumer_commits_total", result="landed") > 0
        assert value(metrics, "credentials_consumer_rebalances_total", kind="assign") >= 1
    finally:
        engine.request_stop()
        runner.join(timeout=60)
    assert not runner.is_alive()
    assert engine.tally.applied == 17


def test_processing_time_starts_when_a_thread_picks_the_event_up(
    stack: Stack, lms: LmsProducer, decoder: Decoder
) -> None:
    """With one thread and four events of four keys, each takes 20 s of clock: each measures 20 s.

    Timed from the hand-over to the pool, the last one would have measured 80 s (its wait for
    the thread included). The clock is the real one plus a skew the processor adds, so the
    test takes no 80 seconds.
    """
    topic = stack.create_topic(f"it-pickup-{uuid.uuid4().hex[:8]}", partitions=1)
    publish(lms, topic, range(4))
    skew = [0.0]

    def clock() -> float:
        return time.monotonic() + skew[0]

    def twenty_seconds(_event: Event, _cancelled: threading.Event) -> Outcome:
        skew[0] += 20.0
        return Applied(commands=1)

    metrics = Metrics()
    engine = Engine(
        consumer_config=consumer_config(
            KafkaSettings(bootstrap_servers=stack.bootstrap_servers),
            group_id=f"pickup-{uuid.uuid4().hex[:6]}",
        ),
        topics=[topic],
        decoder=decoder,
        processor=twenty_seconds,
        sink=HeldFailures(),
        settings=EngineSettings(max_in_flight=1, commit_interval_seconds=0.2),
        metrics=metrics,
        stop_when_idle=0.5,
        clock=clock,
    )
    engine.run()

    assert engine.tally.applied == 4
    name = "credentials_consumer_processing_duration_seconds_bucket"
    labels = {"event_type": str(CHANGED)}
    assert value(metrics, name, **labels, le="10.0") == 0
    assert value(metrics, name, **labels, le="30.0") == 4


def test_a_member_with_nothing_new_to_read_reports_no_lag(
    stack: Stack, lms: LmsProducer, topic: str, decoder: Decoder
) -> None:
    """A restarted member with nothing new to read measures from where it caught up: lag 0.

    The lag's base is the worker's watermark, or without one the end offset of its last
    end-of-partition event: the group's offsets are not asked through the admin client
    (librdkafka 4605). Falling back to the log start instead would show all 9 records.
    """
    publish(lms, topic, range(9))
    group = f"restart-lag-{uuid.uuid4().hex[:6]}"
    kafka = KafkaSettings(bootstrap_servers=stack.bootstrap_servers, topics=(topic,))

    def engine(metrics: Metrics, **options: object) -> Engine:
        return Engine(
            consumer_config=consumer_config(kafka, group_id=group),
            topics=[topic],
            decoder=decoder,
            processor=lambda _event, _cancelled: Applied(commands=1),
            sink=HeldFailures(),
            settings=EngineSettings(commit_interval_seconds=0.2),
            metrics=metrics,
            **options,  # type: ignore[arg-type]
        )

    first = engine(Metrics(), stop_when_idle=1.0)
    first.run()
    assert first.tally.applied == 9

    metrics = Metrics()
    second = engine(
        metrics,
        lag_monitor=LagMonitor(
            AdminClient({"bootstrap.servers": stack.bootstrap_servers}), metrics, interval=0.3
        ),
    )
    runner = threading.Thread(target=second.run, name="engine")
    runner.start()
    try:
        wait_for(
            lambda: len(per_partition(metrics, "credentials_consumer_lag_records", topic)) == 3,
            timeout=30,
            what="a lag sample for each partition",
        )
        time.sleep(1.0)  # a few more refreshes
        assert per_partition(metrics, "credentials_consumer_lag_records", topic) == {
            "0": 0.0,
            "1": 0.0,
            "2": 0.0,
        }
    finally:
        second.request_stop()
        runner.join(timeout=60)
    assert second.tally.applied == 0
