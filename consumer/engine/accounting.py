"""Outcome accounting: what became of each record, as log lines, metrics and a tally.

Every line about an event names its record (topic, partition, offset) and, once decoded,
its type, course key and LMS user id; the ``event_id`` is not passed here but bound with
structlog's contextvars (``event_context``) where an event is handled, so the lines of
effects and services carry it too. A failure's fields come from ``Failed.log_fields``, the
same on every line. No username, e-mail or name is ever logged.

Metric labels stay bounded: an event type is one this worker consumes or ``unknown``
(``event_type_label``), never a poison record's raw header.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, assert_never

import structlog
from confluent_kafka import KafkaError
from structlog.contextvars import bind_contextvars, reset_contextvars

from consumer.errors import DecodeError, RegistryUnavailableError
from consumer.events import CertificateEvent, Event, EventType
from consumer.kafka_types import TP
from consumer.observability import Metrics
from consumer.outcomes import Abandoned, Applied, Failed, Outcome, Skipped
from consumer.wire import Record

log = structlog.get_logger("consumer.engine")

_EVENT_TYPES = frozenset(str(event_type) for event_type in EventType)
SUMMARY_SECONDS = 10.0
"""How often ``events_progress`` sums up the events finished (while any finish)."""


def _debug_enabled() -> bool:
    """Whether ``log.debug`` writes anything: its fields are not even built otherwise."""
    return bool(log.is_enabled_for(logging.DEBUG))


@dataclass(slots=True)
class Tally:
    """Events finished by this engine, by outcome (for ``dlq redrive``'s summary and tests)."""

    applied: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    held: int = 0  # failed with failures held (redrive): left uncommitted
    failed: int = 0  # failed, on their way to the dead-letter topic (or held)


def event_type_label(record: Record) -> str:
    """The record's ``ce_type`` if it is one this worker consumes, else ``unknown``.

    A metric label: a poison record's arbitrary header must not create a new series.
    """
    values = record.header("ce_type")
    value = values[0].decode("utf-8", errors="replace") if len(values) == 1 else ""
    return value if value in _EVENT_TYPES else "unknown"


class _EventContext:
    """Binds ``event_id`` for a block: structlog's ``bound_contextvars`` without a generator."""

    __slots__ = ("_event_id", "_tokens")

    def __init__(self, event_id: str) -> None:
        self._event_id = event_id
        self._tokens: Mapping[str, Any] = {}

    def __enter__(self) -> None:
        self._tokens = bind_contextvars(event_id=self._event_id)

    def __exit__(self, *_exc: object) -> None:
        reset_contextvars(**self._tokens)


def event_context(event_id: str | None) -> AbstractContextManager[Any]:
    """Bind ``event_id`` to every log line of this thread for the block (None: nothing).

    A record that did not decode has no event id to trust: its ``ce_id`` may be missing,
    repeated or hostile.
    """
    if event_id is None:
        return contextlib.nullcontext()
    return _EventContext(event_id)


def record_fields(record: Record, event: Event | None = None) -> dict[str, Any]:
    """The fields naming a record (and its event, once decoded) on a log line."""
    fields: dict[str, Any] = {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
    }
    if event is not None:
        fields["event_type"] = str(event.meta.type)
        fields["course_key"] = str(event.course_key)
        if isinstance(event, CertificateEvent):
            fields["lms_user_id"] = event.learner.user_id
    return fields


class _Children(dict[tuple[str, ...], Any]):
    """The children of a labelled metric by label values, each looked up once.

    ``labels()`` takes a lock and builds a key on every call; a child kept here does
    neither. Only for series that are never removed (``released`` removes per-partition
    gauges, which are therefore not cached).
    """

    def __init__(self, metric: Any) -> None:  # noqa: ANN401 - any labelled prometheus metric
        super().__init__()
        self._metric = metric

    def __missing__(self, labels: tuple[str, ...]) -> Any:  # noqa: ANN401 - a metric child
        child = self[labels] = self._metric.labels(*labels)
        return child


@dataclass(slots=True)
class _Batch:
    """The per-event metric updates of one turn, handed to Prometheus together (``flush``).

    An event costs a few dictionary updates here instead of several ``labels()`` lookups,
    each with a lock. The metrics lag by at most one turn of the loop (tens of ms).
    """

    received: Counter[str] = field(default_factory=Counter)
    done: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)
    skips: Counter[str] = field(default_factory=Counter)
    latencies: list[tuple[str, float]] = field(default_factory=list)
    born: list[tuple[str, datetime]] = field(default_factory=list)  # event type, ce_time
    children: dict[str, _Children] = field(default_factory=dict)

    def flush(self, metrics: Metrics) -> None:
        """Add this turn's counts and observations to ``metrics``; start the next turn."""
        if not self.children:
            self.children = {
                name: _Children(getattr(metrics, name))
                for name in (
                    "events_received",
                    "events_done",
                    "skips",
                    "processing_latency",
                    "event_age",
                )
            }
        children = self.children
        for topic, count in self.received.items():
            children["events_received"][(topic,)].inc(count)
        for labels, count in self.done.items():
            children["events_done"][labels].inc(count)
        for reason, count in self.skips.items():
            children["skips"][(reason,)].inc(count)
        latency = children["processing_latency"]
        for event_type, elapsed in self.latencies:
            latency[(event_type,)].observe(elapsed)
        if self.born:
            now, age = time.time(), children["event_age"]
            for event_type, born in self.born:
                age[(event_type,)].observe(max(0.0, now - born.timestamp()))
        self.received.clear()
        self.done.clear()
        self.skips.clear()
        self.latencies.clear()
        self.born.clear()


