"""Producing dead-letter records (the worker's side; ``inspect`` is the reader's).

The source offset is marked done only when the broker acknowledged the dead-letter record
(``acks=all``, idempotent producer); until then it holds the partition's watermark. The
engine's bookkeeping (``consumer.engine.failures``) waits for that acknowledgement and sends
again what could not be written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from consumer.deadletter.records import context_headers, original_headers
from consumer.outcomes import Failed
from consumer.wire import Record

Delivered = Callable[[KafkaError | None], None]


class DeadLetterProducer:
    """Writes dead-letter records; delivery reports arrive from ``poll()`` (the poll thread)."""

    def __init__(
        self, client_config: dict[str, Any], *, topic_for: Callable[[str], str], group: str
    ) -> None:
        self._producer = Producer(
            {
                **client_config,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "message.timeout.ms": 60_000,
                "client.id": f"{group}-dead-letters",
            }
        )
        self.topic_for = topic_for
        self._group = group

    def send(self, record: Record, failure: Failed, delivered: Delivered) -> bool:
        """Produce the dead-letter record of ``record``; True: ``delivered`` will report.

        ``delivered(None)`` is called once the broker acknowledged it, ``delivered(error)``
        when it could not be written (the caller retries later). Both come from ``poll``,
        or at once when the local queue is full.
        """
        topic = self.topic_for(record.topic)

        def on_delivery(error: KafkaError | None, _message: Message) -> None:
            delivered(error)

        headers = original_headers(record.headers) + context_headers(
            record, failure, group=self._group
        )
        try:
            self._producer.produce(
                topic,
                key=record.key,
                value=record.value,
                headers=list(headers),
                on_delivery=on_delivery,
            )
        except BufferError as error:  # local queue full: report like a failed delivery
            delivered(KafkaError(KafkaError._QUEUE_FULL, str(error)))
        return True

    def poll(self, timeout: float = 0.0) -> None:
        """Serve delivery reports."""
        self._producer.poll(timeout)

    def flush(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds for outstanding records; return how many remain."""
        return self._producer.flush(timeout)
