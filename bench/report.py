"""From a results file to ratios, targets, and ``docs/benchmarks.md`` with its plots.

Everything here is a pure function of the results dict (unit-tested), except ``write_docs``
which writes the page and the SVG plots next to it. ``python -m bench.report [FILE]``
regenerates the page from a results file (default: the newest in ``bench/results``).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.measure import ratio

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DOCS = ROOT / "docs" / "benchmarks.md"
PLOT = ROOT / "docs" / "benchmarks-throughput.svg"
MEMORY_PLOT = ROOT / "docs" / "benchmarks-memory.svg"

ANALYSIS = ROOT / "bench" / "analysis.md"
"""The hand-written part of the page (what changed, what it bought, where time goes)."""

LABELS = {
    "consume_ceiling": "1. consume ceiling (confluent-kafka `consume()`, no decoding)",
    "decode_ceiling": "2. decode ceiling (+ framing and fastavro, writer schema only)",
    "route_ceiling": "3. route-and-decode ceiling (+ `ce_type` routing, reader schema)",
    "worker_dry_run": "4. worker, dry-run",
    "naive": "5. naive consumer vs fake, L",
    "worker_live": "6. worker vs fake, L, in-flight 64",
}
SHORT = {
    "consume_ceiling": "consume ceiling",
    "decode_ceiling": "decode ceiling",
    "route_ceiling": "route+decode ceiling",
    "worker_dry_run": "worker dry-run",
    "naive": "naive vs fake",
    "worker_live": "worker vs fake",
}

Results = Mapping[str, Any]


def _rate(results: Results, name: str) -> float | None:
    contender = results.get("contenders", {}).get(name)
    return None if contender is None else contender.get("events_per_second")


def ratios(results: Results) -> dict[str, float | None]:
    """The ratios that survive a noisy machine: contenders of one run against each other."""
    live = results.get("contenders", {}).get("worker_live", {})
    return {
        "worker_dry_run / decode_ceiling": ratio(
            _rate(results, "worker_dry_run"), _rate(results, "decode_ceiling")
        ),
        "worker_dry_run / route_ceiling": ratio(
            _rate(results, "worker_dry_run"), _rate(results, "route_ceiling")
        ),
        "worker_dry_run / consume_ceiling": ratio(
            _rate(results, "worker_dry_run"), _rate(results, "consume_ceiling")
        ),
        "decode_ceiling / consume_ceiling": ratio(
            _rate(results, "decode_ceiling"), _rate(results, "consume_ceiling")
        ),
        "route_ceiling / decode_ceiling": ratio(
            _rate(results, "route_ceiling"), _rate(results, "decode_ceiling")
        ),
        "worker_live / naive": ratio(_rate(results, "worker_live"), _rate(results, "naive")),
        "worker_live / latency_bound": ratio(
            _rate(results, "worker_live"), live.get("latency_bound_events_per_second")
        ),
    }


def targets(results: Results) -> list[dict[str, Any]]:
    """The issue's targets, each with the value reached and whether it is met (None: not run)."""
    found = results.get("ratios") or ratios(results)
    contenders = results.get("contenders", {})
    memory = results.get("memory") or {}

    def check(
        name: str, value: float | None, goal: float, *, at_most: bool = False
    ) -> dict[str, Any]:
        met = None if value is None else (value <= goal if at_most else value >= goal)
        return {"target": name, "value": value, "met": met}

    live_cpu = contenders.get("worker_live", {}).get("cpu_ms_per_event")
    peak = memory.get("peak_rss_mb")
    return [
        check("worker dry-run ≥ 10,000 events/s", _rate(results, "worker_dry_run"), 10_000),
        check(
            "worker dry-run ≥ 40% of the decode ceiling",
            found.get("worker_dry_run / decode_ceiling"),
            0.4,
        ),
        check("worker vs fake: CPU ≤ 1.5 ms per event", live_cpu, 1.5, at_most=True),
        check(
            "worker vs fake ≥ 70% of its latency bound",
            found.get("worker_live / latency_bound"),
            0.7,
        ),
        check("worker vs fake ≥ 40× the naive consumer", found.get("worker_live / naive"), 40),
        check("dry-run peak RSS ≤ 200 MB on the backlog", peak, 200, at_most=True),
        {
            "target": "dry-run RSS flat over the backlog",
            "value": memory.get("trend"),
            "met": {"flat": True, "growing": False}.get(memory.get("trend", "")),
        },
    ]


# ---------------------------------------------------------------------------- formatting


def _number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def _met(met: bool | None) -> str:
    return {True: "met", False: "**missed**", None: "not run"}[met]


