"""Every service client, built once from ``ServiceSettings`` and closed together.

One ``HttpClient`` (one pooled session) per service; the clients of Credentials, the LMS,
Studio and Discovery share one ``OAuthTokens``. Studio and Discovery exist only when their
URLs are configured.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import requests.adapters

from consumer.services.calls import NO_GUARD, CallGuard, TokenSource
from consumer.services.credentials import CredentialsClient
from consumer.services.discovery import DiscoveryClient
from consumer.services.http import HttpClient
from consumer.services.lms import LmsClient
from consumer.services.oauth import OAuthTokens
from consumer.services.program_cache import CacheState, ProgramCache
from consumer.services.settings import ServiceSettings
from consumer.services.studio import StudioClient


@dataclass(frozen=True, slots=True)
class Services:
    """The clients the effects and ``check`` use."""

    settings: ServiceSettings
    tokens: OAuthTokens
    credentials: CredentialsClient
    lms: LmsClient
    studio: StudioClient | None
    discovery: DiscoveryClient | None
    programs: ProgramCache | None
    _http: tuple[HttpClient, ...]

    def start(self) -> None:
        """Start background work (the program cache refresher). Does not block."""
        if self.programs is not None:
            self.programs.start()

    def close(self) -> None:
        """Stop the refresher and close every connection pool. Idempotent."""
        if self.programs is not None:
            self.programs.stop()
        for http in self._http:
            http.close()


def build_services(
    settings: ServiceSettings,
    *,
    guard: CallGuard = NO_GUARD,
    clock: Callable[[], float] = time.monotonic,
    on_program_cache_refresh: Callable[[CacheState], None] | None = None,
    transport: requests.adapters.BaseAdapter | None = None,
) -> Services:
    """Build every client for ``settings``; sends nothing until used (or ``start``).

    ``transport`` replaces every client's HTTP adapter (tests: in-process services).
    """

    def http(service: str, root: str, tokens: TokenSource | None) -> HttpClient:
        return HttpClient(
            service=service,
            root=root,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            total_timeout=settings.total_timeout,
            pool_size=settings.pool_size,
            tokens=tokens,
            guard=guard,
            clock=clock,
            transport=transport,
        )

    oauth_http = http("oauth", settings.oauth_url, None)
    tokens = OAuthTokens(
        oauth_http,
        client_id=settings.oauth_client_id,
        client_secret=settings.oauth_client_secret,
        refresh_margin=settings.token_refresh_margin,
        clock=clock,
    )
    pools = [oauth_http]

    def authed(service: str, root: str) -> HttpClient:
        client = http(service, root, tokens)
        pools.append(client)
        return client

    credentials = CredentialsClient(authed("credentials", settings.credentials_url))
    lms = LmsClient(authed("lms", settings.lms_url))
    studio = StudioClient(authed("studio", settings.studio_url)) if settings.studio_url else None
    discovery = (
        DiscoveryClient(authed("discovery", settings.discovery_url))
        if settings.discovery_url
        else None
    )
    programs = (
        ProgramCache(
            discovery,
            ttl=settings.program_cache_ttl,
            clock=clock,
            on_refresh=on_program_cache_refresh,
        )
        if discovery is not None
        else None
    )
    return Services(
        settings=settings,
        tokens=tokens,
        credentials=credentials,
        lms=lms,
        studio=studio,
        discovery=discovery,
        programs=programs,
        _http=tuple(pools),
    )
