"""The engine's guarantees on an in-memory broker, with a fake clock and scripted fakes.

Every promise of ``consumer.engine.loop``'s docstring has a test here, and so has each path
no integration test reaches: a dead-letter write that fails and is sent again, a refused
commit, a lost partition, an outcome of a partition's old generation, a revoke while the
schema registry is unreachable, a worker crash. The engine is driven only through its
constructor, ``run``, ``request_stop``, ``tally`` and its seams, never its insides.

Work handed to the pool but not started when its partition is released, and the rate
limiter's queue at a release, are in ``test_engine_release.py``; the engine's parts on
their own in ``test_engine_partitions.py``, ``test_engine_failures.py`` and, for the
``event_id`` on every line, ``test_engine_logs.py``.
"""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException
from structlog.testing import capture_logs

from consumer.circuit import Breakers
from consumer.outcomes import Failed
from tests.support.clock import FakeClock
from tests.support.engine_fakes import (
    P0,
    P1,
    Engines,
    FakeSink,
    ScriptedDecoder,
    ScriptedProcessor,
    send,
    turns,
    wait_until,
)
from tests.support.memory_consumer import TP, MemoryConsumer


def highest_commit(consumer: MemoryConsumer, tp: TP) -> int:
    """The highest offset ever stored for ``tp`` (-1: none)."""
    return max(consumer.commits_of(tp), default=-1)


def drain_steps(sink: FakeSink, count: int = 3) -> None:
    """Wait for ``count`` more polls of the sink (the engine polls it in every drain step)."""
    target = sink.polls + count
    wait_until(lambda: sink.polls >= target)


def failed(reason: str = "rejected") -> Failed:
    return Failed(stage="apply", error_class="PermanentError", reason=reason, message="no")


# ---------------------------------------------------------------------------- ordering


def test_events_of_one_key_run_one_at_a_time_in_offset_order(engines: Engines) -> None:
    """Same-key events are applied in offset order, never two at once; other keys run meanwhile."""
    consumer = MemoryConsumer()
    for event_id, learner in [("a0", 1), ("a1", 1), ("b0", 2), ("a2", 1), ("b1", 2)]:
        send(consumer, P0, event_id, learner=learner)
    send(consumer, P1, "c0", learner=3)
    consumer.assign(P0, P1)
    processor = ScriptedProcessor()
    processor.hold("a0", "a1", "a2", "b0", "b1", "c0")
    running = engines.start(consumer, processor)

    wait_until(lambda: sorted(processor.started()) == ["a0", "b0", "c0"])
    turns(consumer)
    assert sorted(processor.started()) == ["a0", "b0", "c0"]  # a1, a2, b1 wait behind their head

    processor.release("a0")
    wait_until(lambda: "a1" in processor.started())
    turns(consumer)
    assert "a2" not in processor.started()

    processor.release_all()
    wait_until(lambda: running.engine.tally.applied == 6)
    started = processor.started()
    assert [event for event in started if event.startswith("a")] == ["a0", "a1", "a2"]
    assert [event for event in started if event.startswith("b")] == ["b0", "b1"]
    assert processor.overlaps == []


# ---------------------------------------------------------------------------- commits


def test_an_offset_is_committed_only_once_it_and_every_offset_below_are_done(
    engines: Engines,
) -> None:
    """Later offsets done first do not move the commit past an earlier one still running."""
    consumer = MemoryConsumer()
    send(consumer, P0, "slow", learner=1)
    send(consumer, P0, "fast1", learner=2)
    send(consumer, P0, "fast2", learner=3)
    consumer.assign(P0)
    processor = ScriptedProcessor()
    processor.hold("slow")
    running = engines.start(consumer, processor)

    wait_until(lambda: running.engine.tally.applied == 2)
    turns(consumer)
    assert highest_commit(consumer, P0) <= 0

    processor.release("slow")
    wait_until(lambda: consumer.committed_offset(P0) == 3)


def test_a_refused_asynchronous_commit_is_sent_again(engines: Engines) -> None:
    """The broker refuses a periodic commit (a rebalance, say): the engine commits it again."""
    consumer = MemoryConsumer()
    send(consumer, P0, "e0", learner=1)
    consumer.assign(P0)
    consumer.refuse_commits(KafkaError(KafkaError.REBALANCE_IN_PROGRESS))
    running = engines.start(consumer)

    wait_until(lambda: any(commit.offset == 1 for commit in consumer.refused))
    turns(consumer)
    consumer.refuse_commits(None)

    wait_until(lambda: consumer.committed_offset(P0) == 1)
    assert running.engine.tally.applied == 1


