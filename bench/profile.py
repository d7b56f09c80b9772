"""Read a py-spy profile of the worker: where its CPU goes, by thread and by function.

``py-spy record --format raw --threads --function`` writes one line per distinct stack:
``thread (id): name;frame;frame;... count``, each frame ``function (file:line)``, outermost
first. With ``--gil`` only the thread holding the GIL is sampled, so the counts are samples
of the Python CPU the process spends.

``summarise`` (pure, unit-tested) turns those lines into shares:

- by thread kind (the thread name without its numbers: the poll loop's ``MainThread``, the
  pool's ``worker_``; librdkafka's threads are not Python and not sampled);
- by function *self* (the leaf frame: where the CPU is spent);
- by function *inclusive* (every function on the stack, counted once per sample: what it
  costs with everything it calls), without the entry points that sit under nearly every
  sample of their thread (``runpy``, ``main``, a thread's bootstrap): they say nothing.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePath

_LINE = re.compile(r"^(?P<stack>.*) (?P<count>\d+)$")
_THREAD = re.compile(r"^thread \((?P<id>[^)]*)\): ?(?P<name>.*)$")
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
ENTRY_POINT_SHARE = 0.9
"""A function under this share of its thread's samples or more is an entry point."""
_SITE = re.compile(r"^.*/(?:site-packages|lib/python3\.\d+)/")


@dataclass(frozen=True, slots=True)
class Entry:
    """A function (or thread kind) and its share of the samples."""

    name: str
    samples: int
    share: float


@dataclass(frozen=True, slots=True)
class Summary:
    """A profile, boiled down."""

    samples: int
    threads: tuple[Entry, ...]
    self_time: tuple[Entry, ...]
    inclusive: tuple[Entry, ...]


def frame_name(frame: str) -> str:
    """``function (file:line)`` as ``function (short/file.py)``.

    Site-packages and the stdlib folder are dropped, so a function reads the same anywhere.
    """
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    path = _SITE.sub("", match.group("file"))
    if "/consumer/" in path:
        path = "consumer/" + path.split("/consumer/", 1)[1]
    elif path.startswith("/"):
        path = PurePath(path).name
    return f"{match.group('function')} ({path})"


def thread_kind(name: str) -> str:
    """A thread name without its numbers (``worker_12`` → ``worker_``)."""
    return re.sub(r"\d+", "", name).strip() or "unnamed"


def summarise(lines: Iterable[str], *, top: int = 15) -> Summary:
    """Shares by thread kind, self time and inclusive time, ``top`` entries each."""
    threads: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    by_thread: Counter[tuple[str, str]] = Counter()
    total = 0
    for raw in lines:
        match = _LINE.match(raw.rstrip("\n"))
        if match is None:
            continue
        count = int(match.group("count"))
        frames = match.group("stack").split(";")
        thread = _THREAD.match(frames[0])
        kind = "unnamed"
        if thread is not None:
            kind = thread_kind(thread.group("name"))
            frames = frames[1:]
        threads[kind] += count
        total += count
        names = [frame_name(frame) for frame in frames if frame]
        if names:
            leaves[names[-1]] += count
        for name in set(names):
            inclusive[name] += count
            by_thread[kind, name] += count
    for (kind, name), count in by_thread.items():
        if count >= ENTRY_POINT_SHARE * threads[kind]:
            inclusive.pop(name, None)

    def entries(counter: Counter[str]) -> tuple[Entry, ...]:
        return tuple(
            Entry(name, samples, samples / total if total else 0.0)
            for name, samples in counter.most_common(top)
        )

    return Summary(total, entries(threads), entries(leaves), entries(inclusive))