def _value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3g}" if value < 100 else f"{value:,.0f}"
    return "–" if value is None else str(value)


def table(results: Results) -> list[str]:
    """The contenders' table (markdown lines)."""
    lines = [
        "| contender | events | events/s | CPU ms / event | peak RSS MB | load (1 min) | note |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    latency_ms = results["parameters"]["latency_seconds"] * 1000
    for name, label in LABELS.items():
        item = results.get("contenders", {}).get(name)
        if item is None:
            continue
        note = item.get("note", "")
        lines.append(
            f"| {label.replace(', L', f', L = {latency_ms:g} ms')} | {item['events']:,} "
            f"| {_number(item['events_per_second'], 1 if item['events_per_second'] < 100 else 0)} "
            f"| {_number(item['cpu_ms_per_event'], 3)} | {_number(item['peak_rss_mb'], 0)} "
            f"| {_number(item.get('load_1m'), 2)} | {note} |"
        )
    return lines


def _entries(entries: Sequence[Mapping[str, Any]], limit: int) -> list[str]:
    rows = [f"| {item['share']:.1%} | {item['samples']:,} | `{item['name']}` |" for item in entries]
    return ["| share | samples | function |", "|---:|---:|---|", *rows[:limit]]


def page(results: Results, analysis: str = "") -> str:
    """``docs/benchmarks.md`` for ``results``; the hand-written ``analysis`` follows the targets."""
    parameters = results["parameters"]
    machine = results["machine"]
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`bench/run.py`) from "
        f"`bench/results/{results['file']}`; regenerate the page alone with "
        "`python -m bench.report`. Do not edit by hand.",
        "",
        "The machine is shared and noisy: compare the ratios of one run and the CPU seconds per "
        "event, more than rates across runs.",
        "",
        "## How it was run",
        "",
        f"- Command: `{results['command']}`",
        f"- When: {results['timestamp']} (UTC); commit `{machine.get('commit', '?')}`",
        f"- Machine: {machine.get('cpus')} CPUs ({machine.get('cpu_model', '?')}), "
        f"{machine.get('memory_gb')} GB, Python {machine.get('python')}, "
        f"librdkafka {machine.get('librdkafka')}; load average at start "
        f"{machine.get('load_at_start')}, at the end {machine.get('load_at_end')}",
        f"- Workload: {parameters['events']:,} events on {parameters['partitions']} partitions "
        f"of one topic, {parameters['certificate_share']:.0%} certificate events "
        f"({parameters['revoked_share']:.0%} of them revocations) over "
        f"{parameters['learners']:,} learners and {parameters['course_runs']} course runs in "
        f"{parameters['programs']} programs, the rest catalog changes; encoded by the LMS's "
        "own serializers (`bench/lms.py`), produced at "
        f"{_number(results.get('produce', {}).get('events_per_second'))} events/s.",
        f"- Live contenders: the first {parameters['live_events']:,} events of the same "
        f"workload (the naive consumer: {parameters['naive_events']:,} of them), against the "
        f"fake Open edX with L = {parameters['latency_seconds'] * 1000:g} ms on every "
        "per-event request (Credentials, LMS, Studio), a fresh fake for each.",
        "",
        "## Contenders",
        "",
        "![events per second, log scale](benchmarks-throughput.svg)",
        "",
        *table(results),
        "",
        "Each contender is a process of its own, run one after the other on the same topic, "
        "each in its own consumer group. Events/s and CPU are measured from the assignment of "
        "the partitions (fetching starts then) to the last event done; CPU is every thread of "
        "the process (`/proc`; the worker's is sampled from outside every 0.2 s, its progress "
        "read from its `/metrics`), peak RSS the kernel's high-water mark (`wait4`).",
        "",
        "- The **ceilings** (`bench/contenders.py`): a confluent-kafka `consume()` loop with "
        "librdkafka's defaults; the decode ceiling adds the Confluent framing and "
        "`fastavro.schemaless_reader` with the writer schema (fetched once per id), no "
        "reader-schema resolution and no event objects. The route-and-decode ceiling adds the "
        "least a correct consumer of this bus must also do: route each record by its "
        "`ce_type` header (several event types share a topic) to its type's reader schema, "
        "and decode into it (fastavro's resolution). The issue's target is stated against "
        "the decode ceiling (writer schema only); both ratios are reported.",
        "- The **worker**: `python -m consumer run --stop-when-idle` with its default settings "
        "(JSON logs at INFO to a file; in dry-run the commands go to /dev/null).",
        "- The **naive consumer** is shaped like edx-event-bus-kafka's `KafkaEventConsumer`: "
        "`poll()` one record, decode it, apply its commands one after the other with "
        "synchronous HTTP, `commit(message=...)` (asynchronous, as the reference calls it), "
        "next record. It decodes, decides and calls the services with the worker's own "
        "modules, so it sends exactly the worker's requests, without retries or concurrency.",
        "",
    ]
    live = results.get("contenders", {}).get("worker_live")
    if live:
        lines += [
            f"Worker vs fake: {_number(live.get('requests_per_event'), 2)} requests per event, "
            f"so its latency bound is {parameters['in_flight']} ÷ "
            f"({_number(live.get('requests_per_event'), 2)} × "
            f"{parameters['latency_seconds']:g} s) = "
            f"{_number(live.get('latency_bound_events_per_second'), 0)} events/s; it reached "
            f"{_number(live['events_per_second'], 0)}.",
            "",
        ]
    lines += ["## Ratios", "", "| ratio | value |", "|---|---:|"]
    for name, value in results["ratios"].items():
        lines.append(f"| {name} | {_number(value, 3)} |")
    lines += ["", "## Targets (issue 13)", "", "| target | reached | |", "|---|---:|---|"]
    for item in results["targets"]:
        lines.append(f"| {item['target']} | {_value(item['value'])} | {_met(item['met'])} |")
    if analysis.strip():
        lines += ["", analysis.strip()]
    fake = results.get("fake")
    if fake:
        lines += [
            "",
            "## The fake is not the bottleneck",
            "",
            "Served from one asyncio loop (`python -m tests.fakes.openedx --fast`), measured "
            f"with {parameters['in_flight']} connections on the worker's request mix "
            "(`bench/fake.py`):",
            "",
            "| latency | requests/s | fake CPU ms / request | bound |",
            "|---:|---:|---:|---|",
        ]
        for item in fake["capacity"]:
            bound = item.get("little_bound_requests_per_second")
            lines.append(
                f"| {item['latency_seconds'] * 1000:g} ms | {_number(item['requests_per_second'])} "
                f"| {_number(item['cpu_ms_per_request'], 3)} | "
                + (f"{bound:,.0f} (in-flight ÷ L)" if bound else "its CPU")
                + " |"
            )
        lines += [
            "",
            f"The worker's latency bound needs {_number(fake.get('needed_requests_per_second'))} "
            f"requests/s; twice that is {_number(fake.get('twice_needed'))}, and the fake "
            f"serves {_number(fake.get('capacity_requests_per_second'))} at this concurrency "
            f"with no latency: {'enough' if fake.get('enough') else '**not enough**'}.",
        ]
    memory = results.get("memory")
    if memory:
        lines += [
            "",
            "## Memory on a backlog",
            "",
            f"The worker in dry-run drained a {memory['events']:,}-event backlog at "
            f"{_number(memory.get('events_per_second'))} events/s: peak RSS "
            f"{_number(memory['peak_rss_mb'])} MB; RSS {memory['trend']} (peak over the second "
            f"fifth of the drain {_number(memory['early_mb'])} MB, over the last fifth "
            f"{_number(memory['late_mb'])} MB).",
            "",
            "![RSS while draining the backlog](benchmarks-memory.svg)",
        ]
    profile = results.get("profile")
    if profile:
        lines += [
            "",
            "## Where the dry-run worker's CPU goes",
            "",
            f"py-spy (`{profile['command']}`), {profile['samples']:,} samples over a "
            "dry-run of the main workload; only threads holding the GIL are sampled, so the "
            "shares are of the Python CPU the worker spends (librdkafka's own threads are not "
            "Python and not shown). This guides the hot-path work. The collapsed stacks are in "
            f"`bench/results/{profile.get('raw', '?')}` (any flame-graph tool reads them).",
            "",
            "By thread:",
            "",
            *_entries(profile["threads"], 8),
            "",
            "Self time (where the CPU is spent):",
            "",
            *_entries(profile["self_time"], 20),
            "",
            "Inclusive time (a function with everything it calls; entry points under nearly "
            "every sample of their thread left out):",
            "",
            *_entries(profile["inclusive"], 30),
        ]
    lines += [
        "",
        "## Reproduce",
        "",
        "```sh",
        results["command"],
        "```",
        "",
        'Options: `python -m bench.run --help` (pass them as `make bench BENCH_ARGS="..."`); '
        "`--events 20000 --memory-events 0 --no-profile` is a quick run.",
        "",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- plots


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def throughput_svg(results: Results) -> str:
    """Horizontal bars of events/s per contender, on a log scale."""
    bars = [
        (SHORT[name], float(item["events_per_second"]))
        for name in LABELS
        if (item := results.get("contenders", {}).get(name)) and item["events_per_second"] > 0
    ]
    width, left, right, top, row = 760, 150, 90, 30, 34
    height = top + row * len(bars) + 40
    low = 10 ** math.floor(math.log10(min(value for _, value in bars))) if bars else 1
    high = 10 ** math.ceil(math.log10(max(value for _, value in bars))) if bars else 10
    span = math.log10(high) - math.log10(low) or 1

    def x(value: float) -> float:
        return left + (width - left - right) * (math.log10(value) - math.log10(low)) / span

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<text x="{left}" y="18" font-weight="bold">events per second (log scale)</text>',
    ]
    exponent = round(math.log10(low))
    while 10**exponent <= high:
        tick = x(10**exponent)
        parts.append(
            f'<line x1="{tick:.1f}" y1="{top}" x2="{tick:.1f}" y2="{height - 30}" stroke="#ddd"/>'
            f'<text x="{tick:.1f}" y="{height - 14}" text-anchor="middle">{10**exponent:,}</text>'
        )
        exponent += 1
    for index, (label, value) in enumerate(bars):
        y = top + index * row + 6
        end = x(value)
        shown = f"{value:,.0f}" if value >= 100 else f"{value:.1f}"
        parts.append(
            f'<text x="{left - 8}" y="{y + 15}" text-anchor="end">{_escape(label)}</text>'
            f'<rect x="{left}" y="{y}" width="{max(1.0, end - left):.1f}" height="22" '
            f'fill="{"#4477aa" if "worker" in label else "#999"}"/>'
            f'<text x="{end + 6:.1f}" y="{y + 15}">{shown}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def memory_svg(memory: Mapping[str, Any]) -> str:
    """RSS (MB) against events done, while the backlog drained."""
    points: list[list[float]] = memory.get("samples", [])
    width, height, left, bottom, top, right = 760, 260, 60, 40, 20, 20
    max_done = max((done for done, _ in points), default=1) or 1
    max_rss = max((rss for _, rss in points), default=1) or 1
    ceiling = max(200.0, math.ceil(max_rss / 50) * 50)

    def xy(done: float, rss: float) -> str:
        px = left + (width - left - right) * done / max_done
        py = height - bottom - (height - top - bottom) * rss / ceiling
        return f"{px:.1f},{py:.1f}"

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<text x="{left}" y="14" font-weight="bold">RSS (MB) while draining '
        f"{memory.get('events', 0):,} events (x: events done)</text>",
    ]
    for mark in range(0, int(ceiling) + 1, 50):
        _, py = xy(0, mark).split(",")
        parts.append(
            f'<line x1="{left}" y1="{py}" x2="{width - right}" y2="{py}" stroke="#eee"/>'
            f'<text x="{left - 6}" y="{float(py) + 4:.1f}" text-anchor="end">{mark}</text>'
        )
    _, limit = xy(0, 200).split(",")
    parts.append(
        f'<line x1="{left}" y1="{limit}" x2="{width - right}" y2="{limit}" stroke="#c33" '
        f'stroke-dasharray="4 3"/><text x="{width - right}" y="{float(limit) - 4:.1f}" '
        'text-anchor="end" fill="#c33">200 MB target</text>'
    )
    if points:
        path = " ".join(xy(done, rss) for done, rss in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="#4477aa" stroke-width="2"/>')
    parts.append(
        f'<text x="{width - right}" y="{height - 12}" text-anchor="end">{max_done:,.0f}</text>'
        f'<text x="{left}" y="{height - 12}">0</text>'
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def write_docs(results: Results) -> None:
    """Write ``docs/benchmarks.md`` and its plots from ``results``."""
    DOCS.write_text(page(results, ANALYSIS.read_text() if ANALYSIS.exists() else ""))
    PLOT.write_text(throughput_svg(results))
    if results.get("memory"):
        MEMORY_PLOT.write_text(memory_svg(results["memory"]))


def latest() -> Path:
    """The newest results file."""
    files = sorted(RESULTS.glob("*Z.json"))
    if not files:
        raise SystemExit("no results in bench/results: run make bench")
    return files[-1]


def main(argv: list[str] | None = None) -> int:
    """Regenerate the docs page from a results file."""
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else latest()
    write_docs(json.loads(path.read_text()))
    print(f"wrote {DOCS.relative_to(ROOT)} from {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
