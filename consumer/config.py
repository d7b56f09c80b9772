"""Settings from environment variables, validated once at start-up.

``load(env)`` is a pure function of a mapping (the CLI passes ``os.environ``): it returns a
frozen ``Settings`` or raises ``ConfigError`` naming the variable, which the CLI turns into
exit code 2. Nothing reads the environment at import time. Where Open edX already has a
setting for the same thing, the variable has its name, so operators can reuse values.
Secrets are ``repr=False`` and ``describe()`` masks them.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlparse

from consumer.errors import ConfigError
from consumer.handlers import Policy
from consumer.rules import ALL_PROGRAMS, ProgramExclusion
from consumer.services.settings import ServiceSettings

T = TypeVar("T")

DEFAULT_TOPICS = ("learning-certificate-lifecycle", "course-catalog-info-changed")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


# ---------------------------------------------------------------------------- parsing


def _text(env: Mapping[str, str], name: str, default: str | None = None) -> str | None:
    value = env.get(name, "").strip()
    return value or default


def _required(env: Mapping[str, str], name: str, why: str = "is required") -> str:
    value = _text(env, name)
    if value is None:
        raise ConfigError(name, why)
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = _text(env, name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(name, f"must be true or false, not {value!r}")


def _number(
    env: Mapping[str, str],
    name: str,
    default: T,
    parse: Callable[[str], T],
    *,
    minimum: float,
    maximum: float = math.inf,
) -> T:
    value = _text(env, name)
    if value is None:
        return default
    try:
        number = parse(value)
    except ValueError:
        raise ConfigError(name, f"must be a number, not {value!r}") from None
    if not math.isfinite(float(number)):  # type: ignore[arg-type]
        raise ConfigError(name, f"must be a finite number, not {value!r}")
    if not minimum <= float(number) <= maximum:  # type: ignore[arg-type]
        bounds = (
            f"at least {minimum}" if maximum == math.inf else f"between {minimum} and {maximum}"
        )
        raise ConfigError(name, f"must be {bounds}, not {value}")
    return number


def _int(
    env: Mapping[str, str], name: str, default: int, *, minimum: int, maximum: float = math.inf
) -> int:
    return _number(env, name, default, int, minimum=minimum, maximum=maximum)


def _seconds(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0) -> float:
    return _number(env, name, default, float, minimum=minimum)


def _choice(
    env: Mapping[str, str],
    name: str,
    default: str,
    choices: tuple[str, ...],
    *,
    upper: bool = False,
) -> str:
    value = _text(env, name, default) or default
    value = value.upper() if upper else value
    if value not in choices:
        raise ConfigError(name, f"must be one of {', '.join(choices)}, not {value!r}")
    return value


def _list(env: Mapping[str, str], name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
    value = _text(env, name)
    if value is None:
        return default
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _url(env: Mapping[str, str], name: str, *, required: bool) -> str | None:
    value = _text(env, name)
    if value is None:
        if required:
            raise ConfigError(name, "is required (unless CONSUMER_DRY_RUN=true)")
        return None
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(name, f"must be an http(s) URL, not {value!r}")
    return value.rstrip("/")


def _pair(env: Mapping[str, str], key_name: str, secret_name: str) -> tuple[str | None, str | None]:
    key, secret = _text(env, key_name), _text(env, secret_name)
    if bool(key) != bool(secret):
        missing = secret_name if key else key_name
        raise ConfigError(missing, f"must be set together with {key_name if key else secret_name}")
    return key, secret


def _without_userinfo(url: str) -> str:
    """Mask ``user:password@`` in a URL (a registry URL may carry its credentials)."""
    parsed = urlparse(url)
    if not parsed.password and not parsed.username:
        return url
    return parsed._replace(
        netloc=f"***@{parsed.hostname}" + (f":{parsed.port}" if parsed.port else "")
    ).geturl()


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
    group_id: str = "credentials-consumer"
    auto_offset_reset: str = "earliest"
    dead_letter_suffix: str = ".dlq"

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
    drain_timeout_seconds: float = 25.0
    revoke_timeout_seconds: float = 15.0


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


def _checked_retry(retry: RetrySettings) -> RetrySettings:
    if retry.max_backoff_seconds < retry.initial_seconds:
        raise ConfigError(
            "CONSUMER_RETRY_MAX_BACKOFF_SECONDS", "must not be below CONSUMER_RETRY_INITIAL_SECONDS"
        )
    return retry


def _checked_circuit(circuit: CircuitSettings) -> CircuitSettings:
    if circuit.max_open_seconds < circuit.open_seconds:
        raise ConfigError(
            "CONSUMER_CIRCUIT_MAX_OPEN_SECONDS", "must not be below CONSUMER_CIRCUIT_OPEN_SECONDS"
        )
    return circuit


def _programs_without_certificates(env: Mapping[str, str]) -> ProgramExclusion:
    values = _list(env, "PROGRAMS_WITHOUT_CERTIFICATES")
    if any(value.upper() == ALL_PROGRAMS for value in values):
        return ALL_PROGRAMS
    for value in values:
        try:
            uuid.UUID(value)
        except ValueError:
            raise ConfigError(
                "PROGRAMS_WITHOUT_CERTIFICATES", f"{value!r} is neither a program UUID nor ALL"
            ) from None
    return frozenset(values)


def _policy(env: Mapping[str, str], *, programs_enabled: bool) -> Policy:
    return Policy(
        honor_certificates_enabled=not _bool(env, "DISABLE_HONOR_CERTIFICATES", default=False),
        learner_records_disabled_orgs=frozenset(_list(env, "LEARNER_RECORDS_DISABLED_ORGS")),
        programs_without_certificates=_programs_without_certificates(env),
        sync_course_certificates=_bool(env, "CONSUMER_SYNC_COURSE_CERTIFICATES", default=True),
        programs_enabled=programs_enabled,
    )


def _services(env: Mapping[str, str], *, pool_size: int) -> ServiceSettings:
    oauth_key, oauth_secret = _pair(
        env, "BACKEND_SERVICE_EDX_OAUTH2_KEY", "BACKEND_SERVICE_EDX_OAUTH2_SECRET"
    )
    if not oauth_key:
        raise ConfigError(
            "BACKEND_SERVICE_EDX_OAUTH2_KEY", "is required (unless CONSUMER_DRY_RUN=true)"
        )
    return ServiceSettings(
        oauth_url=_url(env, "BACKEND_SERVICE_EDX_OAUTH2_PROVIDER_URL", required=True) or "",
        oauth_client_id=oauth_key,
        oauth_client_secret=oauth_secret or "",
        credentials_url=_url(env, "CREDENTIALS_INTERNAL_SERVICE_URL", required=True) or "",
        lms_url=_url(env, "LMS_ROOT_URL", required=True) or "",
        studio_url=_url(env, "CMS_ROOT_URL", required=False),
        discovery_url=_url(env, "COURSE_CATALOG_API_URL", required=False),
        connect_timeout=_seconds(env, "CONSUMER_HTTP_CONNECT_TIMEOUT", 3.05, minimum=0.01),
        read_timeout=_seconds(env, "CONSUMER_HTTP_READ_TIMEOUT", 20.0, minimum=0.01),
        total_timeout=_seconds(env, "CONSUMER_HTTP_TOTAL_TIMEOUT", 25.0, minimum=0.01),
        pool_size=pool_size,
        program_cache_ttl=_seconds(env, "CONSUMER_PROGRAM_CACHE_TTL_SECONDS", 300.0, minimum=1.0),
        completion_source=_choice(  # type: ignore[arg-type]
            env, "CONSUMER_COMPLETION_SOURCE", "credentials", ("credentials", "lms")
        ),
    )


def load(env: Mapping[str, str]) -> Settings:
    """Read and validate every setting from ``env``; raise ``ConfigError`` on the first bad one."""
    api_key, api_secret = _pair(env, "EVENT_BUS_KAFKA_API_KEY", "EVENT_BUS_KAFKA_API_SECRET")
    registry_key, registry_secret = _pair(
        env,
        "EVENT_BUS_KAFKA_SCHEMA_REGISTRY_API_KEY",
        "EVENT_BUS_KAFKA_SCHEMA_REGISTRY_API_SECRET",
    )
    topics = _list(env, "CONSUMER_TOPICS", DEFAULT_TOPICS)
    if not topics:
        raise ConfigError("CONSUMER_TOPICS", "must name at least one topic")
    kafka = KafkaSettings(
        bootstrap_servers=_required(env, "EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS"),
        api_key=api_key,
        api_secret=api_secret,
        schema_registry_url=_url(env, "EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL", required=False),
        schema_registry_api_key=registry_key,
        schema_registry_api_secret=registry_secret,
        topic_prefix=_text(env, "EVENT_BUS_TOPIC_PREFIX"),
        topics=topics,
        group_id=_text(env, "CONSUMER_GROUP_ID", "credentials-consumer") or "credentials-consumer",
        auto_offset_reset=_choice(
            env, "CONSUMER_AUTO_OFFSET_RESET", "earliest", ("earliest", "latest")
        ),
        dead_letter_suffix=_text(env, "CONSUMER_DEAD_LETTER_TOPIC_SUFFIX", ".dlq") or ".dlq",
    )
    max_in_flight = _int(env, "CONSUMER_MAX_IN_FLIGHT", 64, minimum=1, maximum=1024)
    engine = EngineSettings(
        max_in_flight=max_in_flight,
        max_buffered=_int(
            env, "CONSUMER_MAX_BUFFERED", max(2000, 4 * max_in_flight), minimum=max_in_flight
        ),
        commit_interval_seconds=_seconds(env, "CONSUMER_COMMIT_INTERVAL_SECONDS", 2.0, minimum=0.1),
        drain_timeout_seconds=_seconds(env, "CONSUMER_DRAIN_TIMEOUT_SECONDS", 25.0),
        revoke_timeout_seconds=_seconds(env, "CONSUMER_REVOKE_TIMEOUT_SECONDS", 15.0),
    )
    retry = _checked_retry(
        RetrySettings(
            max_attempts=_int(env, "CONSUMER_RETRY_MAX_ATTEMPTS", 6, minimum=1),
            max_seconds=_seconds(env, "CONSUMER_RETRY_MAX_SECONDS", 300.0, minimum=1.0),
            initial_seconds=_seconds(env, "CONSUMER_RETRY_INITIAL_SECONDS", 0.5, minimum=0.01),
            max_backoff_seconds=_seconds(
                env, "CONSUMER_RETRY_MAX_BACKOFF_SECONDS", 30.0, minimum=0.01
            ),
        )
    )
    circuit = _checked_circuit(
        CircuitSettings(
            failure_threshold=_int(env, "CONSUMER_CIRCUIT_FAILURE_THRESHOLD", 5, minimum=1),
            open_seconds=_seconds(env, "CONSUMER_CIRCUIT_OPEN_SECONDS", 5.0, minimum=0.1),
            max_open_seconds=_seconds(env, "CONSUMER_CIRCUIT_MAX_OPEN_SECONDS", 60.0, minimum=0.1),
        )
    )
    dry_run = _bool(env, "CONSUMER_DRY_RUN", default=False)
    services = None if dry_run else _services(env, pool_size=max_in_flight)
    discovery_configured = bool(_text(env, "COURSE_CATALOG_API_URL"))
    return Settings(
        kafka=kafka,
        policy=_policy(env, programs_enabled=discovery_configured),
        services=services,
        engine=engine,
        retry=retry,
        circuit=circuit,
        dry_run=dry_run,
        dry_run_output=_text(env, "CONSUMER_DRY_RUN_OUTPUT"),
        metrics_port=_int(env, "CONSUMER_METRICS_PORT", 9100, minimum=0, maximum=65535),
        log_format=_choice(env, "CONSUMER_LOG_FORMAT", "json", ("json", "console")),
        log_level=_choice(env, "CONSUMER_LOG_LEVEL", "INFO", LOG_LEVELS, upper=True),
    )


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
    """Read the settings ``explain`` uses; raise ``ConfigError`` on the first bad one.

    The service variables are required (``CONSUMER_DRY_RUN`` does not apply: explain only
    reads); Kafka's are not read, except the topic names the suggested fixes mention.
    """
    services = _services(env, pool_size=2)
    prefix = _text(env, "EVENT_BUS_TOPIC_PREFIX")
    suffix = _text(env, "CONSUMER_DEAD_LETTER_TOPIC_SUFFIX", ".dlq") or ".dlq"
    topics = _list(env, "CONSUMER_TOPICS", DEFAULT_TOPICS) or DEFAULT_TOPICS
    certificate_topics = [topic for topic in topics if "certificate" in topic] or list(topics)
    return ExplainSettings(
        policy=_policy(env, programs_enabled=services.discovery_url is not None),
        services=services,
        certificate_dead_letter_topics=tuple(
            f"{prefix}-{topic}{suffix}" if prefix else f"{topic}{suffix}"
            for topic in certificate_topics
        ),
        log_format=_choice(env, "CONSUMER_LOG_FORMAT", "json", ("json", "console")),
        log_level=_choice(env, "CONSUMER_LOG_LEVEL", "INFO", LOG_LEVELS, upper=True),
    )
