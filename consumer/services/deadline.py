"""A total deadline per HTTP call, body included: requests' timeouts bound each read only.

A server that sends one byte every few seconds never trips a read timeout, so without a
total bound one request could outlast the revoke and shutdown drains. Each request
``HttpClient`` sends runs under a ``Deadline``; one watchdog thread shuts down the socket of
a request that passes its deadline, which wakes the blocked read at once, and the client
reports ``total_timeout``.

The socket is found through the connection classes of the session's pools
(``DeadlineAdapter``): every time a connection sends a request it records the deadline of
the calling thread, and a deadline cuts only a connection it still owns. A connection that
went back to the pool and was taken by another request is therefore never cut for the old
one; an idle pooled connection that was cut is seen as dropped by urllib3 and replaced.

``bounded(seconds)`` nests: a call made inside another call (the token fetch inside a
service call) ends no later than the outer one.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator, Mapping

import requests.adapters
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import ConnectionPool, HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import ProxyManager

_claims = threading.Lock()
"""Guards which deadline owns which connection (held only for attribute swaps)."""

_local = threading.local()


class Deadline:
    """One request's end time (``time.monotonic``); ``expired`` once the watchdog fired."""

    def __init__(self, at: float) -> None:
        self.at = at
        self.expired = False
        self.done = False
        self._connection: _DeadlineConnection | None = None

    def remaining(self) -> float:
        """Seconds left (negative once passed)."""
        return self.at - time.monotonic()

    def _claim(self, connection: _DeadlineConnection) -> None:
        with _claims:
            connection.deadline = self
            self._connection = connection
            if self.expired:
                _cut(connection)

    def _expire(self) -> None:
        with _claims:
            if self.done:
                return
            self.expired = True
            connection = self._connection
            if connection is not None and connection.deadline is self:
                _cut(connection)

    def _finish(self) -> None:
        with _claims:
            self.done = True
            connection, self._connection = self._connection, None
            if connection is not None and connection.deadline is self:
                connection.deadline = None


def _cut(connection: _DeadlineConnection) -> None:
    """Shut the connection's socket down; a read blocked on it returns at once."""
    sock = connection.sock or connection.watched_sock
    if sock is not None:
        with contextlib.suppress(OSError):
            # The plain socket's shutdown, also for TLS: the SSL object stays intact for the
            # thread that is reading, which then sees an end of stream.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Watchdog:
    """One daemon thread that expires deadlines in time order."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, deadline: Deadline) -> None:
        """Expire ``deadline`` at its time unless it is finished first."""
        with self._condition:
            heapq.heappush(self._heap, (deadline.at, next(self._order), deadline))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="http-deadlines", daemon=True
                )
                self._thread.start()
            if self._heap[0][2] is deadline:
                self._condition.notify()

    def _next_due(self) -> Deadline:
        with self._condition:
            while True:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._condition.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait <= 0:
                    return heapq.heappop(self._heap)[2]
                self._condition.wait(wait)

    def _run(self) -> None:
        while True:
            self._next_due()._expire()


_WATCHDOG = _Watchdog()


@contextlib.contextmanager
def bounded(seconds: float) -> Iterator[float]:
    """The end time of a call of at most ``seconds``, never later than an enclosing call's."""
    outer: float | None = getattr(_local, "call_at", None)
    at = time.monotonic() + seconds
    if outer is not None:
        at = min(at, outer)
    _local.call_at = at
    try:
        yield at
    finally:
        _local.call_at = outer


@contextlib.contextmanager
def watched(deadline: Deadline) -> Iterator[Deadline]:
    """Run one request of this thread under ``deadline`` (the watchdog cuts it when due)."""
    _local.deadline = deadline
    _WATCHDOG.arm(deadline)
    try:
        yield deadline
    finally:
        deadline._finish()
        _local.deadline = None


class _DeadlineConnection(HTTPConnection):
    """What this module adds to urllib3's connections: the deadline that owns them.

    The HTTPS class below takes it first in its bases, so ``super()`` here reaches
    urllib3's HTTPS connection there and its plain one here.
    """

    deadline: Deadline | None = None
    watched_sock: socket.socket | None = None
    """The socket as of the last connect: http.client drops ``sock`` from a connection whose
    answer says ``Connection: close`` while the answer is still being read from it."""

    def _own(self) -> None:
        """Record the calling thread's deadline as this connection's owner."""
        if self.sock is not None:
            self.watched_sock = self.sock
        current: Deadline | None = getattr(_local, "deadline", None)
        if current is not None:
            current._claim(self)
        else:
            with _claims:
                self.deadline = None

    def _after_connect(self) -> None:
        """A deadline that passed while the connection was being opened cuts it now."""
        self.watched_sock = self.sock
        with _claims:
            if self.deadline is not None and self.deadline.expired:
                _cut(self)

    def connect(self) -> None:
        self._own()
        super().connect()
        self._after_connect()

    def putrequest(
        self, method: str, url: str, skip_host: bool = False, skip_accept_encoding: bool = False
    ) -> None:
        self._own()
        super().putrequest(method, url, skip_host, skip_accept_encoding)


class _HTTPSConnection(_DeadlineConnection, HTTPSConnection):
    """An HTTPS connection owned by a deadline."""


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _DeadlineConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOLS: dict[str, type[HTTPConnectionPool]] = {"http": _HTTPPool, "https": _HTTPSPool}


def _closed(pool: ConnectionPool) -> bool:
    """True once urllib3 closed ``pool`` (its queue of connections is gone)."""
    return isinstance(pool, HTTPConnectionPool) and pool.pool is None


class DeadlineAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter with pools whose connections the watchdog can cut.

    A SOCKS proxy keeps its own pool classes: behind one, the deadline is checked only
    between chunks of the body.

    The pool of an origin is looked up once (``get_connection_with_tls_context``): requests
    builds urllib3's pool key (some thirty fields) for every request, and a worker's client
    sends every request to one origin. Through a proxy, the lookup is requests' own.
    """

    def init_poolmanager(
        self,
        connections: int,
        maxsize: int,
        block: bool = False,
        **pool_kwargs: object,
    ) -> None:
        """Build the pool manager, then give it the deadline-aware pool classes."""
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_POOLS)
        self._origins: dict[tuple[str, object, object], ConnectionPool] = {}

    def get_connection_with_tls_context(
        self,
        request: requests.PreparedRequest,
        verify: bool | str | None,
        proxies: Mapping[str, str] | None = None,
        cert: str | tuple[str, str] | None = None,
    ) -> ConnectionPool:
        """The pool for ``request``'s origin: the one found last time, unless it was closed.

        Thread-safe: two threads may both look a new origin up; they get the same pool.
        """
        url = request.url or ""
        scheme_end = url.find("://")
        if proxies or scheme_end < 0:
            return super().get_connection_with_tls_context(request, verify, proxies, cert)
        path_start = url.find("/", scheme_end + 3)
        key = (url if path_start < 0 else url[:path_start], verify, cert)
        pool = self._origins.get(key)
        if pool is None or _closed(pool):  # new, or closed (evicted) by the pool manager
            pool = super().get_connection_with_tls_context(request, verify, proxies, cert)
            self._origins[key] = pool
        return pool

    def close(self) -> None:
        """Close every pool (and forget them)."""
        self._origins.clear()
        super().close()

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: object) -> ProxyManager:
        """The proxy manager of ``proxy``, with deadline-aware pools unless it is SOCKS."""
        manager: ProxyManager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if manager.pool_classes_by_scheme.get("http") in (HTTPConnectionPool, _HTTPPool):
            manager.pool_classes_by_scheme = dict(_POOLS)
        return manager
