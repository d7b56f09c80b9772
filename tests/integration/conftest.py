"""Fixtures for tests on the real Kafka broker and schema registry (``dev/stack``).

``make test`` runs pytest under ``dev/with-stack``, which starts the stack and exports
``EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS`` and ``EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL``. Run by
hand: ``dev/stack start`` then ``dev/with-stack .venv/bin/pytest tests/integration``.
A missing stack fails these tests loudly; it never skips them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from consumer.wire import Decoder, RegistryWriterSchemas, load_reader_schemas, registry_client
from tests.fakes.openedx import FakeOpenEdx
from tests.support.lms import LmsProducer
from tests.support.worker import kill_leftovers


class Stack:
    """Where the real broker and registry listen, with one admin client kept alive."""

    def __init__(self, bootstrap_servers: str, registry_url: str) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.registry_url = registry_url
        self.admin = AdminClient({"bootstrap.servers": bootstrap_servers})

    def create_topic(self, name: str, partitions: int = 3) -> str:
        """Create ``name`` and wait until the broker confirms it."""
        futures = self.admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1)]
        )
        futures[name].result(timeout=30)
        return name


@pytest.fixture(autouse=True)
def _no_worker_outlives_its_test() -> Iterator[None]:
    """A failed test's workers are killed at its end, not left to disturb the next tests."""
    yield
    kill_leftovers()


@pytest.fixture(scope="session")
def stack() -> Stack:
    bootstrap = os.environ.get("EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    registry = os.environ.get(
        "EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL", "http://127.0.0.1:8081/apis/ccompat/v7"
    )
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        admin.list_topics(timeout=15)
    except Exception as error:  # noqa: BLE001 - any failure means the same thing here
        pytest.fail(f"no Kafka broker at {bootstrap} ({error}); run the tests with `make test`")
    return Stack(bootstrap_servers=bootstrap, registry_url=registry)


@pytest.fixture
def topic(stack: Stack, request: pytest.FixtureRequest) -> str:
    """A fresh 3-partition topic for this test."""
    name = request.node.name.replace("[", "-").replace("]", "")[:60]
    return stack.create_topic(f"it-{name}-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def group() -> str:
    """A fresh consumer group for this test's worker."""
    return f"it-group-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def fake() -> Iterator[FakeOpenEdx]:
    """A fake Open edX; each service on its own port so one can go down alone."""
    with FakeOpenEdx.start(per_service_ports=True) as fake:
        yield fake


@pytest.fixture(scope="session")
def lms(stack: Stack) -> Iterator[LmsProducer]:
    """A producer that publishes exactly as the LMS does."""
    producer = LmsProducer(stack.bootstrap_servers, stack.registry_url)
    yield producer
    producer.close()


@pytest.fixture
def decoder(stack: Stack) -> Iterator[Decoder]:
    """The worker's decoder, reading writer schemas from the real registry."""
    client = registry_client(stack.registry_url)
    yield Decoder(RegistryWriterSchemas(client), load_reader_schemas())
    client.close()
