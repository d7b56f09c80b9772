"""What the service clients need to know, as one frozen value.

``consumer.config`` fills it from the environment (the variable for each field is named
below) and validates every value there, reporting the variable; the clients never read the
environment themselves. The OAuth2 secret is hidden from ``repr``, and ``config.describe``
masks it and the user info a service URL may carry (``https://user:pass@host``), so
printing the settings never leaks either.

Example::

    ServiceSettings(
        oauth_url="https://lms.example.com/oauth2",
        oauth_client_id="credentials-consumer",
        oauth_client_secret="...",
        credentials_url="https://credentials.example.com",
        lms_url="https://lms.example.com",
        discovery_url="https://discovery.example.com/api/v1",
    )
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceSettings:
    """Roots, credentials, timeouts and sizes of the five Open edX services.

    Every URL is a root without a trailing slash; the clients append the API paths.
    """

    oauth_url: str
    """LMS OAuth2 root; the token is at ``{oauth_url}/access_token``.
    (``BACKEND_SERVICE_EDX_OAUTH2_PROVIDER_URL``)"""
    oauth_client_id: str
    """Client-credentials id. (``BACKEND_SERVICE_EDX_OAUTH2_KEY``)"""
    oauth_client_secret: str = field(repr=False)
    """Client-credentials secret, never printed. (``BACKEND_SERVICE_EDX_OAUTH2_SECRET``)"""
    credentials_url: str
    """Credentials root; the API is at ``/api/v2/``. (``CREDENTIALS_INTERNAL_SERVICE_URL``)"""
    lms_url: str
    """LMS root (certificates and course-modes APIs). (``LMS_ROOT_URL``)"""
    studio_url: str | None = None
    """Studio root; unset means the display behaviour is assumed ``end``. (``CMS_ROOT_URL``)"""
    discovery_url: str | None = None
    """Discovery API root *including* ``/api/v1``; unset means no program awards.
    (``COURSE_CATALOG_API_URL``)"""
    connect_timeout: float = 3.05
    """Seconds to open a TCP connection. (``CONSUMER_HTTP_CONNECT_TIMEOUT``)"""
    read_timeout: float = 20.0
    """Seconds to wait for a response between bytes. (``CONSUMER_HTTP_READ_TIMEOUT``)"""
    total_timeout: float = 25.0
    """Seconds one call may take in all, body included; a server dripping bytes cannot hold
    a request longer. Below the revoke and shutdown drains, so a running request ends
    within them. (``CONSUMER_HTTP_TOTAL_TIMEOUT``)"""
    pool_size: int = 64
    """Connections kept per service: the worker's concurrency. (``CONSUMER_MAX_IN_FLIGHT``)"""
    token_refresh_margin: float = 30.0
    """A token is replaced this many seconds before it expires."""
    program_cache_ttl: float = 300.0
    """Seconds between background refreshes of Discovery's programs.
    (``CONSUMER_PROGRAM_CACHE_TTL_SECONDS``)"""
