"""Settings from environment variables, validated once at start-up.

``load(env)`` is a pure function of a mapping (the CLI passes ``os.environ``): it returns a
frozen ``Settings`` or raises ``ConfigErrors`` listing *every* bad variable at once (each
message names its variable), which the CLI turns into exit code 2. Each command asks only
for what it uses: ``load(env, with_services=False)`` reads no Open edX service variable.
Nothing reads the environment at import time. Where Open edX already has a setting for the
same thing, the variable has its name, so operators can reuse values. Every number has a
sane upper bound (a timeout of ``1e308`` seconds would overflow a wait and crash-loop).
Secrets are ``repr=False`` and ``describe()`` masks them.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlparse

from consumer.errors import ConfigError, ConsumerError
from consumer.handlers import Policy
from consumer.rules import ALL_PROGRAMS, ProgramExclusion
from consumer.services.settings import ServiceSettings

T = TypeVar("T")

DEFAULT_TOPICS = ("learning-certificate-lifecycle", "course-catalog-info-changed")
DEFAULT_GROUP_ID = "credentials-consumer"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
DAY = 86_400.0
KEEP_FOREVER = -1  # retention.ms of a topic whose records are never deleted by age
MIN_RETENTION_MS = 3_600_000  # a dead letter kept less than an hour is a dead letter lost
MAX_LONG = 2**63 - 1  # Kafka's retention.ms is a Java long

# Kafka's own rule for topic names (``org.apache.kafka.common.internals.Topic``).
TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]+")
MAX_TOPIC_LENGTH = 249
_HOST = re.compile(r"[a-zA-Z0-9._-]+|\[[0-9a-fA-F:.]+\]")
_LISTENER = re.compile(
    r"(?:(?:PLAINTEXT|SSL|SASL_PLAINTEXT|SASL_SSL)://)?(?P<host>.*):(?P<port>[0-9]{1,5})",
    re.IGNORECASE,
)


class ConfigErrors(ConfigError):
    """Every configuration error found by one ``load``, reported together.

    ``variable`` is the first error's variable; ``errors`` holds them all, one message each.
    """

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        ConsumerError.__init__(self, "\n".join(str(error) for error in errors))
        self.variable = errors[0].variable
        self.errors = tuple(errors)


# ---------------------------------------------------------------------------- parsing


class _Env:
    """The environment being read, and the errors found so far.

    Parsers report a bad value here and carry on with the default, so one ``load`` finds
    every error, not only the first.
    """

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = values
        self.errors: list[ConfigError] = []

    def get(self, name: str) -> str:
        """The raw value of ``name``, ``""`` when unset."""
        return self._values.get(name, "") or ""

    def report(self, name: str, problem: str) -> None:
        """Record that ``name`` is invalid."""
        self.errors.append(ConfigError(name, problem))


def _text(env: _Env, name: str, default: str | None = None) -> str | None:
    value = env.get(name).strip()
    return value or default


def _required(env: _Env, name: str, why: str = "is required") -> str:
    value = _text(env, name)
    if value is None:
        env.report(name, why)
        return ""
    return value


def _bool(env: _Env, name: str, default: bool) -> bool:
    value = _text(env, name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    env.report(name, f"must be true or false, not {value!r}")
    return default


def _number(
    env: _Env,
    name: str,
    default: T,
    parse: Callable[[str], T],
    *,
    minimum: float,
    maximum: float,
) -> T:
    value = _text(env, name)
    if value is None:
        return default
    shown = value if len(value) <= 40 else f"{value[:37]}..."
    try:
        number = parse(value)
    except (ValueError, OverflowError):
        env.report(name, f"must be a number, not {shown!r}")
        return default
    # Compared as parsed: an int of 400 digits has no float form, and must not need one.
    if isinstance(number, float) and not math.isfinite(number):
        env.report(name, f"must be a finite number, not {shown!r}")
        return default
    if not minimum <= number <= maximum:  # type: ignore[operator]
        env.report(name, f"must be between {_plain(minimum)} and {_plain(maximum)}, not {shown}")
        return default
    return number


def _plain(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


def _int(env: _Env, name: str, default: int, *, minimum: int, maximum: int = 1_000_000) -> int:
    return _number(env, name, default, int, minimum=minimum, maximum=maximum)


def _seconds(
    env: _Env, name: str, default: float, *, minimum: float = 0.0, maximum: float = DAY
) -> float:
    return _number(env, name, default, float, minimum=minimum, maximum=maximum)


def _choice(
    env: _Env,
    name: str,
    default: str,
    choices: tuple[str, ...],
    *,
    upper: bool = False,
) -> str:
    value = _text(env, name, default) or default
    value = value.upper() if upper else value
    if value not in choices:
        env.report(name, f"must be one of {', '.join(choices)}, not {value!r}")
        return default
    return value


def _list(env: _Env, name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
    value = _text(env, name)
    if value is None:
        return default
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _url(env: _Env, name: str, *, required: bool) -> str | None:
    value = _text(env, name)
    if value is None:
        if required:
            env.report(name, "is required (unless CONSUMER_DRY_RUN=true)")
        return None
    problem = _url_problem(value)
    if problem:
        env.report(name, f"must be an http(s) URL ({problem}), not {_without_userinfo(value)!r}")
        return None
    return value.rstrip("/")


def _url_problem(value: str) -> str | None:
    """Why ``value`` is not a usable http(s) URL, or None."""
    try:
        parsed = urlparse(value)
        port = parsed.port  # raises on a port that is not a number or out of range
    except ValueError as error:
        return str(error)
    if parsed.scheme not in ("http", "https"):
        return "the scheme must be http or https"
    if not parsed.hostname or any(char.isspace() for char in parsed.hostname):
        return "no host name"
    if port == 0:
        return "port 0"
    return None


def _pair(env: _Env, key_name: str, secret_name: str) -> tuple[str | None, str | None]:
    key, secret = _text(env, key_name), _text(env, secret_name)
    if bool(key) != bool(secret):
        missing = secret_name if key else key_name
        env.report(missing, f"must be set together with {key_name if key else secret_name}")
    return key, secret


def _without_userinfo(url: str) -> str:
    """Mask ``user:password@`` in a URL (a registry URL may carry its credentials)."""
    try:
        parsed = urlparse(url)
        port = parsed.port
    except ValueError:
        return url.rsplit("@", 1)[-1] if "@" in url else url
    if not parsed.password and not parsed.username:
        return url
    return parsed._replace(netloc=f"***@{parsed.hostname}" + (f":{port}" if port else "")).geturl()


def topic_name_problem(name: str) -> str | None:
    """Why Kafka would refuse ``name`` as a topic name, or None."""
    if len(name) > MAX_TOPIC_LENGTH:
        return f"is {len(name)} characters long, Kafka allows {MAX_TOPIC_LENGTH}"
    if name in (".", ".."):
        return "cannot be '.' or '..'"
    if not TOPIC_NAME.fullmatch(name):
        return "may only hold ASCII letters, digits, '.', '_' and '-'"
    return None


def _bootstrap_servers(env: _Env) -> str:
    """A comma list of ``host:port`` (an optional ``PROTOCOL://`` before each, IPv6 in [])."""
    name = "EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS"
    value = _required(env, name, "is required (a comma list of host:port)")
    servers = [item.strip() for item in value.split(",")]
    for server in servers if value else []:
        match = _LISTENER.fullmatch(server)
        if match is None or not _HOST.fullmatch(match["host"]):
            env.report(name, f"must be a comma list of host:port, and {server!r} is not")
        elif not 1 <= int(match["port"]) <= 65535:
            env.report(name, f"{server!r} has a port outside 1-65535")
    return ",".join(servers)


def _check_topics(env: _Env, prefix: str | None, topics: tuple[str, ...], suffix: str) -> None:
    """Check the names Kafka will see: prefixed topics, and each with the dead-letter suffix.

    A consumed topic that is a consumed topic's dead-letter topic is refused: the worker
    would consume its own dead letters (and dead-letter them again, for ever).
    """
    if prefix is not None and (problem := topic_name_problem(prefix)):
        env.report("EVENT_BUS_TOPIC_PREFIX", problem)
        return
    if not suffix or not TOPIC_NAME.fullmatch(suffix):
        env.report(
            "CONSUMER_DEAD_LETTER_TOPIC_SUFFIX",
            f"may only hold ASCII letters, digits, '.', '_' and '-', not {suffix!r}",
        )
        return
    names = [f"{prefix}-{topic}" if prefix else topic for topic in topics]
    for name in names:
        if problem := topic_name_problem(name):
            env.report("CONSUMER_TOPICS", f"topic {name!r} {problem}")
        elif problem := topic_name_problem(name + suffix):
            env.report(
                "CONSUMER_DEAD_LETTER_TOPIC_SUFFIX",
                f"dead-letter topic {name + suffix!r} {problem}",
            )
    sources = {name + suffix: name for name in names}
    for name in names:
        if name in sources:
            env.report(
                "CONSUMER_TOPICS",
                f"topic {name!r} is the dead-letter topic of {sources[name]!r}: the worker "
                "would consume its own dead letters",
            )


# ---------------------------------------------------------------------------- settings


@dataclass(frozen=True, slots=True, kw_only=True)
class KafkaSettings:
    """Broker, registry, topics and group."""

    bootstrap_servers: str
    api_key: str | None = None
    api_secret: str | None = field(default=None, repr=False)
    schema_registry_url: str | None = None
    schema_registry_api_key: str | None = None
    schema_registry_api_secret: str | None = field(default=None, repr=False)
    topic_prefix: str | None = None
    topics: tuple[str, ...] = DEFAULT_TOPICS
    group_id: str = DEFAULT_GROUP_ID
    auto_offset_reset: str = "earliest"
    dead_letter_suffix: str = ".dlq"
    dead_letter_retention_ms: int = KEEP_FOREVER
    timeout_seconds: float = 15.0

    def full_topic(self, topic: str) -> str:
        """The topic name with the prefix, joined with ``-`` as edx-event-bus-kafka does."""
        return f"{self.topic_prefix}-{topic}" if self.topic_prefix else topic

    @property
    def full_topics(self) -> tuple[str, ...]:
        """Every consumed topic, prefixed."""
        return tuple(self.full_topic(topic) for topic in self.topics)

    def dead_letter_topic(self, source_topic: str) -> str:
        """The dead-letter topic of a (prefixed) source topic."""
        return f"{source_topic}{self.dead_letter_suffix}"

    def client_config(self) -> dict[str, Any]:
        """The librdkafka settings every client of this worker shares (security, servers)."""
        config: dict[str, Any] = {"bootstrap.servers": self.bootstrap_servers}
        if self.api_key:
            config.update(
                {
                    "security.protocol": "SASL_SSL",
                    "sasl.mechanism": "PLAIN",
                    "sasl.username": self.api_key,
                    "sasl.password": self.api_secret,
                }
            )
        return config


def consumer_config(kafka: KafkaSettings, *, group_id: str) -> dict[str, Any]:
    """The engine's consumer settings: manual commits, cooperative rebalancing."""
    return {
        **kafka.client_config(),
        "group.id": group_id,
        "client.id": f"{group_id}-consumer",
        "auto.offset.reset": kafka.auto_offset_reset,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "partition.assignment.strategy": "cooperative-sticky",
        "session.timeout.ms": 45_000,
        "max.poll.interval.ms": 300_000,
        # Bound what librdkafka prefetches, so memory stays flat on any backlog.
        "queued.max.messages.kbytes": 16_384,
        "fetch.max.bytes": 8_388_608,
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class RetrySettings:
    """Backoff for transient failures: exponential with full jitter, bounded twice."""

    max_attempts: int = 6
    max_seconds: float = 300.0
    initial_seconds: float = 0.5
    max_backoff_seconds: float = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class CircuitSettings:
    """When a service counts as down, and how long to wait before probing it again."""

    failure_threshold: int = 5
    open_seconds: float = 5.0
    max_open_seconds: float = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineSettings:
    """Concurrency, buffering, commits and shutdown bounds."""

    max_in_flight: int = 64
    max_buffered: int = 2000
    commit_interval_seconds: float = 2.0
    drain_timeout_seconds: float = 30.0
    revoke_timeout_seconds: float = 30.0
    max_rate: float = 0.0  # events started per second at most; 0: no cap


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Everything the worker needs, validated.

    ``services`` is None in dry-run: nothing is called, so nothing need be configured.
    """

    kafka: KafkaSettings
    policy: Policy = field(default_factory=Policy)
    services: ServiceSettings | None = None
    engine: EngineSettings = field(default_factory=EngineSettings)
    retry: RetrySettings = field(default_factory=RetrySettings)
    circuit: CircuitSettings = field(default_factory=CircuitSettings)
    dry_run: bool = False
    dry_run_output: str | None = None
    metrics_port: int = 9100
    log_format: str = "json"
    log_level: str = "INFO"

    def describe(self) -> list[tuple[str, str]]:
        """(name, value) rows for ``check`` and the start-up log; secrets masked."""
        rows: list[tuple[str, str]] = []
        for section in (self.kafka, self.engine, self.retry, self.circuit, self.policy):
            for name in section.__dataclass_fields__:
                value = getattr(section, name)
                secret = "secret" in name and value
                shown = "***" if secret else str(value)
                rows.append((name, _without_userinfo(shown) if name.endswith("_url") else shown))
        if self.services is not None:
            rows += self.services.describe()
        rows += [
            ("dry_run", str(self.dry_run)),
            ("metrics_port", str(self.metrics_port)),
            ("log_format", self.log_format),
            ("log_level", self.log_level),
        ]
        return rows


def _checked_retry(env: _Env, retry: RetrySettings) -> RetrySettings:
    if retry.max_backoff_seconds < retry.initial_seconds:
        env.report(
            "CONSUMER_RETRY_MAX_BACKOFF_SECONDS", "must not be below CONSUMER_RETRY_INITIAL_SECONDS"
        )
    return retry


def _checked_circuit(env: _Env, circuit: CircuitSettings) -> CircuitSettings:
    if circuit.max_open_seconds < circuit.open_seconds:
        env.report(
            "CONSUMER_CIRCUIT_MAX_OPEN_SECONDS", "must not be below CONSUMER_CIRCUIT_OPEN_SECONDS"
        )
    return circuit


def _programs_without_certificates(env: _Env) -> ProgramExclusion:
    values = _list(env, "PROGRAMS_WITHOUT_CERTIFICATES")
    if any(value.upper() == ALL_PROGRAMS for value in values):
        return ALL_PROGRAMS
    for value in values:
        try:
            uuid.UUID(value)
        except ValueError:
            env.report(
                "PROGRAMS_WITHOUT_CERTIFICATES", f"{value!r} is neither a program UUID nor ALL"
            )
    return frozenset(values)


def _policy(env: _Env, *, programs_enabled: bool) -> Policy:
    return Policy(
        honor_certificates_enabled=not _bool(env, "DISABLE_HONOR_CERTIFICATES", default=False),
        learner_records_disabled_orgs=frozenset(_list(env, "LEARNER_RECORDS_DISABLED_ORGS")),
        programs_without_certificates=_programs_without_certificates(env),
        sync_course_certificates=_bool(env, "CONSUMER_SYNC_COURSE_CERTIFICATES", default=True),
        programs_enabled=programs_enabled,
    )


def _services(env: _Env, *, pool_size: int) -> ServiceSettings:
    oauth_key, oauth_secret = _pair(
        env, "BACKEND_SERVICE_EDX_OAUTH2_KEY", "BACKEND_SERVICE_EDX_OAUTH2_SECRET"
    )
    if not oauth_key and not oauth_secret:
        env.report("BACKEND_SERVICE_EDX_OAUTH2_KEY", "is required (unless CONSUMER_DRY_RUN=true)")
        env.report(
            "BACKEND_SERVICE_EDX_OAUTH2_SECRET", "is required (unless CONSUMER_DRY_RUN=true)"
        )
    return ServiceSettings(
        oauth_url=_url(env, "BACKEND_SERVICE_EDX_OAUTH2_PROVIDER_URL", required=True) or "",
        oauth_client_id=oauth_key or "",
        oauth_client_secret=oauth_secret or "",
        credentials_url=_url(env, "CREDENTIALS_INTERNAL_SERVICE_URL", required=True) or "",
        lms_url=_url(env, "LMS_ROOT_URL", required=True) or "",
        studio_url=_url(env, "CMS_ROOT_URL", required=False),
        discovery_url=_url(env, "COURSE_CATALOG_API_URL", required=False),
        connect_timeout=_seconds(
            env, "CONSUMER_HTTP_CONNECT_TIMEOUT", 3.05, minimum=0.01, maximum=60.0
        ),
        read_timeout=_seconds(env, "CONSUMER_HTTP_READ_TIMEOUT", 20.0, minimum=0.01, maximum=600.0),
        total_timeout=_seconds(
            env, "CONSUMER_HTTP_TOTAL_TIMEOUT", 25.0, minimum=0.01, maximum=600.0
        ),
        pool_size=pool_size,
        program_cache_ttl=_seconds(env, "CONSUMER_PROGRAM_CACHE_TTL_SECONDS", 300.0, minimum=1.0),
        completion_source=_choice(  # type: ignore[arg-type]
            env, "CONSUMER_COMPLETION_SOURCE", "credentials", ("credentials", "lms")
        ),
    )


def _kafka(env: _Env) -> KafkaSettings:
    api_key, api_secret = _pair(env, "EVENT_BUS_KAFKA_API_KEY", "EVENT_BUS_KAFKA_API_SECRET")
    registry_key, registry_secret = _pair(
        env,
        "EVENT_BUS_KAFKA_SCHEMA_REGISTRY_API_KEY",
        "EVENT_BUS_KAFKA_SCHEMA_REGISTRY_API_SECRET",
    )
    topics = _list(env, "CONSUMER_TOPICS", DEFAULT_TOPICS)
    if not topics:
        env.report("CONSUMER_TOPICS", "must name at least one topic")
        topics = DEFAULT_TOPICS
    prefix = _text(env, "EVENT_BUS_TOPIC_PREFIX")
    suffix = _text(env, "CONSUMER_DEAD_LETTER_TOPIC_SUFFIX", ".dlq") or ".dlq"
    _check_topics(env, prefix, topics, suffix)
    # Several Open edX instances may share a cluster, each with its prefix: so must groups.
    default_group = f"{prefix}-{DEFAULT_GROUP_ID}" if prefix else DEFAULT_GROUP_ID
    retention = _int(
        env, "CONSUMER_DEAD_LETTER_RETENTION_MS", KEEP_FOREVER, minimum=-1, maximum=MAX_LONG
    )
    if retention != KEEP_FOREVER and retention < MIN_RETENTION_MS:
        env.report(
            "CONSUMER_DEAD_LETTER_RETENTION_MS",
            f"must be -1 (kept until deleted) or at least {MIN_RETENTION_MS} (an hour), "
            f"not {retention}",
        )
        retention = KEEP_FOREVER
    return KafkaSettings(
        bootstrap_servers=_bootstrap_servers(env),
        api_key=api_key,
        api_secret=api_secret,
        schema_registry_url=_url(env, "EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL", required=False),
        schema_registry_api_key=registry_key,
        schema_registry_api_secret=registry_secret,
        topic_prefix=prefix,
        topics=topics,
        group_id=_text(env, "CONSUMER_GROUP_ID", default_group) or default_group,
        auto_offset_reset=_choice(
            env, "CONSUMER_AUTO_OFFSET_RESET", "earliest", ("earliest", "latest")
        ),
        dead_letter_suffix=suffix,
        dead_letter_retention_ms=retention,
        timeout_seconds=_seconds(
            env, "CONSUMER_KAFKA_TIMEOUT_SECONDS", 15.0, minimum=1.0, maximum=300.0
        ),
    )


def _engine(env: _Env) -> EngineSettings:
    max_in_flight = _int(env, "CONSUMER_MAX_IN_FLIGHT", 64, minimum=1, maximum=1024)
    return EngineSettings(
        max_in_flight=max_in_flight,
        max_buffered=_int(
            env, "CONSUMER_MAX_BUFFERED", max(2000, 4 * max_in_flight), minimum=max_in_flight
        ),
        commit_interval_seconds=_seconds(
            env, "CONSUMER_COMMIT_INTERVAL_SECONDS", 2.0, minimum=0.1, maximum=60.0
        ),
        drain_timeout_seconds=_seconds(env, "CONSUMER_DRAIN_TIMEOUT_SECONDS", 30.0, maximum=3600.0),
        # The revoke drain runs inside a poll call: it must end well within
        # max.poll.interval.ms (300 s), or the group drops the worker.
        revoke_timeout_seconds=_seconds(
            env, "CONSUMER_REVOKE_TIMEOUT_SECONDS", 30.0, maximum=240.0
        ),
        max_rate=_number(env, "CONSUMER_MAX_RATE", 0.0, float, minimum=0.0, maximum=100_000.0),
    )


def load(env: Mapping[str, str], *, with_services: bool = True) -> Settings:
    """Read and validate every setting from ``env``; raise ``ConfigErrors`` listing every bad one.

    ``with_services=False`` is for commands that call no Open edX service (``dlq inspect``,
    ``offsets``, ``replay --plan``): their variables are then neither required nor read.
    In dry-run (``CONSUMER_DRY_RUN``) no service is called either.
    """
    source = _Env(env)
    kafka = _kafka(source)
    engine = _engine(source)
    retry = _checked_retry(
        source,
        RetrySettings(
            max_attempts=_int(source, "CONSUMER_RETRY_MAX_ATTEMPTS", 6, minimum=1, maximum=100),
            max_seconds=_seconds(source, "CONSUMER_RETRY_MAX_SECONDS", 300.0, minimum=1.0),
            initial_seconds=_seconds(
                source, "CONSUMER_RETRY_INITIAL_SECONDS", 0.5, minimum=0.01, maximum=60.0
            ),
            max_backoff_seconds=_seconds(
                source, "CONSUMER_RETRY_MAX_BACKOFF_SECONDS", 30.0, minimum=0.01, maximum=3600.0
            ),
        ),
    )
    circuit = _checked_circuit(
        source,
        CircuitSettings(
            failure_threshold=_int(
                source, "CONSUMER_CIRCUIT_FAILURE_THRESHOLD", 5, minimum=1, maximum=10_000
            ),
            open_seconds=_seconds(
                source, "CONSUMER_CIRCUIT_OPEN_SECONDS", 5.0, minimum=0.1, maximum=3600.0
            ),
            max_open_seconds=_seconds(
                source, "CONSUMER_CIRCUIT_MAX_OPEN_SECONDS", 60.0, minimum=0.1
            ),
        ),
    )
    dry_run = _bool(source, "CONSUMER_DRY_RUN", default=False)
    services = (
        _services(source, pool_size=engine.max_in_flight) if with_services and not dry_run else None
    )
    discovery_configured = bool(_text(source, "COURSE_CATALOG_API_URL"))
    settings = Settings(
        kafka=kafka,
        policy=_policy(source, programs_enabled=discovery_configured),
        services=services,
        engine=engine,
        retry=retry,
        circuit=circuit,
        dry_run=dry_run,
        dry_run_output=_text(source, "CONSUMER_DRY_RUN_OUTPUT"),
        metrics_port=_int(source, "CONSUMER_METRICS_PORT", 9100, minimum=0, maximum=65535),
        log_format=_choice(source, "CONSUMER_LOG_FORMAT", "json", ("json", "console")),
        log_level=_choice(source, "CONSUMER_LOG_LEVEL", "INFO", LOG_LEVELS, upper=True),
    )
    if source.errors:
        raise ConfigErrors(source.errors)
    return settings


# ---------------------------------------------------------------------------- explain


@dataclass(frozen=True, slots=True, kw_only=True)
class ExplainSettings:
    """What ``explain`` needs: the services it reads and the policy it judges by. No Kafka.

    ``certificate_dead_letter_topics`` only names topics in the fixes the trace suggests.
    """

    policy: Policy
    services: ServiceSettings
    certificate_dead_letter_topics: tuple[str, ...]
    log_format: str = "json"
    log_level: str = "INFO"


def load_explain(env: Mapping[str, str]) -> ExplainSettings:
    """Read the settings ``explain`` uses; raise ``ConfigErrors`` listing every bad one.

    The service variables are required (``CONSUMER_DRY_RUN`` does not apply: explain only
    reads); Kafka's are not read, except the topic names the suggested fixes mention.
    """
    source = _Env(env)
    services = _services(source, pool_size=2)
    prefix = _text(source, "EVENT_BUS_TOPIC_PREFIX")
    suffix = _text(source, "CONSUMER_DEAD_LETTER_TOPIC_SUFFIX", ".dlq") or ".dlq"
    topics = _list(source, "CONSUMER_TOPICS", DEFAULT_TOPICS) or DEFAULT_TOPICS
    certificate_topics = [topic for topic in topics if "certificate" in topic] or list(topics)
    settings = ExplainSettings(
        policy=_policy(source, programs_enabled=services.discovery_url is not None),
        services=services,
        certificate_dead_letter_topics=tuple(
            f"{prefix}-{topic}{suffix}" if prefix else f"{topic}{suffix}"
            for topic in certificate_topics
        ),
        log_format=_choice(source, "CONSUMER_LOG_FORMAT", "json", ("json", "console")),
        log_level=_choice(source, "CONSUMER_LOG_LEVEL", "INFO", LOG_LEVELS, upper=True),
    )
    if source.errors:
        raise ConfigErrors(source.errors)
    return settings
