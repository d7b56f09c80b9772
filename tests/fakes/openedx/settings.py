"""``ServiceSettings`` pointing at a running fake, for the worker's tests and the benchmark."""

from __future__ import annotations

from typing import Any

from consumer.services.settings import ServiceSettings
from tests.fakes.openedx.server import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, FakeOpenEdx


def service_settings(fake: FakeOpenEdx, **overrides: Any) -> ServiceSettings:
    """Settings for every service of ``fake`` with its default OAuth client; override any field."""
    urls = fake.urls
    values: dict[str, Any] = {
        "oauth_url": urls["oauth"],
        "oauth_client_id": DEFAULT_CLIENT_ID,
        "oauth_client_secret": DEFAULT_CLIENT_SECRET,
        "credentials_url": urls["credentials"],
        "lms_url": urls["lms"],
        "studio_url": urls["studio"],
        "discovery_url": urls["discovery"],
        "connect_timeout": 2.0,
        "read_timeout": 5.0,
        "pool_size": 8,
    }
    values.update(overrides)
    return ServiceSettings(**values)
