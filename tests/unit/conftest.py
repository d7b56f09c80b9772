"""Fixtures shared by the unit tests of the service clients: a fake Open edX and clients of it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from consumer.services.bundle import Services, build_services
from tests.fakes.openedx import FakeOpenEdx
from tests.fakes.openedx.settings import service_settings


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
