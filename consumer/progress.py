"""How far a replay is: done and total per topic, rate and ETA; a bar or JSON lines.

``Progress`` learns from the engine's commits (the committed watermark of each partition:
everything below it is done) and is read by a reporter thread, so it takes a lock. On a
terminal the reporter redraws one progress bar on stderr twice a second; otherwise (a
Kubernetes Job has no terminal) it logs ``replay_progress`` every ``interval`` seconds with
done, total, rate and ETA per topic. It also keeps the ``replay_*`` gauges current, so a
replay Job can be watched in Prometheus.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TextIO

import structlog

from consumer.kafka_types import TP
from consumer.observability import Metrics

log = structlog.get_logger("consumer.progress")

BAR_WIDTH = 30
BAR_REFRESH_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class Count:
    """Progress of one topic (or of all): records done of the total, and the pace."""

    done: int
    total: int
    rate: float  # records per second since this run started
    eta_seconds: float | None  # None while nothing moved yet

    def to_json(self) -> dict[str, object]:
        """As a JSON-ready dict."""
        return {
            "done": self.done,
            "total": self.total,
            "rate": round(self.rate, 2),
            "eta_seconds": None if self.eta_seconds is None else round(self.eta_seconds, 1),
        }


class Progress:
    """Done records per partition of a fixed range; thread-safe."""

    def __init__(
        self,
        ranges: Iterable[tuple[TP, int, int]],
        positions: Mapping[TP, int],
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        """``ranges``: (partition, start, end) each; ``positions``: where this run starts."""
        self._lock = threading.Lock()
        self._start: dict[TP, int] = {}
        self._end: dict[TP, int] = {}
        self._done: dict[TP, int] = {}
        for tp, start, end in ranges:
            self._start[tp], self._end[tp] = start, max(start, end)
            self._done[tp] = self._clamp(tp, positions.get(tp, start))
        self._before = dict(self._done)
        self._metrics = metrics
        self._clock = clock
        self._wall = wall
        self._began = clock()
        for topic, count in self._by_topic().items():
            metrics.replay_planned.labels(topic).set(count.total)
            metrics.replay_done.labels(topic).set(count.done)
        metrics.replay_last_progress.set(wall())

    def _clamp(self, tp: TP, position: int) -> int:
        return min(max(position, self._start[tp]), self._end[tp]) - self._start[tp]

    def committed(self, tp: TP, offset: int) -> None:
        """Everything of ``tp`` below ``offset`` is done."""
        if tp not in self._start:
            return
        with self._lock:
            done = self._clamp(tp, offset)
            if done <= self._done[tp]:
                return
            self._done[tp] = done
            topic_done = sum(count for (topic, _), count in self._done.items() if topic == tp[0])
        self._metrics.replay_done.labels(tp[0]).set(topic_done)
        self._metrics.replay_last_progress.set(self._wall())

    def complete(self) -> None:
        """The engine consumed every partition to its end: count the range as done.

        (A watermark can stop short of the end when the last offsets are transaction
        markers, which are never delivered.)
        """
        for tp, end in self._end.items():
            self.committed(tp, end)

    def overall(self) -> Count:
        """Progress of the whole range."""
        with self._lock:
            return self._count(self._done.keys())

    def by_topic(self) -> dict[str, Count]:
        """Progress per topic."""
        with self._lock:
            return self._by_topic()

    def _by_topic(self) -> dict[str, Count]:
        topics = sorted({topic for topic, _ in self._start})
        return {
            topic: self._count([tp for tp in self._start if tp[0] == topic]) for topic in topics
        }

    def _count(self, tps: Iterable[TP]) -> Count:
        chosen = list(tps)
        done = sum(self._done[tp] for tp in chosen)
        total = sum(self._end[tp] - self._start[tp] for tp in chosen)
        moved = done - sum(self._before[tp] for tp in chosen)  # by this run, not an earlier one
        rate = moved / max(self._clock() - self._began, 1e-9)
        remaining = total - done
        eta = 0.0 if remaining == 0 else (remaining / rate if rate > 0 else None)
        return Count(done=done, total=total, rate=rate, eta_seconds=eta)

    @property
    def elapsed(self) -> float:
        """Seconds since this run started."""
        return self._clock() - self._began


def render_bar(count: Count) -> str:
    """``[#######-----------]  35%  700/2000  41.2/s  ETA 0:00:31``."""
    share = count.done / count.total if count.total else 1.0
    filled = round(share * BAR_WIDTH)
    eta = "--:--:--" if count.eta_seconds is None else _clock_text(count.eta_seconds)
    return (
        f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {share:>4.0%}  "
        f"{count.done}/{count.total}  {count.rate:.1f}/s  ETA {eta}"
    )


def _clock_text(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


class Reporter:
    """Reports ``progress`` from a daemon thread until ``stop()``: a bar, or JSON log lines."""

    def __init__(self, progress: Progress, *, terminal: TextIO | None, interval: float) -> None:
        self._progress = progress
        self._terminal = terminal
        self._interval = BAR_REFRESH_SECONDS if terminal is not None else interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="replay-progress", daemon=True)

    def start(self) -> None:
        """Start reporting."""
        self._thread.start()

    def stop(self) -> None:
        """Report one last time and stop."""
        self._stopped.set()
        self._thread.join(timeout=5)
        self._report()
        if self._terminal is not None:
            self._terminal.write("\n")
            self._terminal.flush()

    def _loop(self) -> None:
        while not self._stopped.wait(self._interval):
            self._report()

    def _report(self) -> None:
        overall = self._progress.overall()
        if self._terminal is not None:
            self._terminal.write("\r" + render_bar(overall))
            self._terminal.flush()
            return
        log.info(
            "replay_progress",
            **overall.to_json(),
            topics={topic: count.to_json() for topic, count in self._progress.by_topic().items()},
        )
