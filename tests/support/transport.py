"""An in-process HTTP transport for the worker's clients: answers come from a function.

Mounted with ``HttpClient(transport=...)`` (``build_services(..., transport=...)``), it lets
a test answer any bytes for any request without sockets, so a property test can run
hundreds of examples per second.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from typing import Any

import requests
import requests.adapters
from requests.structures import CaseInsensitiveDict

Answer = tuple[int, bytes]
Respond = Callable[[requests.PreparedRequest], Answer]


class FunctionTransport(requests.adapters.BaseAdapter):
    """A requests adapter whose every answer is ``respond(request) -> (status, body)``."""

    def __init__(self, respond: Respond) -> None:
        super().__init__()
        self._respond = respond

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,  # noqa: ARG002 - the body is in memory either way
        timeout: Any = None,  # noqa: ARG002
        verify: Any = True,  # noqa: ARG002
        cert: Any = None,  # noqa: ARG002
        proxies: Mapping[str, str] | None = None,  # noqa: ARG002
    ) -> requests.Response:
        """Answer ``request`` from the function."""
        status, body = self._respond(request)
        response = requests.Response()
        response.status_code = status
        response.headers = CaseInsensitiveDict(
            {"Content-Type": "application/json", "Content-Length": str(len(body))}
        )
        response.raw = io.BytesIO(body)
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        """Nothing to close."""