# ---------------------------------------------------------------------------- dead letters


@pytest.mark.parametrize("inline", [False, True], ids=["threads", "inline"])
def test_a_failed_event_is_committed_only_once_its_dead_letter_is_acknowledged(
    engines: Engines, inline: bool
) -> None:
    """The dead-letter write comes before the commit: an unacknowledged one holds the watermark.

    The same with the dry run's inline processor (``tests/unit/test_engine_inline.py``).
    """
    consumer = MemoryConsumer()
    for index in range(3):
        send(consumer, P0, f"e{index}", learner=index)
    consumer.assign(P0)
    processor = ScriptedProcessor()
    processor.outcomes["e1"] = failed()
    sink = FakeSink()
    sink.holding = True
    running = engines.start(consumer, processor, sink=sink, inline=inline)

    wait_until(lambda: sink.offsets_sent() == [1] and running.engine.tally.applied == 2)
    turns(consumer)
    assert highest_commit(consumer, P0) <= 1

    sink.holding = False
    wait_until(lambda: consumer.committed_offset(P0) == 3)
    assert running.engine.tally.dead_lettered == 1
    assert sink.sent[0][1] == failed()


def test_a_dead_letter_that_could_not_be_written_is_sent_again(engines: Engines) -> None:
    """A delivery error leaves the offset pending; the record is resent, and then committed."""
    consumer = MemoryConsumer()
    send(consumer, P0, "e0", learner=1)
    send(consumer, P0, "poison", learner=2)
    send(consumer, P0, "e2", learner=3)
    consumer.assign(P0)
    decoder = ScriptedDecoder()
    decoder.poison.add("poison")
    sink = FakeSink()
    sink.results.append(KafkaError(KafkaError._MSG_TIMED_OUT))
    clock = FakeClock()
    running = engines.start(consumer, decoder=decoder, sink=sink, clock=clock)

    wait_until(lambda: sink.offsets_sent() == [1] and running.engine.tally.applied == 2)
    turns(consumer)
    assert highest_commit(consumer, P0) <= 1
    assert running.engine.tally.dead_lettered == 0

    wait_until(lambda: consumer.committed_offset(P0) == 3, tick=lambda: clock.advance(0.5))
    assert sink.offsets_sent() == [1, 1]
    assert running.engine.tally.dead_lettered == 1
    assert sink.sent[1][1].stage == "decode"


def test_without_a_sink_a_failure_is_held_and_never_committed(engines: Engines) -> None:
    """No dead-letter topic (redrive): the failed record's offset stays uncommitted."""
    consumer = MemoryConsumer()
    send(consumer, P0, "e0", learner=1)
    send(consumer, P0, "e1", learner=2)
    send(consumer, P0, "e2", learner=3)
    consumer.assign(P0)
    processor = ScriptedProcessor()
    processor.outcomes["e1"] = failed()
    running = engines.start(consumer, processor)

    wait_until(lambda: running.engine.tally.applied == 2 and running.engine.tally.held == 1)
    turns(consumer)

    assert highest_commit(consumer, P0) == 1


# ---------------------------------------------------------------------------- flow control


def test_the_buffer_bound_is_strict_and_consumption_resumes_at_half(engines: Engines) -> None:
    """With max_buffered events in memory every partition pauses; it resumes at half of it."""
    consumer = MemoryConsumer()
    for index in range(10):
        send(consumer, P0 if index < 5 else P1, f"e{index}", learner=index)
    consumer.assign(P0, P1)
    processor = ScriptedProcessor()
    processor.hold(*(f"e{index}" for index in range(10)))
    running = engines.start(consumer, processor, max_buffered=4)

    wait_until(lambda: consumer.delivered == 4 and consumer.paused == {P0, P1})
    turns(consumer, 5)
    assert consumer.delivered == 4
    assert len(processor.started()) == 4

    first, second, third = processor.started()[:3]
    processor.release(first)
    turns(consumer, 5)
    assert consumer.delivered == 4  # 3 held: above half of the bound, still paused
    processor.release(second)
    wait_until(lambda: consumer.delivered == 6 and consumer.paused == {P0, P1})
    turns(consumer, 5)
    assert consumer.delivered == 6

    processor.release(third)
    processor.release_all()
    wait_until(lambda: running.engine.tally.applied == 10)
    wait_until(lambda: consumer.committed_offset(P0) == 5 and consumer.committed_offset(P1) == 5)


