"""The benchmark harness's pure parts: workload, world, measurement windows, ratios, report."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from collections import Counter
from typing import Any

import pytest

from bench import report
from bench.measure import Sample, trend, window
from bench.profile import frame_name, summarise, thread_kind
from bench.workload import (
    CATALOG,
    REVOKED,
    CatalogSpec,
    CertificateSpec,
    Workload,
    generate,
    history,
    home_program,
    program_runs,
    run_key,
    username,
    world_calls,
)

MB = 2**20


# ---------------------------------------------------------------------------- workload


@pytest.fixture(scope="module")
def specs() -> list[CertificateSpec | CatalogSpec]:
    return list(generate(Workload(events=20_000)))


def test_the_workload_has_the_issues_proportions(
    specs: list[CertificateSpec | CatalogSpec],
) -> None:
    """80% certificate events (a tenth revoked), 20% catalog changes (a fifth self-paced).

    5% of certificates are audit, 5% honor.
    """
    certificates = [spec for spec in specs if isinstance(spec, CertificateSpec)]
    catalog = [spec for spec in specs if isinstance(spec, CatalogSpec)]
    assert len(certificates) + len(catalog) == 20_000
    assert len(certificates) / 20_000 == pytest.approx(0.8, abs=0.01)
    revoked = sum(spec.event_type == REVOKED for spec in certificates)
    assert revoked / len(certificates) == pytest.approx(0.1, abs=0.01)
    modes = Counter(spec.mode for spec in certificates)
    assert modes["audit"] / len(certificates) == pytest.approx(0.05, abs=0.01)
    assert modes["honor"] / len(certificates) == pytest.approx(0.05, abs=0.01)
    assert all(spec.event_type == CATALOG for spec in catalog)
    self_paced = sum(spec.pacing == "self" for spec in catalog)
    assert self_paced / len(catalog) == pytest.approx(0.2, abs=0.02)


def test_the_workload_spans_its_learners_and_runs(
    specs: list[CertificateSpec | CatalogSpec],
) -> None:
    """Learners come from the 20,000, runs from the 200; most certificates are in the home program.

    80% are drawn there, plus the share of the random 20% that land there by chance.
    """
    workload = Workload()
    certificates = [spec for spec in specs if isinstance(spec, CertificateSpec)]
    users = {spec.user_id for spec in certificates}
    assert min(users) >= workload.first_user_id
    assert max(users) < workload.first_user_id + workload.learners
    assert len(users) > 10_000  # 16,000 events over 20,000 learners reach most of them
    runs = {run_key(index) for index in range(workload.course_runs)}
    assert {spec.course_run for spec in specs} == runs
    home = sum(
        spec.course_run
        in {run_key(i) for i in program_runs(workload, home_program(workload, spec.user_id))}
        for spec in certificates
    )
    assert home / len(certificates) == pytest.approx(0.8 + 0.2 * 4 / 200, abs=0.01)


def test_programs_partition_the_runs_four_to_a_program() -> None:
    """Each of the 200 runs is in exactly one of the 50 programs, four runs each."""
    workload = Workload()
    owners = Counter(
        index for program in range(workload.programs) for index in program_runs(workload, program)
    )
    assert set(owners) == set(range(200))
    assert set(owners.values()) == {1}
    assert {len(program_runs(workload, program)) for program in range(50)} == {4}


def test_the_workload_is_reproducible_and_its_prefix_is_the_small_workload() -> None:
    """Same seed, same events; the first N events of a large workload are the N-event one."""
    large = Workload(events=5_000)
    assert list(generate(large)) == list(generate(Workload(events=5_000)))
    assert list(generate(large.prefix(700))) == list(itertools.islice(generate(large), 700))
    assert list(generate(Workload(events=50, seed=1))) != list(generate(Workload(events=50)))


def test_a_workload_refuses_impossible_shapes() -> None:
    with pytest.raises(ValueError, match="multiple"):
        Workload(course_runs=201)
    with pytest.raises(ValueError, match="shares"):
        Workload(certificate_share=1.2)


def test_the_world_holds_each_learner_once_with_their_history_and_every_run() -> None:
    """The fake's seed holds every run (with a verified config), program and learner, once.

    Each learner of the specs comes with the runs of their history as credentials and LMS
    certificates; the LMS holds each event's certificate; per-event services get the latency.
    """
    workload = Workload(events=300)
    specs = list(generate(workload))
    calls = world_calls(workload, specs, latency=0.05)
    by_method = Counter(call["method"] for call in calls)
    learners = {spec.user_id for spec in specs if isinstance(spec, CertificateSpec)}
    assert by_method["add_course_run"] == by_method["add_course_certificate_config"] == 200
    assert by_method["add_program"] == 50
    added = [call["kwargs"] for call in calls if call["method"] == "add_user"]
    assert sorted(kwargs["lms_user_id"] for kwargs in added) == sorted(learners)  # type: ignore[index]
    held = sum(len(history(workload, user_id)) for user_id in learners)
    assert by_method["add_credential"] == held
    certificates = sum(isinstance(spec, CertificateSpec) for spec in specs)
    assert by_method["add_lms_certificate"] == held + certificates
    latency = [call["kwargs"] for call in calls if call["method"] == "set_latency"]
    services = {kwargs["service"] for kwargs in latency}  # type: ignore[index]
    assert services == {"credentials", "lms", "studio"}


def test_history_is_the_first_runs_of_the_home_program() -> None:
    workload = Workload()
    assert history(workload, 1000) == ()  # 1000 % 4 == 0
    runs = program_runs(workload, home_program(workload, 1003))
    assert history(workload, 1003) == tuple(run_key(index) for index in runs[:3])
    assert username(1003) == "learner1003"


# ---------------------------------------------------------------------------- measurement


def _sample(
    at: float, done: int, *, started: bool = True, cpu: float = 0.0, rss: int = 0
) -> Sample:
    return Sample(at=at, started=started, done=done, cpu=cpu, rss=rss)


def test_the_window_runs_from_the_assignment_to_the_last_event_interpolated() -> None:
    """From the assignment to the last event done, both ends interpolated between samples.

    Start: midway between the last sample before the assignment and the first after it.
    End: where the count reaches the total, between the samples around it; CPU likewise.
    """
    samples = [
        _sample(0.0, 0, started=False, cpu=1.0),
        _sample(1.0, 0, started=False, cpu=1.2),
        _sample(2.0, 100, cpu=2.2),
        _sample(3.0, 600, cpu=3.2),
        _sample(4.0, 1000, cpu=4.2),
        _sample(5.0, 1000, cpu=4.3),
    ]
    measured = window(samples, 800)
    # start at 1.5 s (cpu 1.7); end between 3.0 (600) and 4.0 (1000): 3.5 s (cpu 3.7)
    assert measured.seconds == pytest.approx(2.0)
    assert measured.cpu_seconds == pytest.approx(2.0)
    assert measured.rate == pytest.approx(400.0)
    assert measured.cpu_per_event == pytest.approx(2.0 / 800)


def test_the_window_needs_a_start_and_an_end() -> None:
    with pytest.raises(ValueError, match="never"):
        window([_sample(0.0, 10), _sample(1.0, 20)], 30)


def test_memory_that_stays_put_is_flat_and_memory_that_climbs_is_growing() -> None:
    flat = [_sample(i, i * 10, rss=(100 + i % 3) * MB) for i in range(50)]
    assert trend(flat, 10_000).verdict == "flat"
    growing = [_sample(i, i * 10, rss=(100 + 2 * i) * MB) for i in range(50)]
    judged = trend(growing, 10_000)
    assert judged.verdict == "growing"
    assert judged.late_mb > judged.early_mb


def test_warm_up_and_the_idle_tail_do_not_count_as_growth() -> None:
    """Memory that fills in the first fifth and samples after the last event are not judged."""
    samples = [_sample(i, i * 10, rss=(60 + min(i, 8) * 10) * MB) for i in range(40)]
    samples += [_sample(40 + i, 400, rss=400 * MB) for i in range(5)]
    assert trend(samples, 400).verdict == "flat"


# ---------------------------------------------------------------------------- ratios and targets


def _results(**rates: float) -> dict[str, Any]:
    contenders = {
        name: {"events": 1000, "events_per_second": rate, "cpu_ms_per_event": 1.0}
        for name, rate in rates.items()
    }
    return {"contenders": contenders, "parameters": {"latency_seconds": 0.05}}


def test_ratios_compare_contenders_of_one_run() -> None:
    results = _results(
        consume_ceiling=100_000,
        decode_ceiling=50_000,
        route_ceiling=40_000,
        worker_dry_run=20_000,
        naive=5,
        worker_live=300,
    )
    results["contenders"]["worker_live"]["latency_bound_events_per_second"] = 600
    found = report.ratios(results)
    assert found == {
        "worker_dry_run / decode_ceiling": pytest.approx(0.4),
        "worker_dry_run / route_ceiling": pytest.approx(0.5),
        "worker_dry_run / consume_ceiling": pytest.approx(0.2),
        "decode_ceiling / consume_ceiling": pytest.approx(0.5),
        "route_ceiling / decode_ceiling": pytest.approx(0.8),
        "worker_live / naive": pytest.approx(60.0),
        "worker_live / latency_bound": pytest.approx(0.5),
    }


def test_a_ratio_of_a_contender_not_run_is_none() -> None:
    found = report.ratios(_results(decode_ceiling=50_000))
    assert found["worker_dry_run / decode_ceiling"] is None
    assert found["worker_live / latency_bound"] is None


def test_targets_say_met_missed_or_not_run() -> None:
    results = _results(decode_ceiling=20_000, worker_dry_run=12_000, naive=5, worker_live=150)
    results["contenders"]["worker_live"]["cpu_ms_per_event"] = 2.0
    results["ratios"] = report.ratios(results)
    found = {item["target"]: item["met"] for item in report.targets(results)}
    assert found["worker dry-run ≥ 10,000 events/s"] is True
    assert found["worker dry-run ≥ 40% of the decode ceiling"] is True
    assert found["worker vs fake: CPU ≤ 1.5 ms per event"] is False
    assert found["worker vs fake ≥ 40× the naive consumer"] is False  # noqa: RUF001 - 30 times
    assert found["worker vs fake ≥ 70% of its latency bound"] is None  # no bound measured
    assert found["dry-run peak RSS ≤ 200 MB on the backlog"] is None  # memory run skipped


# ---------------------------------------------------------------------------- profile


def test_a_profile_is_summarised_by_thread_self_and_inclusive_time() -> None:
    """Shares by thread kind and leaf; inclusive shares leave out each thread's entry points."""
    lines = [
        "thread (0x1): MainThread;run (consumer/engine.py:10);"
        "decode (/x/site-packages/consumer/wire.py:5) 30",
        "thread (0x1): MainThread;run (consumer/engine.py:10);poll (consumer/engine.py:20) 30",
        "thread (0x2): worker_3;work (concurrent/futures/thread.py:1);"
        "handle (consumer/handlers.py:2) 50",
        "thread (0x3): worker_12;work (concurrent/futures/thread.py:1);"
        "dumps (/usr/lib/python3.11/json/__init__.py:9) 10",
        "garbage line",
    ]
    summary = summarise(lines)
    assert summary.samples == 120
    assert [(entry.name, entry.samples) for entry in summary.threads] == [
        ("MainThread", 60),
        ("worker_", 60),
    ]
    assert summary.self_time[0].name == "handle (consumer/handlers.py)"
    assert summary.self_time[0].share == pytest.approx(50 / 120)
    inclusive = {entry.name: entry.samples for entry in summary.inclusive}
    # run and work sit under every sample of their thread: entry points, left out
    assert inclusive == {
        "handle (consumer/handlers.py)": 50,
        "decode (consumer/wire.py)": 30,
        "poll (consumer/engine.py)": 30,
        "dumps (json/__init__.py)": 10,
    }


