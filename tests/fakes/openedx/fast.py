"""The fake served from one asyncio loop: the benchmark's way to keep it off the critical path.

The threaded server (``server``) parses each request with ``http.server`` (headers through
the e-mail parser) on a thread per connection. At the benchmark's 64 connections and a few
thousand requests a second, that parsing and the thread switches made the fake use more CPU
than the worker it serves. Here the same ``FakeOpenEdx`` — routes, app, state, answers and
the ``/_fake/call`` control endpoint — is served from one loop: a request is parsed only as
far as the fake needs (request line, headers, a ``Content-Length`` body), and the latency
knob is a timer, not a sleeping thread.

Only the latency knob applies here: error, outage and chaos knobs, and request records,
belong to the threaded server (tests use it; the benchmark sets none). Instead of records,
``served`` (a control method of this server) counts requests by service and endpoint.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections import Counter
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

from tests.fakes.openedx.apps import Answer, Call, route
from tests.fakes.openedx.model import SERVICES
from tests.fakes.openedx.server import FakeOpenEdx, _parse_body

_URL_SUFFIX = {"oauth": "/oauth2", "discovery": "/api/v1"}
_NOT_FOUND = Answer(404, "<h1>Not Found</h1><p>The requested resource was not found.</p>")
_MAX_HEAD = 64 * 1024


def _encode(answer: Answer) -> bytes:
    """The whole HTTP/1.1 response, as the threaded server writes it."""
    if isinstance(answer.body, str) and not answer.force_json:
        data = answer.body.encode()
        content_type = "text/html; charset=utf-8"
    else:
        data = json.dumps(answer.body).encode()
        content_type = "application/json"
    try:
        phrase = HTTPStatus(answer.status).phrase
    except ValueError:
        phrase = ""
    lines = [
        f"HTTP/1.1 {answer.status} {phrase}",
        "Server: FakeOpenEdx/1.0 (fast)",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(data)}",
        *(f"{name}: {value}" for name, value in answer.headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data


class FastServer:
    """Serve ``fake`` on ``host:port`` from an asyncio loop on a daemon thread."""

    def __init__(self, fake: FakeOpenEdx, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.fake = fake
        self.host = host
        self.port = port
        self._served: Counter[str] = Counter()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` (every service and the control endpoint)."""
        return f"http://{self.host}:{self.port}"

    @property
    def urls(self) -> dict[str, str]:
        """Each service's root as the worker's settings want it (as ``FakeOpenEdx.urls``)."""
        return {service: self.url + _URL_SUFFIX.get(service, "") for service in SERVICES}

    def start(self) -> None:
        """Listen; returns once the port is bound."""
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="fake-openedx-fast", daemon=True
        )
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fast fake did not start listening")

    def stop(self) -> None:
        """Stop serving (open connections are dropped)."""
        loop, stopped = self._loop, self._stopped
        if loop is not None and stopped is not None:
            loop.call_soon_threadsafe(stopped.set)
        if self._thread is not None:
            self._thread.join(5)

    def served(self) -> dict[str, int]:
        """Requests served so far, by ``service/endpoint``."""
        return dict(self._served)

    def _run(self, ready: threading.Event) -> None:
        asyncio.run(self._main(ready))

    async def _main(self, ready: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        server = await asyncio.start_server(
            self._connection, self.host, self.port, backlog=512, limit=_MAX_HEAD
        )
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        async with server:
            await self._stopped.wait()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    break
                request_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
                method, target, _version = request_line.split(" ", 2)
                headers: dict[str, str] = {}
                for line in header_lines:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length") or 0)
                raw = await reader.readexactly(length) if length else b""
                answer = await self._answer(method, target, headers, raw)
                writer.write(_encode(answer))
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _answer(
        self, method: str, target: str, headers: dict[str, str], raw: bytes
    ) -> Answer:
        raw_path, _, query_text = target.partition("?")
        if raw_path == "/_fake/call" and method == "POST":
            return self._control(raw)
        found = route(method, raw_path)
        if found is None:
            return _NOT_FOUND
        target_route, endpoint, params = found
        if endpoint is None:
            return Answer(405, {"detail": f'Method "{method}" not allowed.'})
        service = target_route.service
        delay = self.fake.knobs.latency(service, endpoint)
        if delay > 0:
            await asyncio.sleep(delay)
        call = Call(
            method=method,
            path=raw_path,
            query=parse_qs(query_text, keep_blank_values=True),
            body=_parse_body(raw, headers.get("content-type", "")),
            host=headers.get("host", f"{self.host}:{self.port}"),
            authorization=headers.get("authorization"),
        )
        self._served[f"{service}/{endpoint}"] += 1
        return self.fake._dispatch(service, endpoint, call, params)

    def _control(self, raw: bytes) -> Answer:
        """``/_fake/call``, plus ``served`` and ``clear_served`` of this server."""
        try:
            name: Any = json.loads(raw or b"{}").get("method")
        except (ValueError, AttributeError):
            name = None
        if name == "served":
            return Answer(200, {"result": self.served()})
        if name == "clear_served":
            self._served.clear()
            return Answer(200, {"result": None})
        return self.fake.control(raw)
