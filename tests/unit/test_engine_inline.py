"""The inline engine (the dry run): the processor runs on the poll thread, the rules hold.

No pool, no thread hand-off: each event runs on the engine's own thread as soon as it may
start. Per-key order, the watermark, the buffer bound, the rate limiter's queue, dead
letters before commits, the revoke and shutdown rules and the crash rule are the same as
with worker threads; these tests prove each one on the in-memory broker. A call is never
held here (it would hold the loop with it): the limiter's tokens stand in where a test
needs work that has not started yet.
"""

from __future__ import annotations

import threading

from consumer.errors import WorkerCrashedError
from consumer.events import Event
from consumer.outcomes import Outcome
from tests.support.engine_fakes import (
    P0,
    P1,
    Engines,
    ScriptedProcessor,
    Tokens,
    send,
    turns,
    wait_until,
)
from tests.support.memory_consumer import MemoryConsumer


class ThreadNoting(ScriptedProcessor):
    """Records the thread each event ran on."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: dict[str, str] = {}

    def __call__(self, event: Event, cancelled: threading.Event, /) -> Outcome:
        self.threads[event.meta.id] = threading.current_thread().name
        return super().__call__(event, cancelled)


def test_events_run_on_the_poll_thread_in_offset_order_per_key(engines: Engines) -> None:
    """Every event runs on the engine's thread; one key's events in offset order; all committed."""
    consumer = MemoryConsumer()
    for event_id, learner in [("a0", 1), ("a1", 1), ("b0", 2), ("a2", 1), ("b1", 2)]:
        send(consumer, P0, event_id, learner=learner)
    send(consumer, P1, "a3", learner=1)  # the same learner on another partition
    consumer.assign(P0, P1)
    processor = ThreadNoting()
    running = engines.start(consumer, processor, inline=True)

    wait_until(lambda: consumer.committed_offset(P0) == 5 and consumer.committed_offset(P1) == 1)
    started = processor.started()
    assert [event for event in started if event.startswith("a")][:3] == ["a0", "a1", "a2"]
    assert [event for event in started if event.startswith("b")] == ["b0", "b1"]
    assert processor.overlaps == []
    assert set(processor.threads.values()) == {running.thread.name}
    assert running.engine.tally.applied == 6


def test_a_full_buffer_pauses_intake_until_events_may_start(engines: Engines) -> None:
    """Events that cannot start (no token) fill the buffer: intake pauses, then resumes."""
    consumer = MemoryConsumer()
    for index in range(10):
        send(consumer, P0, f"e{index}", learner=index)
    consumer.assign(P0)
    tokens = Tokens()
    running = engines.start(consumer, limiter=tokens, inline=True, max_buffered=4)

    wait_until(lambda: P0 in consumer.paused)
    turns(consumer)
    assert consumer.delivered == 4
    assert running.processor.started() == []

    tokens.grant(10)
    wait_until(lambda: consumer.committed_offset(P0) == 10)
    assert running.processor.started() == [f"e{index}" for index in range(10)]
    assert P0 not in consumer.paused


def test_a_revoke_never_starts_the_released_partition_s_waiting_events(engines: Engines) -> None:
    """Revoke: what ran is committed; what waits (for a token, or behind its key) never runs.

    The learner's event on the partition kept runs once its released predecessor is gone.
    """
    consumer = MemoryConsumer()
    send(consumer, P0, "ran", learner=1)
    send(consumer, P0, "waits-for-token", learner=2)
    send(consumer, P0, "waits-behind-key", learner=2)
    send(consumer, P1, "kept", learner=2)  # behind learner 2's released events
    consumer.assign(P0, P1)
    tokens = Tokens()
    tokens.grant()
    running = engines.start(consumer, limiter=tokens, inline=True)
    wait_until(lambda: running.engine.tally.applied == 1 and consumer.delivered == 4)

    consumer.revoke(P0)
    wait_until(lambda: consumer.rebalances == 2)
    assert consumer.commits_of(P0)[-1] == 1  # the revoke's commit: "ran" is done
    tokens.grant(5)
    wait_until(lambda: running.engine.tally.applied == 2)
    turns(consumer)

    assert running.processor.started() == ["ran", "kept"]
    assert consumer.commits_of(P0)[-1] == 1
    assert consumer.committed_offset(P1) == 1


def test_a_processor_that_raises_stops_the_engine_after_committing_what_is_done(
    engines: Engines,
) -> None:
    """An unclassified exception is a crash, as on a worker thread: commit, then re-raise."""
    consumer = MemoryConsumer()
    for index in range(3):
        send(consumer, P0, f"e{index}", learner=index)
    consumer.assign(P0)
    processor = ScriptedProcessor()
    processor.outcomes["e1"] = RuntimeError("a bug")
    running = engines.start(consumer, processor, inline=True)

    wait_until(running.stopped)
    assert isinstance(running.error, WorkerCrashedError)
    assert consumer.committed_offset(P0) == 1


def test_a_stop_commits_every_event_done(engines: Engines) -> None:
    """SIGTERM: nothing runs elsewhere, so the drain is immediate and commits it all."""
    consumer = MemoryConsumer()
    for index in range(20):
        send(consumer, P0 if index % 2 else P1, f"e{index}", learner=index % 3)
    consumer.assign(P0, P1)
    running = engines.start(consumer, inline=True)
    wait_until(lambda: running.engine.tally.applied == 20)

    running.stop()

    assert consumer.committed_offset(P0) == 10
    assert consumer.committed_offset(P1) == 10
