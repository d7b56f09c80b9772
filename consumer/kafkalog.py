"""librdkafka's own log lines, through structlog, each repeated line at most once a minute.

Left alone, librdkafka writes raw ``%3|1700000000.123|FAIL|rdkafka#consumer-1| ...`` lines
to stderr, between the JSON lines, and a broker that cannot be reached produces one every
few hundred milliseconds per client. Every Kafka client of the worker is given the
``logger`` from ``kafka_logger()`` in its configuration: confluent-kafka then queues the
lines and hands them to it from the client's own ``poll``/``consume`` calls (on the
caller's thread, never from librdkafka's threads). This handler turns each into a
``kafka_client_log`` JSON line and drops repeats of the same line — the same facility and
text, numbers aside, whichever client wrote it — for ``interval`` seconds, then logs it
again with the count it dropped.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections.abc import Callable

import structlog

log = structlog.get_logger("consumer.kafka")

REPEAT_INTERVAL_SECONDS = 60.0
_MAX_REMEMBERED = 1000
_NUMBERS = re.compile(r"\d+")


class StructlogBridge(logging.Handler):
    """A ``logging.Handler`` that re-logs librdkafka's lines through structlog, deduplicated."""

    def __init__(
        self,
        *,
        interval: float = REPEAT_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(level=logging.DEBUG)
        self._interval = interval
        self._clock = clock
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}  # key -> (logged at, dropped)
        self._seen_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        """Log ``record`` unless the same line was logged within the interval."""
        facility, client, text = _parts(record)
        key = (facility, _NUMBERS.sub("N", text))
        now = self._clock()
        with self._seen_lock:
            logged_at, dropped = self._seen.get(key, (None, 0))
            if logged_at is not None and now - logged_at < self._interval:
                self._seen[key] = (logged_at, dropped + 1)
                return
            if len(self._seen) >= _MAX_REMEMBERED:
                self._seen.clear()
            self._seen[key] = (now, 0)
        fields: dict[str, object] = {"facility": facility, "client": client, "message": text}
        if dropped:
            fields["repeated"] = dropped
        log.log(record.levelno, "kafka_client_log", **fields)


def _parts(record: logging.LogRecord) -> tuple[str, str, str]:
    """(facility, client name, text) of a confluent-kafka log record."""
    if isinstance(record.args, tuple) and len(record.args) == 3:
        facility, client, text = (str(arg) for arg in record.args)
        return facility, client, text
    return "", record.name, record.getMessage()


@functools.cache
def kafka_logger() -> logging.Logger:
    """The ``logger`` every Kafka client of this process is configured with.

    Built once, so repeats are counted across every client of the process.
    """
    logger = logging.getLogger("consumer.kafka.librdkafka")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(StructlogBridge())
    return logger


def with_logger(client_config: dict[str, object]) -> dict[str, object]:
    """``client_config`` with librdkafka's lines routed through ``kafka_logger()``."""
    return {**client_config, "logger": kafka_logger()}
