"""Run a soak: a private broker and registry, the fake Open edX, the worker as processes.

Order of a run:

1. ``dev/stack`` starts a broker and a registry on free ports; the fake Open edX starts as a
   process (one port per service, so one service can refuse connections alone).
2. Warm-up: one certificate event per course run, published the LMS's way and read back, to
   learn each run's partition (``workload``). Then programs, learners, the LMS's
   certificates and the failing learners are set up in the fake.
3. The worker starts (``python -m consumer run``, JSON logs to files). Events are published
   at a steady rate by a thread, poison records among them; a sampler thread records the
   group's committed offsets, the topics' ends and the workers' RSS every second; the main
   thread runs the fault schedule.
4. Once everything is published and every fault is over, the soak waits until the group has
   committed the end of every partition (the drain), then stops the worker with SIGTERM,
   runs ``check`` and ``dlq inspect --json``, and saves what the audit needs in the work
   directory: the event log read back and decoded, the dead-letter topics, the fake's
   request log and final state, the samples, the fault timeline.

The soak's configuration carries real-looking secrets (OAuth client secret, registry key and
secret, and for the probes a SASL password) so that the audit's grep for them means
something. The broker has no SASL listener, so the SASL password is only given to the
``check`` and ``run`` probes, which must fail cleanly without printing it.
"""

from __future__ import annotations

import gc
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from consumer.deadletter.records import HEADER_PREFIX
from consumer.errors import DecodeError
from consumer.events import EventType, build_event
from consumer.wire import (
    Decoder,
    Record,
    RegistryWriterSchemas,
    event_meta,
    load_reader_schemas,
    registry_client,
)
from tests.chaos.faults import FULL, SMALL, Fault, FaultKind, Schedule
from tests.chaos.stack import ROOT, PrivateStack
from tests.chaos.workload import (
    Catalogue,
    LearnerSpec,
    Planned,
    Planner,
    add_programs,
    lms_certificates,
    make_catalogue,
    warmup_events,
)
from tests.fakes.openedx import RemoteFake
from tests.fakes.openedx.settings import service_env
from tests.support.hostile import CRASH_SCHEMAS, HANG_BODY, HANG_SCHEMA
from tests.support.lms import LmsProducer, catalog_data
from tests.support.poison import poison_variants
from tests.support.registry import register_raw_schema
from tests.support.worker import WorkerProcess

CERTIFICATE_TOPIC = "learning-certificate-lifecycle"
CATALOG_TOPIC = "course-catalog-info-changed"
SERVICES = ("oauth", "credentials", "lms", "studio", "discovery")
Action = Callable[[], object]


@dataclass(frozen=True, slots=True)
class SoakParams:
    """What to run: how many events, how fast, which faults."""

    events: int = 50_000
    rate: float = 100.0
    """Events published per second: the window is ``events / rate`` seconds."""
    seed: int = 14
    partitions: int = 6
    schedule: Schedule = FULL
    poison_copies: int = 2
    in_flight: int = 32
    drain_timeout: float = 900.0

    @classmethod
    def small(cls) -> SoakParams:
        """The version ``make test`` runs: a few thousand events, a few faults."""
        return cls(
            events=3000,
            rate=60.0,
            partitions=3,
            schedule=SMALL,
            poison_copies=1,
            drain_timeout=240.0,
        )


