"""The rate limiter's queue in the engine: heads wait for a token, in arrival order.

A release or a stop finishes the waiting ones as abandoned, without starting them.
"""

from __future__ import annotations

from structlog.testing import capture_logs

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


def test_heads_start_one_per_token_in_arrival_order(engines: Engines) -> None:
    """Without a token nothing starts; each token starts the next head in arrival order."""
    consumer = MemoryConsumer()
    for index in range(3):
        send(consumer, P0, f"e{index}", learner=index)
    consumer.assign(P0)
    tokens = Tokens()
    running = engines.start(consumer, limiter=tokens)
    wait_until(lambda: consumer.delivered == 3)
    turns(consumer)
    assert running.processor.started() == []

    tokens.grant()
    wait_until(lambda: running.engine.tally.applied == 1)
    turns(consumer)
    assert running.processor.started() == ["e0"]

    tokens.grant(2)
    wait_until(lambda: consumer.committed_offset(P0) == 3)
    assert running.processor.started() == ["e0", "e1", "e2"]


def test_a_released_partition_s_waiting_heads_never_start(engines: Engines) -> None:
    """Revoke: its heads waiting for a token are abandoned; the other partition's wait on."""
    consumer = MemoryConsumer()
    send(consumer, P0, "gone", learner=1)
    send(consumer, P1, "kept", learner=2)
    consumer.assign(P0, P1)
    tokens = Tokens()
    running = engines.start(consumer, limiter=tokens)
    wait_until(lambda: consumer.delivered == 2)

    with capture_logs() as logs:
        consumer.revoke(P0)
        wait_until(lambda: consumer.rebalances == 2)
    tokens.grant(2)
    wait_until(lambda: running.engine.tally.applied == 1)
    turns(consumer)

    assert running.processor.started() == ["kept"]
    abandoned = [line for line in logs if line["event"] == "event_abandoned"]
    assert [(line["partition"], line["why"]) for line in abandoned] == [
        (0, "not started (rate limit)")
    ]
    assert consumer.commits_of(P0)[-1] == 0


def test_a_stop_abandons_waiting_heads_and_commits_below_them(engines: Engines) -> None:
    """SIGTERM: heads waiting for a token never start; the commit stays below them."""
    consumer = MemoryConsumer()
    send(consumer, P0, "e0", learner=1)
    send(consumer, P0, "e1", learner=2)
    consumer.assign(P0)
    tokens = Tokens()
    tokens.grant()
    processor = ScriptedProcessor()
    running = engines.start(consumer, processor, limiter=tokens)
    wait_until(lambda: running.engine.tally.applied == 1 and consumer.delivered == 2)

    running.stop()

    assert processor.started() == ["e0"]
    assert consumer.committed_offset(P0) == 1
