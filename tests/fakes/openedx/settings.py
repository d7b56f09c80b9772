"""A running fake's services as the worker is configured for them, for tests and the benchmark.

``service_settings`` gives the values; ``service_env`` the environment variables a worker
process reads.
"""

from __future__ import annotations

from collections.abc import Mapping
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


def service_env(
    urls: Mapping[str, str],
    *,
    client_id: str = DEFAULT_CLIENT_ID,
    client_secret: str = DEFAULT_CLIENT_SECRET,
) -> dict[str, str]:
    """The worker's service variables for a fake at ``urls`` (``FakeOpenEdx.urls``)."""
    return {
        "BACKEND_SERVICE_EDX_OAUTH2_PROVIDER_URL": urls["oauth"],
        "BACKEND_SERVICE_EDX_OAUTH2_KEY": client_id,
        "BACKEND_SERVICE_EDX_OAUTH2_SECRET": client_secret,
        "CREDENTIALS_INTERNAL_SERVICE_URL": urls["credentials"],
        "LMS_ROOT_URL": urls["lms"],
        "CMS_ROOT_URL": urls["studio"],
        "COURSE_CATALOG_API_URL": urls["discovery"],
    }
