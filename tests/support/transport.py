"""A fake transport for the worker's HTTP clients: answers come from a function, no sockets.

``HttpClient(transport=MockTransport(handler))`` (or ``build_services(..., transport=...)``)
sends every request to ``handler(request)``, which returns an ``Answer`` — or a
``(status, body bytes)`` pair — or raises the exception ``requests`` would (a
``ConnectTimeout``, a ``ConnectionError``...). The requests sent are kept in ``requests``.
Like httpx's ``MockTransport``: a client test needs no server, and a property test can run
hundreds of examples per second.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
import requests.adapters
from requests.structures import CaseInsensitiveDict


@dataclass(frozen=True)
class Answer:
    """One answer: ``body`` is sent as is when bytes, else as JSON."""

    status: int = 200
    body: object = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    def raw(self) -> bytes:
        """The body's bytes."""
        return self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()


Handler = Callable[[requests.PreparedRequest], Answer | tuple[int, bytes]]


class MockTransport(requests.adapters.BaseAdapter):
    """A ``requests`` adapter whose every answer is ``handler(request)``."""

    def __init__(self, handler: Handler) -> None:
        super().__init__()
        self._handler = handler
        self.requests: list[requests.PreparedRequest] = []
        self.settings: list[dict[str, Any]] = []  # verify, cert and proxies of each request

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,  # noqa: ARG002 - the body is in memory either way
        timeout: Any = None,  # noqa: ARG002
        verify: Any = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Answer ``request`` from the handler (or raise what it raises)."""
        self.requests.append(request)
        self.settings.append({"verify": verify, "cert": cert, "proxies": proxies})
        answer = self._handler(request)
        if isinstance(answer, tuple):
            answer = Answer(*answer)
        body = answer.raw()
        response = requests.Response()
        response.status_code = answer.status
        response.headers = CaseInsensitiveDict(
            {"Content-Type": "application/json", "Content-Length": str(len(body))}
        )
        response.headers.update(answer.headers)
        response.raw = io.BytesIO(body)
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        """Nothing to close."""
