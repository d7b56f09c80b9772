"""Measuring processes from outside: CPU and memory from ``/proc``, progress from ``/metrics``.

The worker is measured as a black box, the way an operator sees it: a sampler reads its
``/proc/<pid>/stat`` (CPU of every thread), ``/proc/<pid>/status`` (resident memory) and
its Prometheus endpoint (partitions assigned, events done) a few times a second. The window
runs from the first sample that sees partitions assigned to the first that sees every event
done; its ends are interpolated between samples (``window``). Peak RSS comes from the
kernel (``wait4``'s ``ru_maxrss``) once the process exits.

The pure parts — ``window``, ``trend``, ``ratio`` — are unit-tested.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True, slots=True)
class Sample:
    """One look at a running process."""

    at: float
    """``time.monotonic()``."""
    started: bool
    """Partitions assigned (or a record received) by then."""
    done: int
    """Events done by then."""
    cpu: float
    """CPU seconds of the process (all threads) by then."""
    rss: int
    """Resident memory, bytes."""


@dataclass(frozen=True, slots=True)
class Window:
    """The measured stretch of a run: from the assignment to the last event done."""

    seconds: float
    cpu_seconds: float
    events: int

    @property
    def rate(self) -> float:
        """Events per second."""
        return self.events / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_per_event(self) -> float:
        """CPU seconds per event."""
        return self.cpu_seconds / self.events if self.events else 0.0


def _lerp(a: float, b: float, share: float) -> float:
    return a + (b - a) * share


def window(samples: Sequence[Sample], total: int) -> Window:
    """The window of a run whose ``total`` events were all done, from its samples.

    Start: the assignment was seen at the first ``started`` sample; it happened some time
    after the previous sample, taken as the middle of that interval. End: the moment the
    count reached ``total``, interpolated linearly between the last sample below it and the
    first at it. CPU is interpolated at the same moments.
    """
    first = next((i for i, sample in enumerate(samples) if sample.started), None)
    last = next((i for i, sample in enumerate(samples) if sample.done >= total), None)
    if first is None or last is None:
        raise ValueError("the samples never saw the run start and finish")
    begin = samples[first]
    if first > 0:
        before = samples[first - 1]
        start_at = _lerp(before.at, begin.at, 0.5)
        start_cpu = _lerp(before.cpu, begin.cpu, 0.5)
    else:
        start_at, start_cpu = begin.at, begin.cpu
    end = samples[last]
    if last > 0 and samples[last - 1].done < total and last - 1 >= first:
        previous = samples[last - 1]
        share = (total - previous.done) / max(1, end.done - previous.done)
        end_at = _lerp(previous.at, end.at, share)
        end_cpu = _lerp(previous.cpu, end.cpu, share)
    else:
        end_at, end_cpu = end.at, end.cpu
    return Window(seconds=end_at - start_at, cpu_seconds=end_cpu - start_cpu, events=total)


@dataclass(frozen=True, slots=True)
class Trend:
    """Whether memory grew while a backlog drained."""

    verdict: str
    """``flat`` or ``growing``."""
    early_mb: float
    late_mb: float


def trend(samples: Sequence[Sample], total: int, *, tolerance: float = 0.1) -> Trend:
    """Compare peak RSS over the second fifth of the drain with the last fifth.

    The first fifth is warm-up (buffers filling, caches loading). Growing means the late
    peak exceeds the early one by more than ``tolerance`` (10%) and by more than 16 MB.
    """
    draining = [sample for sample in samples if sample.started and sample.done < total]
    if len(draining) < 5:
        raise ValueError("too few samples during the drain to judge memory")
    fifth = len(draining) // 5
    early = max(sample.rss for sample in draining[fifth : 2 * fifth])
    late = max(sample.rss for sample in draining[-fifth:])
    growing = late > early * (1 + tolerance) and late - early > 16 * 2**20
    return Trend("growing" if growing else "flat", early / 2**20, late / 2**20)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator``, or None when either is missing or the divisor is 0."""
    if numerator is None or not denominator:
        return None
    return numerator / denominator


# ---------------------------------------------------------------------------- /proc


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, every thread) of a running process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def process_rss(pid: int) -> int:
    """Resident memory of a running process, bytes."""
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def scrape(port: int) -> Mapping[str, float]:
    """The worker's progress: ``assigned``, ``received``, ``done`` (sums over labels)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
        text = response.read().decode()
    wanted = {
        "credentials_consumer_assigned_partitions": "assigned",
        "credentials_consumer_events_received": "received",
        "credentials_consumer_events_done": "done",
    }
    found = dict.fromkeys(wanted.values(), 0.0)
    for family in text_string_to_metric_families(text):
        name = wanted.get(family.name)
        if name is None:
            continue
        found[name] = sum(
            sample.value for sample in family.samples if not sample.name.endswith("_created")
        )
    return found


def outcomes(port: int) -> dict[str, float]:
    """Events done by ``outcome/reason`` (what the worker did with the workload)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
        text = response.read().decode()
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "credentials_consumer_events_done":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total"):
                key = f"{sample.labels['outcome']}/{sample.labels['reason']}"
                counts[key] = counts.get(key, 0.0) + sample.value
    return counts


@dataclass
class Watched:
    """A process run under a sampler, and what was seen of it."""

    samples: list[Sample] = field(default_factory=list)
    returncode: int | None = None
    peak_rss: int = 0
    """Bytes, from the kernel's high-water mark."""
    cpu_total: float = 0.0
    """CPU seconds of the whole life of the process (rusage)."""
    extra: dict[str, float] = field(default_factory=dict)


def watch(
    process: subprocess.Popen[bytes],
    progress: Callable[[], Mapping[str, float] | None],
    *,
    interval: float = 0.2,
    timeout: float = 3600.0,
    on_sample: Callable[[Sample], None] | None = None,
) -> Watched:
    """Sample ``process`` until it exits; reap it with ``wait4`` for its rusage."""
    watched = Watched()
    stop = threading.Event()
    last: dict[str, float] = {"assigned": 0.0, "received": 0.0, "done": 0.0}

    def sampler() -> None:
        while not stop.is_set():
            at = time.monotonic()
            try:
                cpu, rss = process_cpu(process.pid), process_rss(process.pid)
            except (OSError, ValueError, IndexError):
                break  # exited (or a zombie whose stat we cannot read)
            try:
                seen = progress()
            except OSError:
                seen = None  # the metrics server is not up yet, or already down
            if seen is not None:
                last.update(seen)
                sample = Sample(
                    at=at,
                    started=last["assigned"] > 0 or last["received"] > 0,
                    done=int(last["done"]),
                    cpu=cpu,
                    rss=rss,
                )
                watched.samples.append(sample)
                if on_sample is not None:
                    on_sample(sample)
            stop.wait(interval)

    thread = threading.Thread(target=sampler, name="bench-sampler", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            process.kill()
            pid, status, usage = os.wait4(process.pid, 0)
            break
        time.sleep(0.05)
    stop.set()
    thread.join(5)
    process.returncode = os.waitstatus_to_exitcode(status)
    watched.returncode = process.returncode
    watched.peak_rss = usage.ru_maxrss * 1024
    watched.cpu_total = usage.ru_utime + usage.ru_stime
    return watched
