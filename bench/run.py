"""``make bench``: the contenders side by side on one workload, on the real broker.

Steps (each contender a process of its own, one after the other, on the same topic):

1. produce the workload the LMS's way (``bench.lms``) to a fresh topic, and its first
   ``--live-events`` to a second one for the live contenders;
2. the consume ceiling, the decode ceiling and the route-and-decode ceiling
   (``bench.contenders``);
3. the worker in dry-run (``credentials-consumer run --stop-when-idle``, its own group,
   commands to /dev/null, metrics scraped for progress);
4. the fake Open edX's own capacity at the worker's concurrency (``bench.fake``);
5. the naive consumer, then the worker, each against a fresh fake with latency L;
6. unless ``--no-profile``: py-spy on another dry-run of the worker (``bench.profile``);
7. unless ``--memory-events 0``: the worker in dry-run on a backlog of that many events,
   RSS sampled every second.

Results go to ``bench/results/<UTC timestamp>.json`` and ``docs/benchmarks.md`` (with its
plots). The topics are deleted at the end. Needs the broker and registry of ``dev/stack``
(``make bench`` starts them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import confluent_kafka

from bench import report
from bench.fake import capacity as fake_capacity
from bench.fake import request_mix, running_fake
from bench.lms import create_topic, delete_topics, produce
from bench.measure import Sample, free_port, outcomes, scrape, trend, watch, window
from bench.profile import summarise
from bench.workload import CertificateSpec, Workload, generate, run_key, username, world_calls
from tests.fakes.openedx.settings import service_env

ROOT = Path(__file__).resolve().parents[1]
MB = 2**20


def log(message: str) -> None:
    """Progress on stdout, with the time."""
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (other work on this shared machine)."""
    return [round(value, 2) for value in os.getloadavg()]


