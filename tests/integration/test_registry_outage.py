"""A schema registry that cannot be reached is not poison: the partition waits, nothing is lost."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest

from consumer.config import EngineSettings, KafkaSettings, consumer_config
from consumer.engine import Engine, HeldFailures
from consumer.events import CertificateEvent, Event, EventType
from consumer.observability import Metrics
from consumer.outcomes import Applied, Outcome
from consumer.wire import Decoder, RegistryWriterSchemas, load_reader_schemas, registry_client
from tests.integration.conftest import Stack
from tests.support.lms import LmsProducer, certificate_data
from tests.support.proxy import TcpProxy
from tests.support.worker import wait_for

pytestmark = pytest.mark.integration

EVENTS = 30


@pytest.fixture
def proxy(stack: Stack) -> Iterator[TcpProxy]:
    url = urlparse(stack.registry_url)
    proxy = TcpProxy((url.hostname or "127.0.0.1", url.port or 80))
    yield proxy
    proxy.stop()


def test_events_wait_for_the_registry_and_none_is_dead_lettered(
    stack: Stack, lms: LmsProducer, topic: str, proxy: TcpProxy
) -> None:
    """Records whose schema cannot be fetched wait (seek back, pause) and decode once it is back."""
    sent = [
        lms.send(
            EventType.CERTIFICATE_CHANGED,
            certificate_data(user_id=index % 5, course_key=f"course-v1:Reg+C{index % 3}+2026"),
            topic,
        )
        for index in range(EVENTS)
    ]
    lms.flush()
    applied: list[str] = []
    lock = threading.Lock()

    def record(event: Event, _cancelled: threading.Event) -> Outcome:
        assert isinstance(event, CertificateEvent)
        with lock:
            applied.append(event.meta.id)
        return Applied(commands=1)

    path = urlparse(stack.registry_url).path
    client = registry_client(f"http://127.0.0.1:{proxy.port}{path}")  # nothing listens yet
    metrics = Metrics()
    kafka = KafkaSettings(bootstrap_servers=stack.bootstrap_servers, topics=(topic,))
    engine = Engine(
        consumer_config=consumer_config(kafka, group_id=f"reg-{uuid.uuid4().hex[:6]}"),
        topics=[topic],
        decoder=Decoder(RegistryWriterSchemas(client), load_reader_schemas()),
        processor=record,
        sink=HeldFailures(),  # a failure would be held and counted: there must be none
        settings=EngineSettings(max_in_flight=8, commit_interval_seconds=0.2),
        metrics=metrics,
        stop_when_idle=1.5,
    )
    runner = threading.Thread(target=engine.run, name="engine")
    runner.start()
    try:
        wait_for(
            lambda: (
                (
                    metrics.registry.get_sample_value(
                        "credentials_consumer_schema_registry_unavailable_total"
                    )
                    or 0
                )
                >= 2
            ),
            timeout=60,
            what="the engine to notice the registry is unreachable",
        )
        assert applied == []
        proxy.start()
        runner.join(timeout=120)
    finally:
        proxy.start()
        engine.request_stop()
        runner.join(timeout=60)
        client.close()
    assert sorted(applied) == sorted(sent)
    assert engine.tally.held == 0
    assert engine.tally.applied == EVENTS