class SwitchedBreakers(Breakers):
    """Breakers whose ``holding_back`` the test switches (a service down, work waiting on it)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def holding_back(self) -> bool:
        return self.down


def test_consumption_pauses_while_a_circuit_holds_work_back(engines: Engines) -> None:
    """While a service's circuit holds work back, every partition is paused."""
    consumer = MemoryConsumer()
    consumer.assign(P0, P1)
    breakers = SwitchedBreakers()
    breakers.down = True
    running = engines.start(consumer, breakers=breakers)
    wait_until(lambda: consumer.paused == {P0, P1})

    send(consumer, P0, "e0", learner=1)
    send(consumer, P1, "e1", learner=2)
    turns(consumer, 5)
    assert consumer.delivered == 0

    breakers.down = False
    wait_until(lambda: running.engine.tally.applied == 2)
    assert consumer.paused == set()


def test_an_unreachable_registry_seeks_back_and_pauses_only_that_partition(
    engines: Engines,
) -> None:
    """The record is consumed again later: seek back, pause, nothing past it runs or commits."""
    consumer = MemoryConsumer()
    send(consumer, P0, "e0", learner=1)
    send(consumer, P0, "needs-registry", learner=2)
    send(consumer, P0, "e2", learner=1)
    consumer.assign(P0, P1)
    decoder = ScriptedDecoder()
    decoder.unreachable.add("needs-registry")
    clock = FakeClock()
    running = engines.start(consumer, decoder=decoder, clock=clock)

    wait_until(lambda: running.engine.tally.applied == 1 and consumer.seeks == [(P0, 1)])
    wait_until(lambda: P0 in consumer.paused)
    send(consumer, P1, "elsewhere", learner=3)
    wait_until(lambda: running.engine.tally.applied == 2)  # the other partition flows on
    turns(consumer, 5)
    assert P0 in consumer.paused
    assert consumer.deliveries[(P0, 1)] == 1
    assert sorted(running.processor.started()) == ["e0", "elsewhere"]
    assert highest_commit(consumer, P0) <= 1

    decoder.unreachable.clear()
    wait_until(lambda: running.engine.tally.applied == 4, tick=lambda: clock.advance(1.0))
    wait_until(lambda: consumer.committed_offset(P0) == 3)
    assert running.processor.started().count("e2") == 1


# ---------------------------------------------------------------------------- rebalancing


def test_a_revoked_partition_stops_its_work_drains_and_commits(engines: Engines) -> None:
    """Revoke: the running event is cancelled and drained, waiting ones never start, a commit."""
    consumer = MemoryConsumer()
    send(consumer, P0, "running", learner=1)
    send(consumer, P0, "waiting", learner=1)
    send(consumer, P0, "other", learner=2)
    send(consumer, P1, "kept", learner=3)
    consumer.assign(P0, P1)
    processor = ScriptedProcessor()
    processor.hold("running")
    running = engines.start(consumer, processor, revoke_timeout_seconds=15.0)
    wait_until(lambda: running.engine.tally.applied == 2)  # other, kept

    consumer.revoke(P0)
    wait_until(lambda: processor.cancelled("running"))
    processor.release("running")  # it finishes its request within the bound
    wait_until(lambda: consumer.rebalances == 2)

    assert consumer.commits_of(P0)[-1] == 1  # running and other done; waiting is not
    send(consumer, P0, "after", learner=4)
    send(consumer, P1, "kept2", learner=3)
    wait_until(lambda: running.engine.tally.applied == 4)
    turns(consumer)
    assert "waiting" not in processor.started()
    assert "after" not in processor.started()
    assert all(commit.assigned for commit in consumer.commits if commit.tp == P0)
    assert consumer.committed_offset(P1) == 2


def test_a_revoke_waits_for_running_work_no_longer_than_its_bound(engines: Engines) -> None:
    """An event that does not finish holds the revoke for revoke_timeout_seconds, then is left."""
    consumer = MemoryConsumer()
    send(consumer, P0, "stuck", learner=1)
    consumer.assign(P0)
    processor = ScriptedProcessor()
    processor.hold("stuck")
    sink = FakeSink()
    clock = FakeClock()
    running = engines.start(
        consumer, processor, sink=sink, clock=clock, revoke_timeout_seconds=15.0
    )
    wait_until(lambda: processor.started() == ["stuck"])

    consumer.revoke(P0)
    wait_until(lambda: processor.cancelled("stuck"))
    clock.advance(14.0)
    drain_steps(sink)
    assert consumer.rebalances == 1  # still draining: the bound has not passed

    wait_until(lambda: consumer.rebalances == 2, tick=lambda: clock.advance(1.0))
    assert consumer.commits_of(P0)[-1] == 0

    processor.release("stuck")
    wait_until(lambda: processor.finished("stuck"))
    turns(consumer)
    assert running.engine.tally.applied == 0  # its late outcome belongs to no one
    assert highest_commit(consumer, P0) == 0


