"""Drive a fake running in another process through its ``/_fake/call`` endpoint."""

from __future__ import annotations

import json
import urllib.request
from typing import Any


class RemoteFake:
    """Call ``FakeOpenEdx`` methods of a fake started with ``python -m tests.fakes.openedx``."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def call(self, method: str, **kwargs: Any) -> Any:
        """Call ``method`` with JSON ``kwargs`` (datetimes as ISO text); return its result."""
        request = urllib.request.Request(
            f"{self.url}/_fake/call",
            data=json.dumps({"method": method, "kwargs": kwargs}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            return json.loads(response.read())["result"]
