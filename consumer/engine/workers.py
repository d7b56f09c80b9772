"""Keyed workers: a lane per ordering key, a thread pool, and the queue outcomes come back on.

An event joins the lane of its ordering key (``lanes.Lanes``); only a lane's head runs, so
events of one key run one at a time, in offset order, while other keys run concurrently on
``max_in_flight`` threads. With a ``Limiter`` (``CONSUMER_MAX_RATE``), a head first waits
for a token, in arrival order, in the throttled queue.

A worker thread runs the processor for one item and puts ``(item, outcome)`` on the
completion queue; it never touches the lanes. Everything else here is the poll thread's:
it takes completions (``completions``), moves the lane on (``advance``), and on a release
or a shutdown stops what must not start (``drop_waiting``, ``unthrottle``, ``cancel``).

**Inline** (``inline=True``, the dry run: a processor with no I/O to wait for): there is
no pool. A lane head runs on the poll thread the moment it may start, and its completion
goes on the same queue, so the loop takes it exactly as a worker thread's: the lanes,
the token queue, the watermarks and the release and shutdown rules are the same. A head
has always run by the time the loop can release its partition, so nothing is ever
cancelled mid-run; an event waiting behind its key still waits for its head's completion
to be taken (the next turn). No thread hand-off, no future, no cancellation event per
event: that hand-off cost more than the dry run's own work (ADR 0014).

Counts for the loop and its gauges: ``held`` (in the lanes: running or waiting behind
their key), ``running`` (lane heads) and ``queued`` (waiting for a thread, behind a key, or
for a token). The in-flight gauge is kept by the worker threads themselves.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Final, Protocol

from structlog.contextvars import bind_contextvars, reset_contextvars

from consumer.engine.lanes import Lanes
from consumer.events import Event
from consumer.kafka_types import TP
from consumer.observability import Metrics
from consumer.outcomes import Abandoned, Outcome
from consumer.wire import Record


class Processor(Protocol):
    """Applies one event; runs on a worker thread; never raises for a classified failure."""

    def __call__(self, event: Event, cancelled: threading.Event, /) -> Outcome:
        """Return what became of ``event``; stop retrying once ``cancelled`` is set."""


class Limiter(Protocol):
    """Caps how often events start (a token bucket)."""

    def try_acquire(self) -> bool:
        """True if an event may start now; never blocks."""


NOT_CANCELLED: Final = threading.Event()
"""What an inline run is given to watch: it is never set (nothing cancels a run in progress
on the poll thread, which is the one that would cancel it)."""


@dataclass(eq=False, slots=True)
class WorkItem:
    """A decoded event on its way through a lane."""

    record: Record
    event: Event
    key: str
    generation: int  # of its partition when it was taken
    started: float = 0.0  # when a worker thread picked it up
    elapsed: float = 0.0  # how long the processor ran (measured on the worker thread)
    future: Future[None] | None = None  # its run on the pool (cancellable until it starts)
    _cancelled: threading.Event | None = field(default=None, init=False, repr=False)

    @property
    def tp(self) -> TP:
        """The source partition."""
        return (self.record.topic, self.record.partition)

    @property
    def cancelled(self) -> threading.Event:
        """Set when the item must not start, or must stop after its current request.

        Made on first use: by the poll thread before the item goes to the pool (so a worker
        thread only ever reads it), or by a cancellation. An inline item never needs one.
        """
        if self._cancelled is None:
            self._cancelled = threading.Event()
        return self._cancelled


Completion = tuple[WorkItem, Outcome | BaseException]
"""An item and what became of it; an exception is a processor's bug."""


