"""A bug is never swallowed: the worker stops, and the event that hit it is not committed."""

from __future__ import annotations

import threading
import uuid

import pytest
from structlog.testing import capture_logs

from consumer.config import EngineSettings, KafkaSettings, consumer_config
from consumer.engine import Engine, HeldFailures
from consumer.errors import WorkerCrashedError
from consumer.events import CertificateEvent, Event, EventType
from consumer.observability import Metrics
from consumer.outcomes import Applied, Outcome
from consumer.wire import Decoder
from tests.integration.conftest import Stack
from tests.support.lms import LmsProducer, certificate_data
from tests.support.worker import committed_offsets

pytestmark = pytest.mark.integration

BUGGY_USER = 4


def test_an_unclassified_exception_stops_the_worker_below_the_event(
    stack: Stack, lms: LmsProducer, decoder: Decoder
) -> None:
    """The engine re-raises a processor's bug and commits only the offsets below that event."""
    topic = stack.create_topic(f"it-crash-{uuid.uuid4().hex[:8]}", partitions=1)
    for user_id in range(10):
        lms.send(
            EventType.CERTIFICATE_CHANGED,
            certificate_data(user_id=user_id, course_key="course-v1:Crash+C1+2026"),
            topic,
        )
    lms.flush()
    release = threading.Event()

    def buggy(event: Event, _cancelled: threading.Event) -> Outcome:
        assert isinstance(event, CertificateEvent)
        if event.learner.user_id == BUGGY_USER:
            release.wait(5)  # let the events after it finish first
            raise KeyError("a bug")
        if event.learner.user_id > BUGGY_USER:
            release.set() if event.learner.user_id == 9 else None
        return Applied(commands=1)

    group = f"crash-{uuid.uuid4().hex[:6]}"
    engine = Engine(
        consumer_config=consumer_config(
            KafkaSettings(bootstrap_servers=stack.bootstrap_servers), group_id=group
        ),
        topics=[topic],
        decoder=decoder,
        processor=buggy,
        sink=HeldFailures(),
        settings=EngineSettings(max_in_flight=16, commit_interval_seconds=0.1),
        metrics=Metrics(),
    )

    with capture_logs() as logs, pytest.raises(WorkerCrashedError) as crashed:
        engine.run()

    assert isinstance(crashed.value.__cause__, KeyError)
    drained = [line for line in logs if line["event"] == "engine_drained"]
    assert drained == [
        {"event": "engine_drained", "log_level": "info", "complete": True, "abandoned": 0}
    ]
    assert committed_offsets(stack.bootstrap_servers, group, topic, 1) == {0: BUGGY_USER}
