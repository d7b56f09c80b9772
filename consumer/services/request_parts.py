"""The parts of a request decided outside the client, each a pure function or read once.

URLs as ``requests`` prepares them (cached: the same few come back again and again), a value
quoted as one path segment, the ``X-Request-ID`` value made safe for a header, a service's
host for messages (never a URL's user info), the headers every request carries, and what the
environment says about proxies and CA bundles, read once per client (``http``).
"""

from __future__ import annotations

import functools
import hashlib
import os
import string
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote, urlsplit

import requests
import requests.utils

from consumer import __version__

USER_AGENT: Final = f"credentials-consumer/{__version__}"
REQUEST_ID_LIMIT: Final = 128
"""Longest ``X-Request-ID`` sent; a longer (made-safe) id is cut and keeps a hash suffix."""
PREPARED_URLS: Final = 1024
"""URLs kept prepared (``prepared_url``)."""


@functools.lru_cache(maxsize=PREPARED_URLS)
def _prepared_url(url: str, params: tuple[tuple[str, object], ...]) -> str:
    prepared = requests.PreparedRequest()
    prepared.prepare_url(url, dict(params))  # a dict: requests' Mapping check is quick on one
    return prepared.url or url


def prepared_url(url: str, params: Mapping[str, Any] | None) -> str:
    """``url`` with ``params`` as requests prepares it (quoted, IDNA host, query encoded).

    Cached (``PREPARED_URLS``, least recently used first): the same few URLs come back again
    and again (a course run's modes, the credentials endpoint), and preparing one costs as
    much as reading an answer. Raises what requests raises for an invalid URL (not cached).
    """
    items = tuple(params.items()) if params else ()
    try:
        return _prepared_url(url, items)
    except TypeError:  # a list among the values: not hashable, prepared without the cache
        prepared = requests.PreparedRequest()
        prepared.prepare_url(url, params)
        return prepared.url or url


def default_headers() -> dict[str, str]:
    """The headers of every request: requests' defaults, this worker's agent, JSON accepted."""
    headers = {str(name): str(value) for name, value in requests.utils.default_headers().items()}
    headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
    return headers


def environment_proxies(root: str) -> dict[str, str]:
    """The proxies the environment names for requests to ``root``; none when ``NO_PROXY`` says so.

    Read once per client: a service's root is fixed for the life of the worker, and so is
    its environment.
    """
    return dict(requests.utils.get_environ_proxies(root))


def environment_ca_bundle() -> str | bool:
    """The CA bundle the environment names (as ``requests`` reads it), else True: the system's."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True


def path_segment(value: str) -> str:
    """Quote a value (course key, username) for use as one URL path segment.

    ``.`` and ``..`` are percent-encoded too: as literal segments they would be resolved
    (by urllib3, a proxy or the server) and change the path.
    """
    if value in (".", ".."):
        return value.replace(".", "%2E")
    return quote(value, safe=":+@")


_HEADER_SAFE: Final = "".join(sorted(set(string.punctuation) - {"%"}))


def request_id_header(request_id: str) -> str:
    """``request_id`` as a valid, bounded header value: a correlation id, never an error.

    Anything outside visible ASCII (an emoji, CR/LF, a space) is percent-encoded as UTF-8;
    an id longer than ``REQUEST_ID_LIMIT`` is cut and ends in a short hash of the whole id.
    """
    value = quote(request_id, safe=_HEADER_SAFE, errors="surrogatepass")
    if len(value) <= REQUEST_ID_LIMIT:
        return value
    digest = hashlib.sha256(request_id.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{value[: REQUEST_ID_LIMIT - 13]}~{digest}"


def display_host(root: str) -> str:
    """``hostname[:port]`` of a URL for messages: never the user info a URL may carry."""
    try:
        netloc = urlsplit(root).netloc
    except ValueError:  # an unparsable URL still gets a message, without its user info
        netloc = root.partition("://")[2].partition("/")[0]
    return netloc.rpartition("@")[2]