def machine_facts() -> dict[str, Any]:
    """What the figures depend on."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    commit = subprocess.run(
        ["git", "describe", "--always", "--dirty"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(memory_kb / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "confluent_kafka": confluent_kafka.version()[0],
        "librdkafka": confluent_kafka.libversion()[0],
        "commit": commit,
        "load_at_start": load_average(),
    }


# ---------------------------------------------------------------------------- environments


def base_env(bootstrap: str, registry: str) -> dict[str, str]:
    """This environment without any worker setting, plus the stack's addresses."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CONSUMER_", "EVENT_BUS_", "BACKEND_SERVICE_"))
    }
    env["EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
    env["EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL"] = registry
    env["PYTHONPATH"] = str(ROOT)
    return env


def worker_env(
    base: Mapping[str, str], topic: str, *, urls: Mapping[str, str] | None, in_flight: int
) -> dict[str, str]:
    """A worker's settings: its own group, metrics on a free port; dry-run without ``urls``."""
    env = dict(base)
    env.update(
        {
            "CONSUMER_TOPICS": topic,
            "CONSUMER_GROUP_ID": f"bench-worker-{uuid.uuid4().hex[:12]}",
            "CONSUMER_METRICS_PORT": str(free_port()),
            "CONSUMER_LOG_FORMAT": "json",
            "CONSUMER_MAX_IN_FLIGHT": str(in_flight),
        }
    )
    if urls is None:
        env.update({"CONSUMER_DRY_RUN": "true", "CONSUMER_DRY_RUN_OUTPUT": os.devnull})
    else:
        env.update(service_env(urls))
    return env


# ---------------------------------------------------------------------------- contenders


def figures(
    events: int, seconds: float, cpu_seconds: float, peak_rss: int, load: list[float]
) -> dict[str, Any]:
    """One contender's row."""
    return {
        "events": events,
        "seconds": round(seconds, 3),
        "events_per_second": round(events / seconds, 1) if seconds > 0 else 0.0,
        "cpu_seconds": round(cpu_seconds, 3),
        "cpu_ms_per_event": round(cpu_seconds / events * 1000, 4) if events else None,
        "peak_rss_mb": round(peak_rss / MB, 1),
        "load_1m": load[0],
    }


def run_own(contender: str, topic: str, events: int, env: Mapping[str, str]) -> dict[str, Any]:
    """Run one of ``bench.contenders`` as a process; its clocks, the kernel's rusage."""
    load = load_average()
    command = [sys.executable, "-m", "bench.contenders", contender, "--topic", topic]
    process = subprocess.Popen(
        [*command, "--events", str(events)], cwd=ROOT, env=dict(env), stdout=subprocess.PIPE
    )
    assert process.stdout is not None
    output = process.stdout.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0 or not output.strip():
        raise RuntimeError(f"{contender} failed ({process.returncode}): {output[-500:]}")
    result = json.loads(output.strip().splitlines()[-1])
    row = figures(
        result["events"], result["seconds"], result["cpu_seconds"], usage.ru_maxrss * 1024, load
    )
    row["cpu_seconds_whole_process"] = round(usage.ru_utime + usage.ru_stime, 3)
    row.update({key: value for key, value in result.items() if key not in row})
    return row


def run_worker(
    events: int,
    env: Mapping[str, str],
    *,
    idle: float,
    workdir: Path,
    name: str,
    interval: float = 0.2,
    on_sample: Callable[[Sample], None] | None = None,
    wrapper: list[str] | None = None,
) -> tuple[dict[str, Any], list[Sample]]:
    """The worker as a process, sampled from outside until it stops when idle."""
    load = load_average()
    port = int(env["CONSUMER_METRICS_PORT"])
    finished: dict[str, float] = {}

    def progress() -> Mapping[str, float]:
        seen = scrape(port)
        if seen["done"] >= events and not finished:
            finished.update(outcomes(port))
        return seen

    with (workdir / f"{name}.log").open("wb") as stderr:
        process = subprocess.Popen(
            [
                *(wrapper or []),
                sys.executable,
                "-m",
                "consumer",
                "run",
                "--stop-when-idle",
                str(idle),
            ],
            cwd=ROOT,
            env=dict(env),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        watched = watch(process, progress, interval=interval, on_sample=on_sample)
    if watched.returncode != 0:
        raise RuntimeError(f"{name} exited {watched.returncode}; see {workdir / name}.log")
    measured = window(watched.samples, events)
    row = figures(events, measured.seconds, measured.cpu_seconds, watched.peak_rss, load)
    row["cpu_seconds_whole_process"] = round(watched.cpu_total, 3)
    row["outcomes"] = finished
    return row, watched.samples


def profile_worker(
    topic: str,
    events: int,
    base: Mapping[str, str],
    *,
    idle: float,
    in_flight: int,
    workdir: Path,
    output: Path,
) -> dict[str, Any]:
    """py-spy over a dry-run of the worker into ``output`` (collapsed stacks); its summary."""
    spy = [
        str(Path(sys.executable).parent / "py-spy"),
        "record",
        "--format",
        "raw",
        "--threads",
        "--function",
        "--gil",
        "--rate",
        "100",
        "--output",
        str(output),
        "--",
    ]
    env = worker_env(base, topic, urls=None, in_flight=in_flight)
    run_worker(events, env, idle=idle, workdir=workdir, name="profile", wrapper=spy)
    summary = summarise(output.read_text().splitlines(), top=30)
    return {
        "command": "py-spy record --format raw --threads --function --gil --rate 100 -- "
        "python -m consumer run --stop-when-idle ...",
        "raw": output.name,
        "samples": summary.samples,
        "threads": [asdict(entry) for entry in summary.threads],
        "self_time": [asdict(entry) for entry in summary.self_time],
        "inclusive": [asdict(entry) for entry in summary.inclusive],
    }


# ---------------------------------------------------------------------------- the run


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    defaults = Workload()
    parser.add_argument("--events", type=int, default=defaults.events)
    parser.add_argument("--partitions", type=int, default=defaults.partitions)
    parser.add_argument("--live-events", type=int, default=10_000, help="worker vs the fake")
    parser.add_argument("--naive-events", type=int, default=1_000, help="naive vs the fake")
    parser.add_argument("--latency", type=float, default=0.05, help="L, seconds per request")
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument(
        "--memory-events", type=int, default=1_000_000, help="backlog of the memory run; 0: skip"
    )
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profile")
    parser.add_argument("--idle", type=float, default=3.0, help="the worker's --stop-when-idle")
    parser.add_argument("--fake-seconds", type=float, default=6.0, help="per capacity probe")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep the worker logs of a successful run"
    )
    return parser


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0915 - one step after the other
    """Run the benchmark; write the results file and the docs page."""
    args = _parser().parse_args(argv)
    bootstrap = os.environ["EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS"]
    registry = os.environ["EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL"]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    workdir = ROOT / ".local" / "bench" / stamp
    workdir.mkdir(parents=True, exist_ok=True)
    report.RESULTS.mkdir(parents=True, exist_ok=True)
    workload = Workload(events=args.events, partitions=args.partitions)
    live = workload.prefix(args.live_events)
    naive_events = min(args.naive_events, live.events)
    shown = " ".join(shlex.quote(arg) for arg in (sys.argv[1:] if argv is None else argv))
    results: dict[str, Any] = {
        "file": f"{stamp}.json",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "make bench" + (f' BENCH_ARGS="{shown}"' if shown else ""),
        "parameters": {
            **asdict(workload),
            "live_events": live.events,
            "naive_events": naive_events,
            "latency_seconds": args.latency,
            "in_flight": args.in_flight,
            "memory_events": args.memory_events,
            "idle_seconds": args.idle,
        },
        "machine": machine_facts(),
        "contenders": {},
    }
    contenders: dict[str, Any] = results["contenders"]
    base = base_env(bootstrap, registry)
    main_topic, live_topic = f"bench-{stamp}-main", f"bench-{stamp}-live"
    topics = [main_topic, live_topic]
    log(f"bench {stamp}: load {load_average()}; work files in {workdir}")
    try:
        create_topic(bootstrap, main_topic, workload.partitions)
        started = time.monotonic()
        produce(bootstrap, registry, main_topic, generate(workload), progress=_every("produced"))
        seconds = time.monotonic() - started
        results["produce"] = {
            "events": workload.events,
            "seconds": round(seconds, 1),
            "events_per_second": round(workload.events / seconds),
        }
        log(f"produced {workload.events:,} events in {seconds:.1f}s")
        live_specs = list(generate(live))
        create_topic(bootstrap, live_topic, workload.partitions)
        produce(bootstrap, registry, live_topic, live_specs)

        for name in ("consume", "decode", "route"):
            log(f"{name} ceiling")
            contenders[f"{name}_ceiling"] = run_own(name, main_topic, workload.events, base)
            _show(contenders[f"{name}_ceiling"])

        log("worker, dry-run")
        env = worker_env(base, main_topic, urls=None, in_flight=args.in_flight)
        contenders["worker_dry_run"], _ = run_worker(
            workload.events, env, idle=args.idle, workdir=workdir, name="dry-run"
        )
        _show(contenders["worker_dry_run"])

        calls = world_calls(live, live_specs, latency=args.latency)
        learners = sorted(
            {username(spec.user_id) for spec in live_specs if isinstance(spec, CertificateSpec)}
        )
        log("the fake's capacity")
        with running_fake(calls) as fake:
            mix = request_mix(fake, learners[:2000], [run_key(i) for i in range(live.course_runs)])
            probes = [
                fake_capacity(
                    fake,
                    mix,
                    concurrency=args.in_flight,
                    latency=latency,
                    seconds=args.fake_seconds,
                )
                for latency in (0.0, args.latency)
            ]
        needed = args.in_flight / args.latency
        results["fake"] = {
            "capacity": [probe.as_json() for probe in probes],
            "needed_requests_per_second": needed,
            "twice_needed": 2 * needed,
            "capacity_requests_per_second": round(probes[0].requests_per_second),
            "enough": probes[0].requests_per_second >= 2 * needed,
        }
        log(f"fake: {results['fake']}")

        log(f"naive consumer vs fake ({naive_events:,} events)")
        with running_fake(calls) as fake:
            env = worker_env(base, live_topic, urls=fake.urls, in_flight=args.in_flight)
            row = run_own("naive", live_topic, naive_events, env)
            _per_request(row, fake.per_event_requests(), args.latency, 1)
            contenders["naive"] = row
        _show(contenders["naive"])

        log(f"worker vs fake ({live.events:,} events, in-flight {args.in_flight})")
        with running_fake(calls) as fake:
            env = worker_env(base, live_topic, urls=fake.urls, in_flight=args.in_flight)
            row, _ = run_worker(live.events, env, idle=args.idle, workdir=workdir, name="live")
            _per_request(row, fake.per_event_requests(), args.latency, args.in_flight)
            row["served"] = fake.served()
            contenders["worker_live"] = row
        _show(contenders["worker_live"])

        if not args.no_profile:
            log("profile of the dry-run worker (py-spy)")
            results["profile"] = profile_worker(
                main_topic,
                workload.events,
                base,
                idle=args.idle,
                in_flight=args.in_flight,
                workdir=workdir,
                output=report.RESULTS / f"{stamp}-profile.txt",
            )
            for entry in results["profile"]["self_time"][:10]:
                log(f"  {entry['share']:6.1%}  {entry['name']}")

        if args.memory_events:
            memory_topic = f"bench-{stamp}-memory"
            topics.append(memory_topic)
            backlog = Workload(events=args.memory_events, partitions=args.partitions)
            create_topic(bootstrap, memory_topic, backlog.partitions)
            log(f"memory run: producing {backlog.events:,} events")
            produce(
                bootstrap, registry, memory_topic, generate(backlog), progress=_every("produced")
            )
            log("memory run: the worker drains the backlog")
            env = worker_env(base, memory_topic, urls=None, in_flight=args.in_flight)
            row, samples = run_worker(
                backlog.events,
                env,
                idle=args.idle,
                workdir=workdir,
                name="memory",
                interval=0.5,
            )
            results["memory"] = {
                "events": backlog.events,
                "events_per_second": row["events_per_second"],
                "cpu_ms_per_event": row["cpu_ms_per_event"],
                "peak_rss_mb": row["peak_rss_mb"],
                **_judged(samples, backlog.events),
                "samples": [
                    [sample.done, round(sample.rss / MB, 1)]
                    for sample in samples[:: max(1, len(samples) // 500)]
                ],
            }
            log(f"memory: peak {row['peak_rss_mb']} MB, {results['memory']['trend']}")
    finally:
        delete_topics(bootstrap, [*topics, *(f"{topic}.dlq" for topic in topics)])
        results["machine"]["load_at_end"] = load_average()
    results["ratios"] = report.ratios(results)
    results["targets"] = report.targets(results)
    report.RESULTS.mkdir(parents=True, exist_ok=True)
    path = report.RESULTS / results["file"]
    path.write_text(json.dumps(results, indent=2) + "\n")
    log(f"results: {path.relative_to(ROOT)}")
    if not args.no_docs:
        report.write_docs(results)
        log(f"docs: {report.DOCS.relative_to(ROOT)}")
    if not args.keep_logs:
        shutil.rmtree(workdir)  # the worker's logs: hundreds of MB after a memory run
    for item in results["targets"]:
        log(f"  {report._met(item['met']):>10}  {item['target']}: {report._value(item['value'])}")
    return 0


def _judged(samples: list[Sample], events: int) -> dict[str, Any]:
    """Flat or growing; a drain too short to sample says so instead."""
    try:
        judged = trend(samples, events)
    except ValueError:
        return {"trend": "too short to judge", "early_mb": None, "late_mb": None}
    return {
        "trend": judged.verdict,
        "early_mb": round(judged.early_mb, 1),
        "late_mb": round(judged.late_mb, 1),
    }


def _per_request(row: dict[str, Any], requests: int, latency: float, in_flight: int) -> None:
    """Requests per event and the latency bound: in-flight ÷ (requests per event × L)."""
    per_event = requests / row["events"] if row["events"] else 0.0
    row["requests"] = requests
    row["requests_per_event"] = round(per_event, 3)
    row["latency_bound_events_per_second"] = (
        round(in_flight / (per_event * latency), 1) if per_event and latency else None
    )
    row["note"] = (
        f"{per_event:.2f} requests/event; latency bound {row['latency_bound_events_per_second']:,}"
        " events/s"
        if row["latency_bound_events_per_second"]
        else ""
    )


def _every(what: str) -> Callable[[int], None]:
    def progress(count: int) -> None:
        if count % 100_000 == 0:
            log(f"  {what} {count:,}")

    return progress


def _show(row: Mapping[str, Any]) -> None:
    log(
        f"  {row['events']:,} events, {row['events_per_second']:,} events/s, "
        f"{row['cpu_ms_per_event']} ms CPU/event, peak RSS {row['peak_rss_mb']} MB"
    )


if __name__ == "__main__":
    sys.exit(main())
