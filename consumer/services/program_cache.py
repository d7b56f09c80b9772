"""Discovery's programs, cached, indexed by course run, refreshed in the background.

Event processing only ever reads an immutable ``ProgramIndex`` (a reference swap, no lock),
so a refresh never blocks it. A refresh that fails keeps the last good copy and marks the
cache *stale*; a program whose details fail keeps its previous copy (or is left out and
the index marked *incomplete* until the next refresh succeeds). Until the very first copy
exists, readers wait for it (bounded) and then get ``ServiceUnavailableError`` for
``discovery``, so an award is retried, never decided on an empty catalogue.

``state()`` and the ``on_refresh`` callback expose ready / stale / incomplete / age for
metrics; nothing here imports prometheus.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import structlog

from consumer.errors import ConsumerError, ServiceUnavailableError
from consumer.programs import Program
from consumer.services.discovery import DiscoveryClient

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ProgramIndex:
    """An immutable copy of the catalogue: programs by UUID and by course-run key."""

    programs: Mapping[str, Program]
    by_run: Mapping[str, tuple[Program, ...]]
    loaded_at: float
    missing: tuple[str, ...] = ()

    @classmethod
    def build(
        cls, programs: Iterable[Program], *, loaded_at: float, missing: Iterable[str] = ()
    ) -> ProgramIndex:
        """Index ``programs`` by every run key they contain."""
        by_uuid = {program.uuid: program for program in programs}
        by_run: dict[str, list[Program]] = {}
        for program in sorted(by_uuid.values(), key=lambda item: item.uuid):
            for run in program.run_keys():
                by_run.setdefault(run, []).append(program)
        return cls(
            programs=MappingProxyType(by_uuid),
            by_run=MappingProxyType({run: tuple(items) for run, items in by_run.items()}),
            loaded_at=loaded_at,
            missing=tuple(sorted(missing)),
        )

    def for_runs(self, runs: Iterable[str]) -> tuple[Program, ...]:
        """Programs containing any of ``runs``, each once, sorted by UUID."""
        found = {program.uuid: program for run in runs for program in self.by_run.get(run, ())}
        return tuple(found[uuid] for uuid in sorted(found))


@dataclass(frozen=True, slots=True)
class CacheState:
    """The cache's health, for metrics and ``check``."""

    ready: bool
    stale: bool
    incomplete: bool
    programs: int
    age_seconds: float | None
    consecutive_failures: int
    last_error: str | None = field(default=None)


class ProgramCache:
    """Keeps a ``ProgramIndex`` fresh. Thread-safe; reads never block once loaded."""

    def __init__(
        self,
        client: DiscoveryClient,
        *,
        ttl: float,
        retry_interval: float = 30.0,
        first_load_wait: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        on_refresh: Callable[[CacheState], None] | None = None,
    ) -> None:
        self._client = client
        self._ttl = ttl
        self._retry_interval = min(retry_interval, ttl)
        self._first_load_wait = first_load_wait
        self._clock = clock
        self._on_refresh = on_refresh
        self._index: ProgramIndex | None = None
        self._first_attempt = threading.Event()
        self._stopping = threading.Event()
        self._refresh_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._failures = 0
        self._last_error: str | None = None
        self._refreshes = itertools.count(1)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the background refresher (a daemon thread). Idempotent; does not block."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="program-cache", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the refresher, waiting up to ``timeout`` for an in-flight refresh."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                ok = self.refresh()
            except Exception:  # a bug here must not freeze the cache silently: log, retry later
                log.exception("program_cache_refresh_crashed")
                ok = False
            self._first_attempt.set()
            index = self._index
            healthy = ok and index is not None and not index.missing
            self._stopping.wait(self._ttl if healthy else self._retry_interval)

    # ------------------------------------------------------------------ refresh

    def refresh(self) -> bool:
        """Fetch the catalogue now (blocks for 1 + N requests); True when the list was read.

        Never raises a service error: a failure is recorded, logged and reported to
        ``on_refresh``, and the previous copy is kept.
        """
        with self._refresh_lock:
            request_id = f"program-cache-refresh-{next(self._refreshes)}"
            previous = self._index
            started = self._clock()
            try:
                uuids = self._client.program_uuids(request_id=request_id)
            except ConsumerError as error:
                self._failed(error)
                return False
            programs: list[Program] = []
            missing: list[str] = []
            for uuid in uuids:
                try:
                    programs.append(self._client.program(uuid, request_id=request_id))
                except ConsumerError as error:
                    old = previous.programs.get(uuid) if previous else None
                    log.warning(
                        "program_detail_failed",
                        program_uuid=uuid,
                        error=error.reason,
                        kept_previous=old is not None,
                    )
                    if old is not None:
                        programs.append(old)
                    else:
                        missing.append(uuid)
            self._index = ProgramIndex.build(programs, loaded_at=started, missing=missing)
            self._failures = 0
            self._last_error = None
            no_seats = sum(
                1
                for program in programs
                for course in program.courses
                for run in course.runs
                if run.seat_type is None
            )
            log.info(
                "program_cache_refreshed",
                programs=len(programs),
                missing=len(missing),
                runs_without_seats=no_seats,
            )
            self._report()
            return True

    def _failed(self, error: ConsumerError) -> None:
        self._failures += 1
        self._last_error = error.reason
        log.warning(
            "program_cache_refresh_failed",
            error=error.reason,
            serving_stale=self._index is not None,
            consecutive_failures=self._failures,
        )
        self._report()

    def _report(self) -> None:
        if self._on_refresh is not None:
            self._on_refresh(self.state())

    # ------------------------------------------------------------------ reads

    def index(self) -> ProgramIndex:
        """The current copy; while the very first load is under way, wait for it (bounded).

        Without a running refresher a call with no copy loads synchronously. Once the first
        attempt has failed, callers do not wait: they get ``ServiceUnavailableError``
        (service ``discovery``, reason ``program_cache_empty``) at once, and the refresher
        keeps trying every ``retry_interval``.
        """
        index = self._index
        if index is not None:
            return index
        if self._thread is None:
            self.refresh()
        else:
            self._first_attempt.wait(self._first_load_wait)
        index = self._index
        if index is None:
            raise ServiceUnavailableError(
                "discovery programs not loaded yet",
                service="discovery",
                reason="program_cache_empty",
            )
        return index

    def programs_for_runs(self, runs: Iterable[str]) -> tuple[Program, ...]:
        """Programs containing any of ``runs`` (sorted by UUID). Raises like ``index``."""
        return self.index().for_runs(runs)

    def state(self) -> CacheState:
        """Ready / stale / incomplete / size / age of the cache, right now."""
        index = self._index
        return CacheState(
            ready=index is not None,
            stale=index is not None and self._failures > 0,
            incomplete=bool(index and index.missing),
            programs=len(index.programs) if index else 0,
            age_seconds=self._clock() - index.loaded_at if index else None,
            consecutive_failures=self._failures,
            last_error=self._last_error,
        )