class Accounting:
    """Logs, metrics and the tally of the engine's records; the poll thread's only.

    ``summarise`` logs ``events_progress`` (INFO) every ``summary_seconds`` while events
    finish: what finished since the last one, and the partitions whose oldest pending event
    has waited longer than that (the offset an operator looks for when one is stuck).
    """

    def __init__(
        self,
        metrics: Metrics,
        *,
        summary_seconds: float = SUMMARY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.metrics = metrics
        self.tally = Tally()
        self._batch = _Batch()
        self._summary_seconds = summary_seconds
        self._summarised = Tally()  # the tally at the last summary
        self._summarised_at = clock()
        self._debug = _debug_enabled()

    # ------------------------------------------------------------------ per turn

    def summary_due(self, now: float) -> bool:
        """True when the next ``events_progress`` line is due (the loop asks every turn)."""
        return now - self._summarised_at >= self._summary_seconds

    def summarise(self, now: float, pending: Mapping[TP, tuple[int, float]]) -> None:
        """Log what finished since the last summary (if anything did), and what waits long.

        ``pending``: each partition's oldest event not done, as (offset, age in seconds).
        Also re-reads whether DEBUG lines are wanted (the configuration may change in tests).
        """
        self._debug = _debug_enabled()
        since, self._summarised = self._summarised, replace(self.tally)
        seconds, self._summarised_at = now - self._summarised_at, now
        done = {
            name: getattr(self.tally, name) - getattr(since, name)
            for name in ("applied", "skipped", "failed", "dead_lettered", "held")
        }
        waiting = {
            f"{topic}:{partition}": offset
            for (topic, partition), (offset, age) in sorted(pending.items())
            if age >= self._summary_seconds
        }
        if not any(done.values()) and not waiting:
            return
        finished = done["applied"] + done["skipped"] + done["failed"]
        log.info(
            "events_progress",
            **done,
            seconds=round(seconds, 1),
            events_per_second=round(finished / seconds, 1) if seconds > 0 else None,
            oldest_pending=waiting,
        )

    # ------------------------------------------------------------------ intake

    def received(self, record: Record) -> None:
        """A record was taken from ``record.topic`` (counted at the next ``flush``)."""
        self._batch.received[record.topic] += 1

    def undecodable(self, record: Record, error: DecodeError) -> Failed:
        """The failure of a poison record (dead-lettered at once), logged."""
        failure = Failed.of("decode", error)
        self.tally.failed += 1
        log.warning("record_undecodable", **failure.log_fields(), **record_fields(record))
        return failure

    def registry_unavailable(
        self, record: Record, error: RegistryUnavailableError, retry_in: float
    ) -> None:
        """The registry could not give ``record``'s writer schema; it is read again later."""
        self.metrics.registry_unavailable.inc()
        log.warning(
            "schema_registry_unavailable",
            error=str(error),
            retry_in=retry_in,
            **record_fields(record),
        )

    # ------------------------------------------------------------------ outcomes

    def finished(self, record: Record, event: Event, outcome: Outcome, *, elapsed: float) -> None:
        """An event of a partition still owned finished with ``outcome`` after ``elapsed`` s.

        An applied event is logged at DEBUG only (``event_applied``): at thousands per
        second a line each would cost more than the event. The periodic ``events_progress``
        line counts them; skips, failures and abandoned events keep a line each.
        """
        if not isinstance(outcome, Abandoned):  # an abandoned item may never have run
            self._batch.latencies.append((event.meta.type, elapsed))
        match outcome:
            case Applied():
                self.tally.applied += 1
                self._done(record, event, "applied", ",".join(outcome.skipped))
                if self._debug:
                    log.debug(
                        "event_applied",
                        commands=outcome.commands,
                        skipped=list(outcome.skipped),
                        **record_fields(record, event),
                    )
            case Skipped():
                self.tally.skipped += 1
                self._done(record, event, "skipped", outcome.reason)
                self._batch.skips[outcome.reason] += 1
                log.info(
                    "event_skipped",
                    reason=outcome.reason,
                    detail=outcome.detail,
                    **record_fields(record, event),
                )
            case Failed():
                self.tally.failed += 1
                log.warning("event_failed", **outcome.log_fields(), **record_fields(record, event))
            case Abandoned():
                log.info("event_abandoned", why=outcome.why, **record_fields(record, event))
            case _:
                assert_never(outcome)

    def ignored(self, record: Record, event: Event, outcome: Outcome) -> None:
        """An outcome came back after its partition was released (or reassigned)."""
        if not isinstance(outcome, Abandoned):
            log.info(
                "event_outcome_ignored",
                why="partition no longer assigned",
                **record_fields(record, event),
            )

    def crashed(self, record: Record, event: Event, error: BaseException) -> None:
        """A processor raised instead of returning an outcome (a bug)."""
        log.error("worker_crashed", error=repr(error), **record_fields(record, event))

    def _done(self, record: Record, event: Event, outcome: str, reason: str) -> None:
        self._batch.done[record.topic, event.meta.type, outcome, reason] += 1
        if event.meta.time is not None:
            self._batch.born.append((event.meta.type, event.meta.time))

    def flush(self) -> None:
        """Hand the counts of this turn to the metrics (every turn, and at shutdown)."""
        self._batch.flush(self.metrics)

    # ------------------------------------------------------------------ dead letters

    def dead_lettered(self, record: Record, failure: Failed, event_type: str, topic: str) -> None:
        """The broker acknowledged ``record``'s dead letter in ``topic``: the event is done."""
        self.tally.dead_lettered += 1
        self.metrics.dead_letters.labels(record.topic, failure.stage, failure.error_class).inc()
        self.metrics.events_done.labels(
            record.topic, event_type, "dead_lettered", failure.reason
        ).inc()
        log.warning(
            "event_dead_lettered",
            dead_letter_topic=topic,
            **failure.log_fields(),
            **record_fields(record),
        )

    def not_written(self, record: Record, topic: str, error: KafkaError) -> None:
        """``record``'s dead letter could not be written to ``topic`` (it is sent again)."""
        self.metrics.dead_letter_errors.labels(topic).inc()
        log.error(
            "dead_letter_not_written",
            error=str(error),
            dead_letter_topic=topic,
            **record_fields(record),
        )

    def held(self, record: Record, failure: Failed) -> None:
        """Failures are held (redrive): ``record`` stays where it is, uncommitted."""
        self.tally.held += 1
        log.warning("event_held", **failure.log_fields(), **record_fields(record))

    # ------------------------------------------------------------------ commits and gauges

    def commit_landed(self) -> None:
        """A commit landed."""
        self.metrics.commits.labels("landed").inc()
        self.metrics.last_commit.set(time.time())

    def commit_failed(self, partitions: int, reason: str) -> None:
        """A commit of ``partitions`` partitions was refused (it is tried again)."""
        self.metrics.commits.labels("failed").inc()
        log.warning("commit_failed", error=reason, partitions=partitions)

    def rebalanced(self, kind: str) -> None:
        """A rebalance callback ran: ``assign``, ``revoke`` or ``lost``."""
        self.metrics.rebalances.labels(kind).inc()

    def gauges(
        self, *, queued: int, buffered: int, paused: int, pending_ages: dict[TP, float]
    ) -> None:
        """The per-turn gauges (``in_flight`` is kept by the worker threads)."""
        self.metrics.queued.set(queued)
        self.metrics.buffered.set(buffered)
        self.metrics.paused_partitions.set(paused)
        self.metrics.assigned_partitions.set(len(pending_ages))
        for (topic, partition), age in pending_ages.items():
            self.metrics.oldest_pending_age.labels(topic, str(partition)).set(age)

    def released(self, tps: set[TP]) -> None:
        """Drop the per-partition series of released partitions."""
        for topic, partition in tps:
            for gauge in (self.metrics.lag, self.metrics.oldest_pending_age):
                with contextlib.suppress(KeyError):  # no sample yet
                    gauge.remove(topic, str(partition))