def test_a_lost_partition_is_dropped_without_a_commit(engines: Engines) -> None:
    """Lost: work stops, nothing is committed for it, and it is consumed again if it comes back."""
    consumer = MemoryConsumer()
    send(consumer, P0, "running", learner=1)
    send(consumer, P0, "waiting", learner=1)
    send(consumer, P1, "kept", learner=2)
    consumer.assign(P0, P1)
    processor = ScriptedProcessor()
    processor.hold("running")
    running = engines.start(consumer, processor)
    wait_until(lambda: running.engine.tally.applied == 1 and "running" in processor.started())
    turns(consumer)
    before = consumer.commits_of(P0)

    consumer.lose(P0)
    wait_until(lambda: consumer.rebalances == 2)
    assert processor.cancelled("running")
    assert consumer.commits_of(P0) == before

    processor.release("running", keep_holding=True)
    wait_until(lambda: processor.finished("running"))
    turns(consumer)
    assert consumer.commits_of(P0) == before
    assert "waiting" not in processor.started()
    assert running.engine.tally.applied == 1

    consumer.assign(P0)
    wait_until(lambda: len(processor.calls_of("running")) == 2)
    processor.release("running")
    wait_until(lambda: consumer.committed_offset(P0) == 2)
    assert processor.started().count("waiting") == 1


def test_an_outcome_of_an_old_generation_does_not_count_for_the_new_one(engines: Engines) -> None:
    """Revoked mid-run, then assigned back: the old run's outcome does not finish the new one's."""
    consumer = MemoryConsumer()
    send(consumer, P0, "e0", learner=1)
    consumer.assign(P0)
    processor = ScriptedProcessor()
    processor.hold("e0")
    clock = FakeClock()
    running = engines.start(consumer, processor, clock=clock, revoke_timeout_seconds=5.0)
    wait_until(lambda: processor.started() == ["e0"])

    consumer.revoke(P0)
    wait_until(lambda: consumer.rebalances == 2, tick=lambda: clock.advance(1.0))
    assert consumer.commits_of(P0)[-1] == 0  # the drain gave up on e0, still running
    consumer.assign(P0)
    wait_until(lambda: consumer.deliveries[(P0, 0)] == 2)  # consumed again by the new generation

    processor.release("e0", keep_holding=True)  # the old run ends, applied
    wait_until(lambda: len(processor.calls_of("e0")) == 2)  # the new generation's run started
    turns(consumer)
    assert highest_commit(consumer, P0) == 0
    assert running.engine.tally.applied == 0

    processor.release("e0")
    wait_until(lambda: consumer.committed_offset(P0) == 1)
    assert running.engine.tally.applied == 1


def test_a_revoke_during_a_registry_block_commits_below_the_record_and_it_comes_back(
    engines: Engines,
) -> None:
    """Revoked while waiting for the registry: committed up to the record, consumed again when back.

    Before the fix the partition came back paused for good: librdkafka keeps a partition's
    pause through a revoke and a re-assign, and the engine had forgotten that it paused it.
    """
    consumer = MemoryConsumer()
    send(consumer, P0, "e0", learner=1)
    send(consumer, P0, "needs-registry", learner=2)
    send(consumer, P0, "e2", learner=1)
    consumer.assign(P0)
    decoder = ScriptedDecoder()
    decoder.unreachable.add("needs-registry")
    running = engines.start(consumer, decoder=decoder)
    wait_until(lambda: running.engine.tally.applied == 1 and P0 in consumer.paused)

    consumer.revoke(P0)
    wait_until(lambda: consumer.rebalances == 2)
    assert consumer.commits_of(P0)[-1] == 1

    decoder.unreachable.clear()
    consumer.assign(P0)
    wait_until(lambda: running.engine.tally.applied == 3)
    wait_until(lambda: consumer.committed_offset(P0) == 3)


# ---------------------------------------------------------------------------- stopping


def test_a_stop_request_drains_running_work_and_commits_what_is_done(engines: Engines) -> None:
    """SIGTERM: running work is cancelled and drained, waiting work never starts, a final commit."""
    consumer = MemoryConsumer()
    send(consumer, P0, "running", learner=1)
    send(consumer, P0, "waiting", learner=1)
    send(consumer, P0, "other", learner=2)
    consumer.assign(P0)
    processor = ScriptedProcessor()
    processor.hold("running")
    running = engines.start(consumer, processor, drain_timeout_seconds=25.0)
    wait_until(lambda: running.engine.tally.applied == 1 and "running" in processor.started())

    running.engine.request_stop("SIGTERM")
    wait_until(lambda: processor.cancelled("running"))
    processor.release("running")
    wait_until(running.stopped)

    assert running.error is None
    assert "waiting" not in processor.started()
    assert consumer.committed_offset(P0) == 1
    assert consumer.closed