def log(message: str) -> None:
    """Progress for the person running the soak (stderr, wall time)."""
    print(f"{time.strftime('%H:%M:%S')} chaos: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True)
class Poison:
    """A poison record to publish: raw bytes, or (``date_out_of_range``) an LMS event."""

    reason: str
    value: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    run: str = ""


@dataclass(slots=True)
class Secrets:
    """Real-looking secrets in the soak's configuration (the audit greps for each)."""

    oauth_secret: str = field(default_factory=lambda: secrets.token_urlsafe(30))
    registry_key: str = field(default_factory=lambda: "SR" + secrets.token_hex(8).upper())
    registry_secret: str = field(default_factory=lambda: secrets.token_urlsafe(40))
    sasl_key: str = field(default_factory=lambda: "AK" + secrets.token_hex(8).upper())
    sasl_password: str = field(default_factory=lambda: secrets.token_urlsafe(40))


# ---------------------------------------------------------------------------- the fake


@contextmanager
def fake_process(workdir: Path, seed: int) -> Iterator[tuple[RemoteFake, dict[str, str]]]:
    """``python -m tests.fakes.openedx`` with one port per service; (control, service URLs)."""
    log_file = (workdir / "fake.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.openedx",
            "--per-service-ports",
            "--random-seed",
            str(seed),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=log_file,
        text=True,
    )
    try:
        assert process.stdout is not None
        started = json.loads(process.stdout.readline())
        yield RemoteFake(started["url"], timeout=120), started["urls"]
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log_file.close()


# ---------------------------------------------------------------------------- kafka helpers


def create_topics(bootstrap: str, topics: dict[str, int]) -> None:
    """Create ``{name: partitions}`` and wait for the broker."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [
            NewTopic(name, num_partitions=count, replication_factor=1)
            for name, count in topics.items()
        ]
    )
    for future in futures.values():
        future.result(timeout=60)


def read_topic(bootstrap: str, topic: str, *, timeout: float = 120.0) -> list[Record]:
    """Every record of ``topic`` up to its current end (a throwaway group, no commits)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"chaos-reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=30)
        partitions = sorted(metadata.topics[topic].partitions)
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
            for p in partitions
        }
        pending = {p for p, end in ends.items() if end > 0}
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        records: list[Record] = []
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.5):
                if message.error() is not None:
                    continue
                record = Record.from_message(message)
                records.append(record)
                if record.offset >= ends[record.partition] - 1:
                    pending.discard(record.partition)
        if pending:
            raise RuntimeError(f"could not read {topic} to its end (partitions {pending})")
        return sorted(records, key=lambda record: (record.partition, record.offset))
    finally:
        consumer.close()


class RawProducer:
    """Publishes records byte for byte (poison) and remembers where each one landed."""

    def __init__(self, bootstrap: str) -> None:
        self._producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
        self.delivered: list[dict[str, Any]] = []
        self.errors: list[str] = []

    def send(
        self,
        topic: str,
        value: bytes | None,
        headers: list[tuple[str, bytes]],
        partition: int,
        reason: str,
    ) -> None:
        """Publish one record; its position is recorded once acknowledged."""

        def done(error: KafkaError | None, message: Message) -> None:
            if error is not None:
                self.errors.append(str(error))
                return
            self.delivered.append(
                {
                    "topic": message.topic(),
                    "partition": message.partition(),
                    "offset": message.offset(),
                    "reason": reason,
                }
            )

        wire: list[tuple[str, str | bytes | None]] = list(headers)
        self._producer.produce(
            topic,
            value=value,
            key=b"poison",
            headers=wire,
            partition=partition,
            on_delivery=done,
        )
        self._producer.poll(0)

    def flush(self) -> None:
        """Wait for every acknowledgement; fail if one is missing."""
        remaining = self._producer.flush(300)
        if remaining or self.errors:
            raise RuntimeError(f"poison not delivered: {self.errors[:3]} ({remaining} queued)")


# ---------------------------------------------------------------------------- the soak


@dataclass(frozen=True, slots=True)
class Prepared:
    """What a soak publishes and how its workers are configured."""

    partitions: dict[str, int]
    stream: list[Planned]
    poison: dict[int, list[Poison]]
    env: dict[str, str]
    burst: tuple[int, int] | None = None
    """[start, end) indices of the stories a replay takes again."""