def test_frame_and_thread_names_read_the_same_from_any_machine() -> None:
    assert frame_name("f (/a/b/.venv/lib/python3.11/site-packages/fastavro/read.py:3)") == (
        "f (fastavro/read.py)"
    )
    assert frame_name("g (/work/x/consumer/engine.py:9)") == "g (consumer/engine.py)"
    assert thread_kind("ThreadPoolExecutor-0_12") == "ThreadPoolExecutor-_"
    assert thread_kind("worker_7") == "worker_"


# ---------------------------------------------------------------------------- report


def _full_results() -> dict[str, Any]:
    results = _results(
        consume_ceiling=150_000,
        decode_ceiling=70_000,
        route_ceiling=50_000,
        worker_dry_run=4_000,
        naive=7,
        worker_live=230,
    )
    for item in results["contenders"].values():
        item.update({"peak_rss_mb": 100.0, "load_1m": 1.5})
    results["contenders"]["worker_live"].update(
        {"requests_per_event": 2.2, "latency_bound_events_per_second": 580.0}
    )
    results.update(
        {
            "file": "20260101T000000Z.json",
            "timestamp": "2026-01-01T00:00:00+00:00",
            "command": "make bench",
            "machine": {"cpus": 2, "commit": "abc"},
            "parameters": {
                **{key: getattr(Workload(), key) for key in Workload.__dataclass_fields__},
                "live_events": 10_000,
                "naive_events": 1_000,
                "latency_seconds": 0.05,
                "in_flight": 64,
            },
            "memory": {
                "events": 1_000_000,
                "peak_rss_mb": 150.0,
                "trend": "flat",
                "early_mb": 140.0,
                "late_mb": 142.0,
                "samples": [[0, 90.0], [500_000, 140.0], [1_000_000, 141.0]],
            },
        }
    )
    results["ratios"] = report.ratios(results)
    results["targets"] = report.targets(results)
    return results


def test_the_page_has_every_contender_ratio_and_target() -> None:
    page = report.page(_full_results())
    for label in report.LABELS.values():
        assert label.split(",")[0] in page
    assert "| worker_live / naive | 32.857 |" in page
    assert "64 ÷ (2.20 × 0.05 s) = 580 events/s" in page  # noqa: RUF001 - the page's sign
    assert "dry-run RSS flat over the backlog | flat | met |" in page


def test_the_hand_written_analysis_follows_the_targets_and_survives_regeneration() -> None:
    """The page is generated; what a person wrote about it comes from bench/analysis.md."""
    page = report.page(_full_results(), "## What changed\n\nInline dry run: 3x the rate.\n")
    assert (
        page.index("## Targets (issue 13)")
        < page.index("## What changed")
        < page.index("## Reproduce")
    )
    assert "Inline dry run: 3x the rate." in page
    assert "## What changed" not in report.page(_full_results())


def test_the_plots_are_well_formed_svg() -> None:
    results = _full_results()
    for svg in (report.throughput_svg(results), report.memory_svg(results["memory"])):
        root = ET.fromstring(svg)
        assert root.tag.endswith("svg")
