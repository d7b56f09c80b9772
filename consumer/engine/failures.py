"""Dead-letter bookkeeping: failed records on their way to a sink, until acknowledged.

A failed event is done only once its dead-letter record is acknowledged (``acks=all``):
until then its offset holds the partition's watermark. A record the sink could not write
is sent again ``RESEND_SECONDS`` later, as long as its partition is still owned in the same
generation (a released partition's new owner consumes the record again). Records awaiting
an acknowledgement or a resend are held in memory, so they count in the engine's buffer:
while the dead-letter topic cannot be written, consumption pauses instead of growing.

Sinks (``FailureSink``):

- ``consumer.deadletter.producer.DeadLetterProducer`` writes to the dead-letter topic;
- ``LoggedFailures`` (dry run) writes nothing and acknowledges at once: the engine's log
  line is the record of the failure;
- ``HeldFailures`` (``dlq redrive``) writes nothing and acknowledges nothing: the offset
  stays uncommitted, so a record that still fails stays in the dead-letter topic.

Delivery reports arrive from ``poll`` (or at once from ``send``), on the poll thread.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from confluent_kafka import KafkaError

from consumer.engine.accounting import Accounting, event_context
from consumer.engine.partitions import Partitions
from consumer.kafka_types import TP
from consumer.outcomes import Failed
from consumer.wire import Record

RESEND_SECONDS = 2.0

Delivered = Callable[[KafkaError | None], None]


class FailureSink(Protocol):
    """Where failed records go: the dead-letter producer, or a stand-in."""

    def topic_for(self, source_topic: str) -> str:
        """Where failures of ``source_topic`` go (for logs)."""

    def send(self, record: Record, failure: Failed, delivered: Delivered) -> bool:
        """Write the record; ``delivered`` reports the acknowledgement (from ``poll``).

        Return False when the sink holds the record instead: nothing is written and
        ``delivered`` is never called.
        """

    def poll(self, timeout: float = 0.0) -> None:
        """Serve delivery reports."""

    def flush(self, timeout: float) -> int:
        """Wait for outstanding records; return how many remain."""


class LoggedFailures:
    """Dry run: write nothing, acknowledge at once (the engine's log line is the record)."""

    def topic_for(self, source_topic: str) -> str:
        """Where the record would have gone."""
        return f"{source_topic} (dry-run: not written)"

    def send(self, record: Record, failure: Failed, delivered: Delivered) -> bool:  # noqa: ARG002 - the protocol's
        """Acknowledge at once."""
        delivered(None)
        return True

    def poll(self, timeout: float = 0.0) -> None:
        """Nothing to serve."""

    def flush(self, timeout: float) -> int:  # noqa: ARG002 - the protocol's
        """Nothing outstanding."""
        return 0


class HeldFailures:
    """Redrive: hold every failure where it is; its offset is never committed."""

    def topic_for(self, source_topic: str) -> str:
        """Nowhere: the record stays in ``source_topic``."""
        return f"{source_topic} (held)"

    def send(self, record: Record, failure: Failed, delivered: Delivered) -> bool:  # noqa: ARG002 - the protocol's
        """Hold: write nothing, acknowledge nothing."""
        return False

    def poll(self, timeout: float = 0.0) -> None:
        """Nothing to serve."""

    def flush(self, timeout: float) -> int:  # noqa: ARG002 - the protocol's
        """Nothing outstanding."""
        return 0


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A failed record on its way to the sink."""

    record: Record
    failure: Failed
    generation: int  # of its partition when it failed
    event_type: str  # a metric label (``accounting.event_type_label`` for poison)
    event_id: str | None = None  # None: the record did not decode

    @property
    def tp(self) -> TP:
        """The source partition."""
        return (self.record.topic, self.record.partition)


class Failures:
    """Sends failed records, waits for their acknowledgement, sends again what was refused."""

    def __init__(
        self,
        sink: FailureSink,
        partitions: Partitions,
        accounting: Accounting,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sink = sink
        self._partitions = partitions
        self._accounting = accounting
        self._clock = clock
        self._unacknowledged: Counter[tuple[TP, int]] = Counter()  # by partition, generation
        self._resends: list[tuple[float, DeadLetter]] = []  # (due, letter)

    @property
    def buffered(self) -> int:
        """Records held here: awaiting an acknowledgement or a resend."""
        return self._unacknowledged.total() + len(self._resends)

    @property
    def unacknowledged(self) -> int:
        """Records sent and not yet acknowledged (of any generation)."""
        return self._unacknowledged.total()

    def idle(self) -> bool:
        """Nothing awaits an acknowledgement or a resend."""
        return self.buffered == 0

    def waiting_for(self, tps: Iterable[TP]) -> bool:
        """True while a record of the current generation of one of ``tps`` awaits its ack."""
        for tp in tps:
            generation = self._partitions.generation(tp)
            if generation is not None and self._unacknowledged[(tp, generation)]:
                return True
        return False

    def fail(
        self, record: Record, failure: Failed, *, event_type: str, event_id: str | None = None
    ) -> None:
        """Send ``record`` (of a partition owned now); it is done once the sink acknowledges it.

        ``event_type`` is its metric label; ``event_id`` None: the record did not decode.
        """
        generation = self._partitions.generation((record.topic, record.partition))
        assert generation is not None, "a record of a partition not assigned cannot fail"
        self._send(DeadLetter(record, failure, generation, event_type, event_id))

    def _send(self, letter: DeadLetter) -> None:
        key = (letter.tp, letter.generation)
        topic = self._sink.topic_for(letter.record.topic)
        self._unacknowledged[key] += 1

        def delivered(error: KafkaError | None) -> None:
            self._forget(key)
            with event_context(letter.event_id):
                self._delivered(letter, topic, error)

        if not self._sink.send(letter.record, letter.failure, delivered):
            self._forget(key)
            self._accounting.held(letter.record, letter.failure)

    def _delivered(self, letter: DeadLetter, topic: str, error: KafkaError | None) -> None:
        if error is not None:
            self._accounting.not_written(letter.record, topic, error)
            self._resends.append((self._clock() + RESEND_SECONDS, letter))
            return
        if self._partitions.done(letter.tp, letter.generation, letter.record.offset):
            self._accounting.dead_lettered(letter.record, letter.failure, letter.event_type, topic)

    def _forget(self, key: tuple[TP, int]) -> None:
        self._unacknowledged[key] -= 1
        if not self._unacknowledged[key]:
            del self._unacknowledged[key]

    def resend_due(self) -> None:
        """Send again the records whose resend is due, if their partition is still owned."""
        if not self._resends:
            return
        now = self._clock()
        due = [letter for at, letter in self._resends if at <= now]
        self._resends = [(at, letter) for at, letter in self._resends if at > now]
        for letter in due:
            if self._partitions.is_current(letter.tp, letter.generation):
                self._send(letter)

    def poll(self) -> None:
        """Serve delivery reports now."""
        self._sink.poll(0)

    def flush(self, timeout: float) -> int:
        """Wait up to ``timeout`` for outstanding records; return how many remain."""
        return self._sink.flush(timeout)