@dataclass(slots=True)
class Timeline:
    """What happened when: fault starts and ends, kills, joins (monotonic and wall time)."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def mark(self, what: str, **fields: Any) -> None:
        """Record an entry now."""
        with self.lock:
            self.entries.append(
                {"what": what, "monotonic": time.monotonic(), "wall": time.time(), **fields}
            )
        log(what + (f" {fields}" if fields else ""))


class Soak:
    """One soak run in ``workdir``; ``run()`` leaves everything the audit reads there."""

    def __init__(self, params: SoakParams, workdir: Path) -> None:
        self.params = params
        self.workdir = workdir
        self.rng = random.Random(params.seed)
        # Every soak has a broker, a registry and a fake of its own, so names repeat freely:
        # the same seed gives the same course keys, partitions, programs and stories.
        self.tag = f"{self.rng.getrandbits(24):06x}"
        self.prefix = f"chaos-{self.tag}"
        self.topics = {
            "certificates": f"{self.prefix}-{CERTIFICATE_TOPIC}",
            "catalog": f"{self.prefix}-{CATALOG_TOPIC}",
        }
        self.group = f"{self.prefix}-credentials-consumer"
        self.secrets = Secrets()
        self.timeline = Timeline()
        self.samples: list[dict[str, Any]] = []
        self.workers: dict[str, WorkerProcess] = {}
        self.main: WorkerProcess | None = None
        self.incarnation = 0
        self.published = threading.Event()
        self._workers_lock = threading.Lock()
        self._stop_sampling = threading.Event()
        self.lms_poison: list[str] = []
        """Ids of the poison events published through the LMS producer (dates)."""
        self.env: dict[str, str] = {}
        self._expected_exits: set[str] = set()
        self._stopping = False
        self.replay: WorkerProcess | None = None
        self._replay_thread: threading.Thread | None = None
        for sub in ("workers", "probes", "private"):
            (workdir / sub).mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ environment

    def worker_env(
        self, stack: PrivateStack, urls: dict[str, str], catalogue: Catalogue
    ) -> dict[str, str]:
        """The worker's environment: this stack, the fake, short budgets, real-looking secrets."""
        schedule = self.params.schedule
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(
                (
                    "CONSUMER_",
                    "EVENT_BUS_",
                    "BACKEND_SERVICE_",
                    "CREDENTIALS_",
                    "LMS_",
                    "CMS_",
                    "COURSE_CATALOG_",
                    "PROGRAMS_",
                    "LEARNER_RECORDS_",
                )
            )
        }
        env.update(
            {
                "EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap_servers,
                "EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL": stack.registry_url,
                "EVENT_BUS_KAFKA_SCHEMA_REGISTRY_API_KEY": self.secrets.registry_key,
                "EVENT_BUS_KAFKA_SCHEMA_REGISTRY_API_SECRET": self.secrets.registry_secret,
                "EVENT_BUS_TOPIC_PREFIX": self.prefix,
                "CONSUMER_GROUP_ID": self.group,
                **service_env(
                    urls,
                    client_id="credentials-consumer-chaos",
                    client_secret=self.secrets.oauth_secret,
                ),
                "PROGRAMS_WITHOUT_CERTIFICATES": ",".join(sorted(catalogue.excluded)),
                "CONSUMER_MAX_IN_FLIGHT": str(self.params.in_flight),
                "CONSUMER_COMMIT_INTERVAL_SECONDS": "1",
                "CONSUMER_RETRY_MAX_ATTEMPTS": "6",
                "CONSUMER_RETRY_MAX_SECONDS": str(schedule.retry_seconds),
                "CONSUMER_RETRY_INITIAL_SECONDS": "0.1",
                "CONSUMER_RETRY_MAX_BACKOFF_SECONDS": "2",
                "CONSUMER_CIRCUIT_FAILURE_THRESHOLD": "5",
                "CONSUMER_CIRCUIT_OPEN_SECONDS": "1",
                "CONSUMER_CIRCUIT_MAX_OPEN_SECONDS": "4",
                "CONSUMER_HTTP_CONNECT_TIMEOUT": "1",
                "CONSUMER_HTTP_READ_TIMEOUT": "3",
                "CONSUMER_HTTP_TOTAL_TIMEOUT": "8",
                "CONSUMER_DRAIN_TIMEOUT_SECONDS": "15",
                "CONSUMER_REVOKE_TIMEOUT_SECONDS": "15",
                "CONSUMER_PROGRAM_CACHE_TTL_SECONDS": "10",
                "CONSUMER_METRICS_PORT": "0",
                "CONSUMER_LOG_FORMAT": "json",
                "CONSUMER_LOG_LEVEL": "INFO",
            }
        )
        return env

    # ------------------------------------------------------------------ workers

    def start_main(self, env: dict[str, str]) -> None:
        """Start a new incarnation of the main worker."""
        with self._workers_lock:
            self.incarnation += 1
            name = f"worker-{self.incarnation}"
            self.main = WorkerProcess(env, ["run"], self.workdir / "workers", name)
            self.workers[name] = self.main
        self.timeline.mark("worker_started", worker=name, pid=self.main.process.pid)

    def kill_main(self) -> None:
        """SIGKILL the main worker: no drain, no commit."""
        assert self.main is not None
        name = self.main.name
        with self._workers_lock:
            self._expected_exits.add(name)
        self.main.kill()
        self.timeline.mark("worker_killed", worker=name)

    def _supervise(self) -> None:
        """A worker that died on its own is recorded and, the main one, started again.

        As Kubernetes would restart the pod: the rest of the soak stays meaningful, and the
        audit counts the death (a crash is a defect).
        """
        with self._workers_lock:
            dead = [
                worker
                for name, worker in self.workers.items()
                if worker.process.poll() is not None
                and name not in self._expected_exits
                and not self._stopping
            ]
            for worker in dead:
                self._expected_exits.add(worker.name)
        for worker in dead:
            self.timeline.mark(
                "worker_died", worker=worker.name, exit_code=worker.process.returncode
            )
            if worker is self.main:
                self.start_main(self.env)

    # ------------------------------------------------------------------ sampling

    def _sample_forever(self, bootstrap: str, partitions: dict[str, int]) -> None:
        consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": self.group, "enable.auto.commit": False}
        )
        tps = [
            TopicPartition(topic, p) for topic, count in partitions.items() for p in range(count)
        ]
        try:
            while not self._stop_sampling.wait(1.0):
                self._supervise()
                sample: dict[str, Any] = {"rss": self._rss()}
                try:
                    committed = consumer.committed(tps, timeout=5)
                    sample["committed"] = {
                        f"{tp.topic}:{tp.partition}": tp.offset for tp in committed
                    }
                    sample["ends"] = {
                        f"{tp.topic}:{tp.partition}": consumer.get_watermark_offsets(
                            tp, timeout=5, cached=False
                        )[1]
                        for tp in tps
                    }
                except Exception as error:  # noqa: BLE001 - the broker may be down: no sample
                    sample["error"] = type(error).__name__
                sample["monotonic"] = time.monotonic()  # taken after the reads: a lower bound
                sample["wall"] = time.time()
                self.samples.append(sample)
        finally:
            consumer.close()

    def _rss(self) -> dict[str, int]:
        found = {}
        with self._workers_lock:
            running = [w for w in self.workers.values() if w.process.poll() is None]
        for worker in running:
            try:
                status = Path(f"/proc/{worker.process.pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    found[worker.name] = int(line.split()[1])
        return found

    def drained(self) -> bool:
        """The last sample shows every partition committed up to its end."""
        for sample in reversed(self.samples[-3:]):
            if "committed" in sample:
                committed, ends = sample["committed"], sample["ends"]
                return all(max(committed[tp], 0) >= end for tp, end in ends.items())
        return False

    # ------------------------------------------------------------------ publishing

    def _publish(
        self,
        lms: LmsProducer,
        raw: RawProducer,
        stream: list[Planned],
        poison: dict[int, list[Poison]],
        burst: tuple[int, int] | None,
    ) -> None:
        rate = self.params.rate
        started = time.monotonic()
        first, last = burst or (-1, -1)
        for index, planned in enumerate(stream):
            delay = started + index / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if index == first:  # record timestamps: 50 ms clear of the burst on either side
                time.sleep(0.05)
                self.timeline.mark("burst_started", events=last - first)
            if index == last:
                self.timeline.mark("burst_ended")
                time.sleep(0.05)
            for item in poison.get(index, []):
                if item.run:  # a Studio event whose end has no UTC form
                    self.lms_poison.append(
                        lms.send(
                            EventType.CATALOG_INFO_CHANGED,
                            catalog_data(course_key=item.run, end="0001-01-01T00:00:00+05:00"),
                            self.topics["catalog"],
                        )
                    )
                    continue
                partition = self.rng.randrange(self.params.partitions)
                raw.send(
                    self.topics["certificates"],
                    item.value,
                    list(item.headers),
                    partition,
                    item.reason,
                )
            lms.send(planned.event_type, planned.data, self.topics[planned.topic])
            if index % 5000 == 0 and index:
                log(f"published {index} events")
        lms.flush()
        raw.flush()
        self.timeline.mark("published", events=len(stream))
        self.published.set()

    # ------------------------------------------------------------------ faults

    def _fault_actions(
        self, stack: PrivateStack, fake: RemoteFake, env: dict[str, str]
    ) -> dict[FaultKind, tuple[Action, Action]]:
        """What starts and what ends each kind of fault."""
        schedule = self.params.schedule
        error, timeout, reset = schedule.noise

        def noisy() -> None:
            for service in SERVICES:
                fake.call(
                    "set_chaos",
                    service=service,
                    error_rate=error,
                    timeout_rate=timeout,
                    timeout_seconds=30,
                    reset_rate=reset,
                )

        def outage(service: str, mode: str, **extra: object) -> tuple[Action, Action]:
            return (
                lambda: fake.call("set_outage", service=service, mode=mode, **extra),
                lambda: fake.call("clear_outage", service=service),
            )

        def join() -> None:
            worker = WorkerProcess(env, ["run"], self.workdir / "workers", "second")
            with self._workers_lock:
                self.workers["second"] = worker
            self.timeline.mark("worker_started", worker="second", pid=worker.process.pid)

        def leave() -> None:
            worker = self.workers["second"]
            with self._workers_lock:
                self._expected_exits.add("second")
            worker.terminate()
            code = worker.wait(timeout=60)
            self.timeline.mark("worker_stopped", worker="second", exit_code=code)

        latency = schedule.studio_latency
        return {
            "noise": (noisy, lambda: fake.call("clear_chaos")),
            "credentials_refused": outage("credentials", "refused"),
            "credentials_503": outage(
                "credentials", "503", retry_after=schedule.credentials_retry_after
            ),
            "discovery_down": outage("discovery", "refused"),
            "studio_slow": (
                lambda: fake.call("set_latency", service="studio", seconds=latency),
                lambda: fake.call("set_latency", service="studio", seconds=0),
            ),
            "registry_down": (lambda: stack.stop("registry"), lambda: stack.start("registry")),
            "broker_down": (lambda: stack.stop("kafka"), lambda: stack.start("kafka")),
            "kill_worker": (self.kill_main, lambda: self.start_main(env)),
            "second_worker": (join, leave),
            "replay": (self._replay_begin, self._replay_end),
        }

    def _replay_begin(self) -> None:
        """Start the replay in the background, once the live group has committed the burst.

        The burst holds the whole stories of learners of their own, so the replay re-applies
        finished keys, in order, while the live group goes on with the others. Waiting for
        the commit happens on a thread of its own: the other faults keep their times.
        """
        self._replay_thread = threading.Thread(
            target=self._replay_when_committed, name="replay", daemon=True
        )
        self._replay_thread.start()

    def _replay_when_committed(self) -> None:
        marks = {entry["what"]: entry for entry in self.timeline.entries}
        started, ended = marks.get("burst_started"), marks.get("burst_ended")
        if started is None or ended is None:
            self.timeline.mark("replay_skipped", why="no burst was published")
            return
        topic = self.topics["certificates"]
        ends: dict[str, int] | None = None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            samples = [sample for sample in self.samples if "committed" in sample]
            if ends is None:
                later = [s for s in samples if s["monotonic"] > ended["monotonic"] + 2]
                if later:
                    ends = {tp: end for tp, end in later[0]["ends"].items() if tp.startswith(topic)}
            elif all(samples[-1]["committed"].get(tp, -1) >= end for tp, end in ends.items()):
                break
            time.sleep(1)
        window = (
            datetime.fromtimestamp(started["wall"] - 0.02, UTC),
            datetime.fromtimestamp(ended["wall"] + 0.02, UTC),
        )
        first, last = (moment.isoformat(timespec="milliseconds") for moment in window)
        self.timeline.mark("replay_started", from_datetime=first, to_datetime=last)
        self.replay = WorkerProcess(
            self.env,
            [
                "replay",
                "--topic",
                CERTIFICATE_TOPIC,
                "--from-datetime",
                first,
                "--to-datetime",
                last,
                "--progress-interval",
                "5",
            ],
            self.workdir / "workers",
            "replay",
        )

    def _replay_end(self) -> None:
        """Wait for the replay to start, then to finish its range."""
        if self._replay_thread is not None:
            self._replay_thread.join(timeout=700)
        if self.replay is not None:
            self.timeline.mark("replay_finished", exit_code=self.replay.wait(timeout=900))

    def _run_faults(
        self, window: float, stack: PrivateStack, fake: RemoteFake, env: dict[str, str], t0: float
    ) -> None:
        """Start and end every fault on time (seconds after ``t0``); one at a time."""
        actions = self._fault_actions(stack, fake, env)
        steps: list[tuple[float, Fault, str]] = []
        for fault in self.params.schedule.faults:
            start = fault.at * window
            length = 2.0 if fault.kind == "kill_worker" else fault.length(window)
            steps += [(start, fault, "start"), (start + length, fault, "end")]
        # The replay is waited for last, whatever its time: its end blocks until it is done.
        steps.sort(key=lambda step: (step[1].kind == "replay" and step[2] == "end", step[0]))
        for at, fault, phase in steps:
            delay = t0 + at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            begin, end = actions[fault.kind]
            if phase == "end":  # over once the action returns (a restart waits until ready)
                end()
                self.timeline.mark("fault", kind=fault.kind, phase=phase)
            else:
                self.timeline.mark("fault", kind=fault.kind, phase=phase)
                begin()
        self.timeline.mark("faults_over")

    # ------------------------------------------------------------------ run

    def run(self) -> None:
        """Run the whole soak; everything the audit needs ends up in the work directory."""
        stack = PrivateStack(self.workdir / "stack", self.workdir / "stack.log")
        log(f"work directory {self.workdir}; starting a private broker and registry")
        with stack, fake_process(self.workdir, self.params.seed) as (fake, urls):
            try:
                self.timeline.mark("stack_up", bootstrap=stack.bootstrap_servers)
                lms = LmsProducer(stack.bootstrap_servers, stack.registry_url)
                prepared = self._prepare(stack, fake, urls, lms)
                raw = RawProducer(stack.bootstrap_servers)
                self._soak(stack, fake, prepared, lms, raw)
                lms.close()
                self._probes(prepared.env)
                self._collect(stack, fake, raw)
                del lms, raw  # their librdkafka clients would log the broker's stop
                gc.collect()
            finally:
                self._stop_sampling.set()
                with self._workers_lock:
                    self._stopping = True
                    leftovers = [*self.workers.values(), *([self.replay] if self.replay else [])]
                for worker in leftovers:
                    worker.kill()  # a soak cut short leaves no worker behind
        log("soak finished; auditing")

    def _prepare(
        self, stack: PrivateStack, fake: RemoteFake, urls: dict[str, str], lms: LmsProducer
    ) -> Prepared:
        """Topics, catalogue, warm-up, programs, learners, the fake's world, poison, env."""
        params = self.params
        partitions = {self.topics["certificates"]: params.partitions, self.topics["catalog"]: 3}
        create_topics(stack.bootstrap_servers, partitions)
        catalogue = make_catalogue(self.tag, max(12, params.events // 800), self.rng)
        fake.call(
            "add_oauth_client",
            client_id="credentials-consumer-chaos",
            client_secret=self.secrets.oauth_secret,
            username="credentials_service_user",
        )
        fake.call(
            "call_many",
            calls=[
                {
                    "method": "add_course_run",
                    "kwargs": {
                        "key": run.key,
                        "modes": ["audit", run.mode],
                        "display_behavior": run.display_behavior,
                        "certificate_available_date": run.certificate_available_date,
                        "start": "2026-01-05T00:00:00+00:00",
                    },
                }
                for run in catalogue.runs.values()
            ],
        )
        warmup = warmup_events(catalogue)
        for planned in warmup:
            lms.send(planned.event_type, planned.data, self.topics[planned.topic])
        lms.flush()
        warm_records = read_topic(stack.bootstrap_servers, self.topics["certificates"])
        client = registry_client(stack.registry_url)
        decoder = Decoder(RegistryWriterSchemas(client), load_reader_schemas())
        partition_of = {
            str(decoder.decode(record).course_key): record.partition for record in warm_records
        }
        client.close()
        add_programs(catalogue, partition_of, self.rng)
        replays = any(fault.kind == "replay" for fault in params.schedule.faults)
        at, share = params.schedule.replay_burst
        plan = Planner(catalogue, partition_of, self.rng).plan(
            params.events - len(warmup), burst=(at, int(params.events * share)) if replays else None
        )
        self._setup_fake(fake, catalogue, plan.learners, warmup)
        poison = self._plan_poison(
            stack, warm_records[0], plan.stream, next(iter(catalogue.runs)), plan.burst
        )
        self._save_plan(catalogue, plan.learners, partition_of, urls, stack)
        self.env = env = self.worker_env(stack, urls, catalogue)
        (self.workdir / "private" / "env.json").write_text(json.dumps(env, indent=1))
        return Prepared(partitions, plan.stream, poison, env, plan.burst)

    def _soak(
        self,
        stack: PrivateStack,
        fake: RemoteFake,
        prepared: Prepared,
        lms: LmsProducer,
        raw: RawProducer,
    ) -> None:
        """Publish and inject faults, wait for the drain, stop the workers."""
        sampler = threading.Thread(
            target=self._sample_forever,
            args=(stack.bootstrap_servers, prepared.partitions),
            name="sampler",
            daemon=True,
        )
        sampler.start()
        self.start_main(prepared.env)
        publisher = threading.Thread(
            target=self._publish,
            args=(lms, raw, prepared.stream, prepared.poison, prepared.burst),
            name="publisher",
            daemon=True,
        )
        window = len(prepared.stream) / self.params.rate
        t0 = time.monotonic()
        self.timeline.mark("publishing", events=len(prepared.stream), window_seconds=round(window))
        publisher.start()
        self._run_faults(window, stack, fake, prepared.env, t0)
        publisher.join()
        self._wait_for_drain()
        self._stop_workers()
        self._stop_sampling.set()
        sampler.join(timeout=30)

    def _setup_fake(
        self,
        fake: RemoteFake,
        catalogue: Catalogue,
        learners: list[LearnerSpec],
        warmup: list[Planned],
    ) -> None:
        """Programs, users, the LMS's certificates and the failing learners' knobs."""

        def call(method: str, **kwargs: object) -> dict[str, object]:
            return {"method": method, "kwargs": kwargs}

        users = [planned.data["certificate"]["user"] for planned in warmup]
        calls = [
            *(
                call(
                    "add_program",
                    uuid=program.uuid,
                    courses=program.courses,
                    in_credentials=program.in_credentials,
                )
                for program in catalogue.programs.values()
            ),
            *(call("add_user", username=u["pii"]["username"], lms_user_id=u["id"]) for u in users),
            *(
                call("add_user", username=spec.username, lms_user_id=spec.user_id)
                for spec in learners
            ),
            *(
                call("set_error", service="credentials", status=500, username=learner.username)
                for learner in learners
                if learner.failing
            ),
            *(
                call("add_lms_certificate", username=username, course_id=run, mode=mode)
                for username, run, mode in lms_certificates(learners, catalogue)
            ),
        ]
        for start in range(0, len(calls), 2000):
            fake.call("call_many", calls=calls[start : start + 2000])

    def _plan_poison(
        self,
        stack: PrivateStack,
        template: Record,
        stream: list[Planned],
        run: str,
        burst: tuple[int, int] | None,
    ) -> dict[int, list[Poison]]:
        """Poison records of every kind, at random places in the stream (not in the burst)."""
        kinds = [
            Poison(reason, value, tuple(headers))
            for reason, (value, headers) in poison_variants(template).items()
        ]
        certificate = EventType.CERTIFICATE_CREATED.encode()
        with SchemaRegistryClient({"url": stack.registry_url, "timeout": 20}) as client:
            hang_id = client.register_schema(
                f"{self.prefix}-hostile-value", Schema(HANG_SCHEMA, "AVRO")
            )
        crash_id = register_raw_schema(stack.registry_url, CRASH_SCHEMAS["a number"])
        kinds += [
            Poison(
                "unbounded_writer_schema",
                b"\x00" + hang_id.to_bytes(4, "big") + HANG_BODY,
                (("ce_type", certificate), ("ce_id", b"chaos-hang")),
            ),
            Poison(
                "invalid_writer_schema",
                b"\x00" + crash_id.to_bytes(4, "big"),
                (("ce_type", certificate), ("ce_id", b"chaos-crash")),
            ),
            Poison("date_out_of_range", run=run),
        ]
        first, last = burst or (0, -1)
        places = [index for index in range(len(stream)) if not first <= index <= last]
        placed: dict[int, list[Poison]] = {}
        for _ in range(self.params.poison_copies):
            for kind in kinds:
                placed.setdefault(self.rng.choice(places), []).append(kind)
        return placed

    def _save_plan(
        self,
        catalogue: Catalogue,
        learners: list[LearnerSpec],
        partition_of: dict[str, int],
        urls: dict[str, str],
        stack: PrivateStack,
    ) -> None:
        plan = {
            "params": {
                "events": self.params.events,
                "rate": self.params.rate,
                "seed": self.params.seed,
                "partitions": self.params.partitions,
                "in_flight": self.params.in_flight,
                "faults": [asdict(fault) for fault in self.params.schedule.faults],
                "retry_seconds": self.params.schedule.retry_seconds,
                "noise": self.params.schedule.noise,
            },
            "tag": self.tag,
            "topics": self.topics,
            "group": self.group,
            "catalogue": {
                "runs": [asdict(run) for run in catalogue.runs.values()],
                "programs": [asdict(program) for program in catalogue.programs.values()],
                "excluded": sorted(catalogue.excluded),
            },
            "learners": [asdict(learner) for learner in learners],
            "partition_of": partition_of,
            "urls": urls,
            "bootstrap": stack.bootstrap_servers,
        }
        (self.workdir / "plan.json").write_text(json.dumps(plan, indent=1))
        (self.workdir / "private" / "secrets.json").write_text(json.dumps(asdict(self.secrets)))

    def _wait_for_drain(self) -> None:
        deadline = time.monotonic() + self.params.drain_timeout
        while not self.drained():
            if time.monotonic() > deadline:
                self.timeline.mark("drain_timed_out")
                return
            time.sleep(0.5)
        self.timeline.mark("drained")

    def _stop_workers(self) -> None:
        time.sleep(2)  # the RSS sampler's last reading of a settled worker
        with self._workers_lock:
            self._stopping = True
            running = [w for w in self.workers.values() if w.process.poll() is None]
        for worker in running:
            worker.terminate()
        for worker in running:
            try:
                code: int | str = worker.wait(timeout=60)
            except AssertionError:  # still draining after 60 s: killed by ``wait``
                code = "killed after 60 s"
            self.timeline.mark("worker_stopped", worker=worker.name, exit_code=code)

    def _probes(self, env: dict[str, str]) -> None:
        """``check``, ``check`` with a SASL password, ``run`` with it, ``dlq inspect --json``."""
        sasl = {
            **env,
            "EVENT_BUS_KAFKA_API_KEY": self.secrets.sasl_key,
            "EVENT_BUS_KAFKA_API_SECRET": self.secrets.sasl_password,
        }
        probes: list[tuple[str, dict[str, str], list[str]]] = [
            ("check", env, ["check"]),
            ("check-json", env, ["check", "--json"]),
            ("check-sasl", sasl, ["check"]),
            ("run-sasl", sasl, ["run", "--stop-when-idle", "1"]),
            *(
                (f"inspect-{role}", env, ["dlq", "inspect", f"{topic}.dlq", "--json"])
                for role, topic in self.topics.items()
            ),
        ]
        running = []
        for name, probe_env, args in probes:
            out = (self.workdir / "probes" / f"{name}.txt").open("w")  # stdout
            err = (self.workdir / "probes" / f"{name}.log").open("w")  # stderr: log lines
            process = subprocess.Popen(
                [sys.executable, "-m", "consumer", *args],
                env=probe_env,
                cwd=ROOT,
                stdout=out,
                stderr=err,
            )
            running.append((name, process, out, err))
        for name, process, out, err in running:
            try:
                code = process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
            out.close()
            err.close()
            self.timeline.mark("probe", name=name, exit_code=code)

    def _collect(self, stack: PrivateStack, fake: RemoteFake, raw: RawProducer) -> None:
        """Save the fake's log and state, the event log, dead letters, samples, timeline."""
        workdir = self.workdir
        fake.call("save_records", path=str(workdir / "requests.jsonl"))
        state = {
            "credentials": fake.call("credentials"),
            "configs": fake.call("course_certificate_configs"),
        }
        (workdir / "state.json").write_text(json.dumps(state))
        (workdir / "private" / "tokens.json").write_text(json.dumps(fake.call("issued_tokens")))
        client = registry_client(stack.registry_url)
        decoder = Decoder(RegistryWriterSchemas(client), load_reader_schemas())
        with (workdir / "log.jsonl").open("w") as out:
            for role, topic in self.topics.items():
                for record in read_topic(stack.bootstrap_servers, topic):
                    out.write(json.dumps(_decoded(role, record, decoder)) + "\n")
        client.close()
        with (workdir / "dlq.jsonl").open("w") as out:
            for role, topic in self.topics.items():
                for record in read_topic(stack.bootstrap_servers, f"{topic}.dlq"):
                    out.write(json.dumps(_dead_letter(role, record)) + "\n")
        poison = {"raw": raw.delivered, "lms_ids": self.lms_poison}
        (workdir / "poison.json").write_text(json.dumps(poison))
        with (workdir / "samples.jsonl").open("w") as out:
            for sample in self.samples:
                out.write(json.dumps(sample) + "\n")
        (workdir / "timeline.json").write_text(json.dumps(self.timeline.entries, indent=1))


def _decoded(role: str, record: Record, decoder: Decoder) -> dict[str, Any]:
    """A log record as the audit reads it: position, ids, and the decoded data or the error."""
    entry: dict[str, Any] = {
        "role": role,
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp_ms": record.timestamp_ms,
    }
    try:
        meta = event_meta(record)
        entry["ce_id"], entry["ce_type"] = meta.id, str(meta.type)
        data = decoder.decode_value(record.value, meta.type)
        build_event(meta, data)
        entry["data"] = data
    except DecodeError as error:
        entry["error"] = {"class": type(error).__name__, "reason": error.reason}
    return entry


def _dead_letter(role: str, record: Record) -> dict[str, Any]:
    """A dead-letter record: its context and every header as text (the audit greps them)."""
    return {
        "role": role,
        "partition": record.partition,
        "offset": record.offset,
        "ce_id": (record.header("ce_id") or [b""])[0].decode(errors="replace"),
        "context": {
            name[len(HEADER_PREFIX) :]: value.decode(errors="replace")
            for name, value in record.headers
            if name.startswith(HEADER_PREFIX)
        },
        "headers": [[name, value.decode(errors="replace")] for name, value in record.headers],
    }