class Workers:
    """Lanes, pool and completion queue; driven by the poll thread."""

    def __init__(
        self,
        processor: Processor,
        *,
        max_in_flight: int,
        metrics: Metrics,
        limiter: Limiter | None = None,
        clock: Callable[[], float] = time.monotonic,
        inline: bool = False,
    ) -> None:
        self._processor = processor
        self._metrics = metrics
        self._limiter = limiter
        self._clock = clock
        self._lanes: Lanes[WorkItem] = Lanes()
        self._throttled: deque[WorkItem] = deque()  # lane heads waiting for a token
        self._completions: queue.SimpleQueue[Completion] = queue.SimpleQueue()
        self._pool: ThreadPoolExecutor | None = None
        self._submit: Callable[[WorkItem], None] = self._run_here
        if not inline:
            self._pool = ThreadPoolExecutor(max_in_flight, thread_name_prefix="worker")
            self._submit = self._hand_to_pool
        self._submitted = 0  # items handed to the pool (poll thread)
        self._picked_up = 0  # items a worker thread has started (written by workers)
        self._picked_up_lock = threading.Lock()

    # ------------------------------------------------------------------ counts

    @property
    def held(self) -> int:
        """Items in the lanes: running, or waiting behind their key."""
        return len(self._lanes)

    @property
    def running(self) -> int:
        """Lane heads: started, handed to the pool, or waiting for a token."""
        return self._lanes.running

    @property
    def queued(self) -> int:
        """Items not running yet: waiting for a thread, behind their key, or for a token."""
        with self._picked_up_lock:
            waiting_for_thread = self._submitted - self._picked_up
        behind_key = len(self._lanes) - self._lanes.running
        return max(0, waiting_for_thread) + behind_key + len(self._throttled)

    def busy(self, which: Callable[[WorkItem], bool]) -> bool:
        """True while a lane head that ``which`` selects has not finished."""
        return any(which(head) for head in self._lanes.heads())

    # ------------------------------------------------------------------ starting

    def add(self, item: WorkItem) -> None:
        """Queue ``item`` in its key's lane; it starts at once if it heads the lane."""
        if self._lanes.push(item.key, item):
            self._start(item)

    def advance(self, key: str, *, start_next: bool) -> None:
        """The head of ``key`` finished: start the next item, unless ``start_next`` is false.

        Not starting (the engine is stopping): the rest of the lane is dropped unstarted;
        their offsets stay pending, so they are consumed again after a restart.
        """
        following = self._lanes.finish(key)
        while following is not None and not start_next:
            following = self._lanes.finish(following.key)
        if following is not None:
            self._start(following)

    def start_throttled(self) -> None:
        """Start waiting heads while tokens last, in arrival order (every turn)."""
        while self._throttled and self._limiter is not None and self._limiter.try_acquire():
            self._submit(self._throttled.popleft())

    def _start(self, item: WorkItem) -> None:
        if self._limiter is not None and (self._throttled or not self._limiter.try_acquire()):
            self._throttled.append(item)  # its turn comes with a token, in arrival order
            return
        self._submit(item)

    def _hand_to_pool(self, item: WorkItem) -> None:
        assert self._pool is not None
        item.cancelled  # noqa: B018 - made here, on the poll thread, before a worker reads it
        self._submitted += 1
        item.future = self._pool.submit(self.work, item)

    def _run_here(self, item: WorkItem) -> None:
        """Inline: run the processor now, on the poll thread; its completion is queued.

        An exception is handed to the loop as a worker's would be (the loop re-raises it);
        one that is not an ``Exception`` (``KeyboardInterrupt``) propagates at once, the
        item finished as abandoned first so its lane and the drain do not wait for it.
        """
        item.started = self._clock()
        outcome: Outcome | BaseException
        tokens = bind_contextvars(event_id=item.event.meta.id)
        try:
            outcome = self._processor(item.event, NOT_CANCELLED)
        except Exception as error:  # noqa: BLE001 - handed to the loop, which re-raises
            outcome = error
        except BaseException:
            self._completions.put((item, Abandoned(why="interrupted")))
            raise
        finally:
            reset_contextvars(**tokens)
            item.elapsed = self._clock() - item.started
        self._completions.put((item, outcome))

    # ------------------------------------------------------------------ stopping

    def drop_waiting(self, which: Callable[[WorkItem], bool]) -> None:
        """Drop the items ``which`` selects that wait behind their key: they never start."""
        self._lanes.drop_waiting(which)

    def unthrottle(self, which: Callable[[WorkItem], bool]) -> list[WorkItem]:
        """Take the heads ``which`` selects out of the token queue; they will not start.

        The caller finishes each one as abandoned (which moves its lane on).
        """
        taken = [item for item in self._throttled if which(item)]
        for item in taken:
            self._throttled.remove(item)
        return taken

    def cancel(self, which: Callable[[WorkItem], bool]) -> list[WorkItem]:
        """Cancel the running heads ``which`` selects; return those that had not started.

        A running item finishes its current request and starts no other. An item still in
        the pool's queue is taken out of it and returned: the caller finishes it as
        abandoned (it never reaches a thread, so it never comes back as a completion).
        """
        unstarted = []
        for head in [head for head in self._lanes.heads() if which(head)]:
            head.cancelled.set()
            if head.future is not None and head.future.cancel():
                with self._picked_up_lock:
                    self._picked_up += 1  # it left the pool's queue without a thread
                unstarted.append(head)
        return unstarted

    def shutdown(self) -> None:
        """Let the threads go; items still queued never start."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ completions

    def completions(self, timeout: float = 0.0) -> Iterator[Completion]:
        """The completions waiting now (blocking up to ``timeout`` for the first one)."""
        block = timeout > 0
        while True:
            try:
                completion = self._completions.get(block=block, timeout=timeout if block else None)
            except queue.Empty:
                return
            block = False
            yield completion

    def work(self, item: WorkItem) -> None:
        """Worker thread: run the processor, hand the outcome back. Never touches the lanes.

        The event counts as in flight, and its processing time runs, from here: not from
        the moment it was handed to the pool, where it may wait for a free thread. An item
        cancelled while it waited for a thread (its partition was released, or the worker is
        stopping) is abandoned without running: nothing of it may start now. Every log line
        of the run (the processor's, effects', services') carries the ``event_id``.
        """
        item.started = self._clock()
        with self._picked_up_lock:
            self._picked_up += 1
        outcome: Outcome | BaseException
        if item.cancelled.is_set():
            outcome = Abandoned(why="cancelled before it started")
        else:
            self._metrics.in_flight.inc()
            tokens = bind_contextvars(event_id=item.event.meta.id)
            try:
                outcome = self._processor(item.event, item.cancelled)
            except BaseException as error:  # noqa: BLE001 - handed to the loop, which re-raises
                outcome = error
            finally:
                reset_contextvars(**tokens)
                item.elapsed = self._clock() - item.started
                self._metrics.in_flight.dec()
        self._completions.put((item, outcome))