def test_a_stop_waits_for_running_work_no_longer_than_its_bound(engines: Engines) -> None:
    """Work that does not finish holds the stop for drain_timeout_seconds, then is left."""
    consumer = MemoryConsumer()
    send(consumer, P0, "done", learner=1)
    send(consumer, P0, "stuck", learner=2)
    consumer.assign(P0)
    processor = ScriptedProcessor()
    processor.hold("stuck")
    sink = FakeSink()
    clock = FakeClock()
    running = engines.start(consumer, processor, sink=sink, clock=clock, drain_timeout_seconds=25.0)
    wait_until(lambda: running.engine.tally.applied == 1 and "stuck" in processor.started())

    running.engine.request_stop("SIGTERM")
    wait_until(lambda: processor.cancelled("stuck"))
    clock.advance(24.0)
    drain_steps(sink)
    assert not running.stopped()

    wait_until(running.stopped, tick=lambda: clock.advance(1.0))
    assert running.error is None
    assert consumer.committed_offset(P0) == 1
    assert consumer.closed


def test_a_worker_crash_stops_the_loop_with_the_offset_committed_below_it(
    engines: Engines,
) -> None:
    """A processor that raises is a bug: the loop commits what is done and re-raises it."""
    consumer = MemoryConsumer()
    send(consumer, P0, "e0", learner=1)
    send(consumer, P0, "e1", learner=1)
    send(consumer, P0, "bug", learner=1)
    send(consumer, P0, "next", learner=1)
    send(consumer, P0, "other", learner=2)
    consumer.assign(P0)
    processor = ScriptedProcessor()
    bug = RuntimeError("unclassified")
    processor.outcomes["bug"] = bug
    running = engines.start(consumer, processor)

    wait_until(running.stopped)

    assert running.error is not None
    assert bug in (running.error, running.error.__cause__)
    assert consumer.committed_offset(P0) == 2
    assert "next" not in processor.started()
    assert consumer.closed


def test_it_stops_by_itself_once_idle_at_the_end_of_every_partition(engines: Engines) -> None:
    """stop_when_idle: nothing running and every partition at its end for that long (redrive)."""
    consumer = MemoryConsumer()
    send(consumer, P0, "e0", learner=1)
    send(consumer, P0, "held", learner=2)
    consumer.assign(P0, P1)
    processor = ScriptedProcessor()
    processor.hold("held")
    clock = FakeClock()
    running = engines.start(consumer, processor, clock=clock, stop_when_idle=5.0)
    wait_until(lambda: running.engine.tally.applied == 1 and "held" in processor.started())

    for _ in range(5):
        clock.advance(10.0)
        turns(consumer, 1)
    assert not running.stopped()  # an event still runs

    processor.release("held")
    wait_until(running.stopped, tick=lambda: clock.advance(1.0))
    assert running.error is None
    assert consumer.committed_offset(P0) == 2


# ---------------------------------------------------------------------------- consumer errors


def test_a_missing_topic_is_logged_once_and_consumption_goes_on(engines: Engines) -> None:
    """UNKNOWN_TOPIC_OR_PART is not fatal: one log line per topic, the loop keeps running."""
    consumer = MemoryConsumer()
    for _ in range(2):
        consumer.inject_error(KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART), topic="absent")
    send(consumer, P0, "e0", learner=1)
    consumer.assign(P0)
    with capture_logs() as logs:
        running = engines.start(consumer)
        wait_until(lambda: running.engine.tally.applied == 1)
        turns(consumer)

    missing = [line for line in logs if line["event"] == "topic_missing"]
    assert [line["topic"] for line in missing] == ["absent"]
    assert not running.stopped()


def test_a_fatal_consumer_error_stops_the_engine_after_a_final_commit(engines: Engines) -> None:
    """A fatal librdkafka error is raised from run, after what is done is committed."""
    consumer = MemoryConsumer()
    send(consumer, P0, "e0", learner=1)
    consumer.assign(P0)
    running = engines.start(consumer)
    wait_until(lambda: running.engine.tally.applied == 1)

    consumer.inject_error(KafkaError(KafkaError._FATAL, "fenced", fatal=True))
    wait_until(running.stopped)

    assert isinstance(running.error, KafkaException)
    assert running.error.args[0].fatal()
    assert consumer.committed_offset(P0) == 1
    assert consumer.closed
