"""Every log line of an event carries its ``event_id``, bound once with structlog's contextvars.

The lines are captured with ``merge_contextvars`` in front, as ``configure_logging`` sets it
up: the worker thread's lines (the processor's, as effects and services log there) and the
poll thread's lines about the event (its outcome, its dead letter) carry the id; lines
about no event, or about a record that did not decode, carry none, so nothing leaks from
one event to the next.
"""

from __future__ import annotations

import threading
from collections.abc import MutableMapping
from typing import Any

import structlog
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from consumer.events import Event
from consumer.outcomes import Failed, Outcome
from tests.support.engine_fakes import (
    P0,
    Engines,
    FakeSink,
    ScriptedDecoder,
    ScriptedProcessor,
    send,
    wait_until,
)
from tests.support.memory_consumer import MemoryConsumer

effects_log = structlog.get_logger("tests.effects")
EVENT_LINES = {"event_applied", "event_failed", "event_dead_lettered", "event_held"}


class LoggingProcessor(ScriptedProcessor):
    """Logs a line per event as effects and services do; ``about`` tells the test which."""

    def __call__(self, event: Event, cancelled: threading.Event, /) -> Outcome:
        effects_log.info("service_called", about=event.meta.id)
        return super().__call__(event, cancelled)


def run_three_events(
    engines: Engines, *, sink: FakeSink | None
) -> tuple[list[MutableMapping[str, Any]], dict[int, str]]:
    """Applied, failed and poison records through an engine; its lines and ids by offset."""
    consumer = MemoryConsumer()
    ids = {send(consumer, P0, event_id, learner=7): event_id for event_id in ("e0", "e1")}
    send(consumer, P0, "poison", learner=8)
    consumer.assign(P0)
    processor = LoggingProcessor()
    processor.outcomes["e1"] = Failed(
        stage="apply", error_class="PermanentError", reason="http_400", message="no"
    )
    decoder = ScriptedDecoder()
    decoder.poison.add("poison")
    with capture_logs(processors=[merge_contextvars]) as lines:
        running = engines.start(consumer, processor, decoder=decoder, sink=sink)
        tally = running.engine.tally
        wait_until(lambda: tally.applied == 1 and tally.dead_lettered + tally.held == 2)
        running.stop()
    return lines, ids


def test_each_line_of_an_event_carries_its_id_on_both_threads(engines: Engines) -> None:
    """Worker-thread lines and the poll thread's outcome and dead-letter lines name the event."""
    lines, ids = run_three_events(engines, sink=FakeSink())

    called = [line for line in lines if line["event"] == "service_called"]
    assert sorted(line["event_id"] for line in called) == ["e0", "e1"]
    assert all(line["event_id"] == line["about"] for line in called)
    about_events = [line for line in lines if line["event"] in EVENT_LINES and line["offset"] < 2]
    assert {line["event"] for line in about_events} == {
        "event_applied",
        "event_failed",
        "event_dead_lettered",
    }
    assert all(line["event_id"] == ids[line["offset"]] for line in about_events)


def test_a_record_that_did_not_decode_and_lines_of_no_event_carry_no_id(engines: Engines) -> None:
    """Poison has no trustworthy id; start, stop and rebalance lines belong to no event."""
    lines, _ = run_three_events(engines, sink=FakeSink())

    poison = [line for line in lines if line.get("offset") == 2]
    assert {line["event"] for line in poison} == {"record_undecodable", "event_dead_lettered"}
    assert all("event_id" not in line for line in poison)
    for name in ("engine_started", "partitions_assigned", "engine_stopped"):
        (line,) = [line for line in lines if line["event"] == name]
        assert "event_id" not in line


def test_a_held_failure_names_its_event(engines: Engines) -> None:
    """Redrive holds failures: the held line of a decoded event carries its id too."""
    lines, ids = run_three_events(engines, sink=None)

    held = [line for line in lines if line["event"] == "event_held"]
    assert sorted((line["offset"], line.get("event_id")) for line in held) == [
        (1, ids[1]),
        (2, None),
    ]
