"""librdkafka's log lines go through structlog, and a repeated line is logged once a minute."""

from __future__ import annotations

import logging

from structlog.testing import capture_logs

from consumer.kafkalog import StructlogBridge, kafka_logger, with_logger
from tests.support.clock import FakeClock

REFUSED = (
    "[thrd:127.0.0.1:1/bootstrap]: 127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 "
    "failed: Connection refused (after {}ms in state CONNECT)"
)


def librdkafka_record(facility: str, client: str, text: str, level: int) -> logging.LogRecord:
    """A record shaped as confluent-kafka hands them to a ``logger``."""
    return logging.LogRecord(
        "consumer.kafka.librdkafka", level, "", 0, "%s [%s] %s", (facility, client, text), None
    )


def test_a_line_becomes_a_structured_log_event() -> None:
    """Facility, client and text become fields of one ``kafka_client_log`` event."""
    bridge = StructlogBridge(clock=FakeClock())
    with capture_logs() as logs:
        bridge.emit(librdkafka_record("FAIL", "rdkafka#consumer-1", REFUSED.format(0), 40))
    assert logs == [
        {
            "event": "kafka_client_log",
            "log_level": "error",
            "facility": "FAIL",
            "client": "rdkafka#consumer-1",
            "message": REFUSED.format(0),
        }
    ]


def test_a_repeated_connection_error_is_logged_once_per_interval() -> None:
    """Hundreds of identical lines (numbers aside, any client) make one line a minute."""
    clock = FakeClock()
    bridge = StructlogBridge(interval=60.0, clock=clock)
    with capture_logs() as logs:
        for index in range(300):
            client = f"rdkafka#{'consumer' if index % 2 else 'producer'}-{index % 3}"
            bridge.emit(librdkafka_record("FAIL", client, REFUSED.format(index % 7), 40))
            clock.advance(0.1)  # 30 s in all
        clock.advance(31)
        bridge.emit(librdkafka_record("FAIL", "rdkafka#consumer-1", REFUSED.format(0), 40))
    assert len(logs) == 2
    assert "repeated" not in logs[0]
    assert logs[1]["repeated"] == 299


def test_different_lines_are_each_logged() -> None:
    """Dropping repeats never drops a different line."""
    bridge = StructlogBridge(clock=FakeClock())
    with capture_logs() as logs:
        bridge.emit(librdkafka_record("FAIL", "c", REFUSED.format(0), 40))
        bridge.emit(librdkafka_record("REQTMOUT", "c", "Timed out 1 in-flight request", 30))
        bridge.emit(librdkafka_record("FAIL", "c", "Connect to ipv4#10.0.0.9:9092 failed", 40))
    assert [line["facility"] for line in logs] == ["FAIL", "REQTMOUT", "FAIL"]
    assert logs[1]["log_level"] == "warning"


def test_every_client_config_gets_the_one_logger() -> None:
    """``with_logger`` adds the shared logger and keeps the rest of the configuration."""
    config = with_logger({"bootstrap.servers": "kafka:9092"})
    assert config == {"bootstrap.servers": "kafka:9092", "logger": kafka_logger()}
    assert kafka_logger() is kafka_logger()
    assert not kafka_logger().propagate
