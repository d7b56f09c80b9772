"""Fixtures shared by unit tests: a fake Open edX and its clients; engines on the memory broker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from consumer.services.bundle import Services, build_services
from tests.fakes.openedx import FakeOpenEdx
from tests.fakes.openedx.settings import service_settings
from tests.support.engine_fakes import Engines


@pytest.fixture
def fake() -> Iterator[FakeOpenEdx]:
    """A fresh fake Open edX on an ephemeral loopback port."""
    fake = FakeOpenEdx.start()
    yield fake
    fake.stop()


@pytest.fixture
def services(fake: FakeOpenEdx) -> Iterator[Services]:
    """Every client, configured for ``fake``."""
    services = build_services(service_settings(fake))
    yield services
    services.close()


@pytest.fixture
def engines() -> Iterator[Engines]:
    """Engines on the in-memory broker; each one still running is stopped after the test."""
    engines = Engines()
    yield engines
    engines.close()
