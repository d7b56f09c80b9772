"""``load(env) -> Settings``: every variable read and checked, every error reported at once.

``load`` is a pure function of a mapping (the CLI passes ``os.environ``): it returns frozen
``Settings`` or raises ``ConfigErrors`` listing *every* bad variable (each message names its
variable), which the CLI turns into exit code 2. This is the one place settings are
validated — ranges, choices, URLs, pairs, and the checks across variables — in one style:
report the variable, carry on with the default. Each command asks only for what it uses:
``load(env, with_services=False)`` reads no Open edX service variable. Nothing reads the
environment at import time. Where Open edX already has a setting for the same thing, the
variable has its name, so operators can reuse values.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping

from consumer.config.env import (
    Env,
    boolean,
    choice,
    integer,
    items,
    number,
    pair,
    required_text,
    seconds,
    text,
    url,
)
from consumer.config.settings import (
    DEFAULT_GROUP_ID,
    DEFAULT_TOPICS,
    KEEP_FOREVER,
    CircuitSettings,
    EngineSettings,
    ExplainSettings,
    KafkaSettings,
    RetrySettings,
    Settings,
)
from consumer.errors import ConfigErrors
from consumer.handlers import Policy
from consumer.programs import CompletionSource
from consumer.rules import ALL_PROGRAMS, ProgramExclusion
from consumer.services.settings import ServiceSettings

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
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


def topic_name_problem(name: str) -> str | None:
    """Why Kafka would refuse ``name`` as a topic name, or None."""
    if len(name) > MAX_TOPIC_LENGTH:
        return f"is {len(name)} characters long, Kafka allows {MAX_TOPIC_LENGTH}"
    if name in (".", ".."):
        return "cannot be '.' or '..'"
    if not TOPIC_NAME.fullmatch(name):
        return "may only hold ASCII letters, digits, '.', '_' and '-'"
    return None


def _bootstrap_servers(env: Env) -> str:
    """A comma list of ``host:port`` (an optional ``PROTOCOL://`` before each, IPv6 in [])."""
    name = "EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS"
    value = required_text(env, name, "is required (a comma list of host:port)")
    servers = [item.strip() for item in value.split(",")]
    for server in servers if value else []:
        match = _LISTENER.fullmatch(server)
        if match is None or not _HOST.fullmatch(match["host"]):
            env.report(name, f"must be a comma list of host:port, and {server!r} is not")
        elif not 1 <= int(match["port"]) <= 65535:
            env.report(name, f"{server!r} has a port outside 1-65535")
    return ",".join(servers)


def _check_topics(env: Env, prefix: str | None, topics: tuple[str, ...], suffix: str) -> None:
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


def _checked_retry(env: Env, retry: RetrySettings) -> RetrySettings:
    if retry.max_backoff_seconds < retry.initial_seconds:
        env.report(
            "CONSUMER_RETRY_MAX_BACKOFF_SECONDS", "must not be below CONSUMER_RETRY_INITIAL_SECONDS"
        )
    return retry


def _checked_circuit(env: Env, circuit: CircuitSettings) -> CircuitSettings:
    if circuit.max_open_seconds < circuit.open_seconds:
        env.report(
            "CONSUMER_CIRCUIT_MAX_OPEN_SECONDS", "must not be below CONSUMER_CIRCUIT_OPEN_SECONDS"
        )
    return circuit


def _programs_without_certificates(env: Env) -> ProgramExclusion:
    values = items(env, "PROGRAMS_WITHOUT_CERTIFICATES")
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


def _policy(env: Env, *, programs_enabled: bool) -> Policy:
    return Policy(
        honor_certificates_enabled=not boolean(env, "DISABLE_HONOR_CERTIFICATES", default=False),
        learner_records_disabled_orgs=frozenset(items(env, "LEARNER_RECORDS_DISABLED_ORGS")),
        programs_without_certificates=_programs_without_certificates(env),
        sync_course_certificates=boolean(env, "CONSUMER_SYNC_COURSE_CERTIFICATES", default=True),
        programs_enabled=programs_enabled,
        completion_source=_completion_source(env),
    )


def _completion_source(env: Env) -> CompletionSource:
    chosen = choice(env, "CONSUMER_COMPLETION_SOURCE", "credentials", ("credentials", "lms"))
    return "lms" if chosen == "lms" else "credentials"


def _services(env: Env, *, pool_size: int) -> ServiceSettings:
    oauth_key, oauth_secret = pair(
        env, "BACKEND_SERVICE_EDX_OAUTH2_KEY", "BACKEND_SERVICE_EDX_OAUTH2_SECRET"
    )
    if not oauth_key and not oauth_secret:
        env.report("BACKEND_SERVICE_EDX_OAUTH2_KEY", "is required (unless CONSUMER_DRY_RUN=true)")
        env.report(
            "BACKEND_SERVICE_EDX_OAUTH2_SECRET", "is required (unless CONSUMER_DRY_RUN=true)"
        )
    return ServiceSettings(
        oauth_url=url(env, "BACKEND_SERVICE_EDX_OAUTH2_PROVIDER_URL", required=True) or "",
        oauth_client_id=oauth_key or "",
        oauth_client_secret=oauth_secret or "",
        credentials_url=url(env, "CREDENTIALS_INTERNAL_SERVICE_URL", required=True) or "",
        lms_url=url(env, "LMS_ROOT_URL", required=True) or "",
        studio_url=url(env, "CMS_ROOT_URL", required=False),
        discovery_url=url(env, "COURSE_CATALOG_API_URL", required=False),
        connect_timeout=seconds(
            env, "CONSUMER_HTTP_CONNECT_TIMEOUT", 3.05, minimum=0.01, maximum=60.0
        ),
        read_timeout=seconds(env, "CONSUMER_HTTP_READ_TIMEOUT", 20.0, minimum=0.01, maximum=600.0),
        total_timeout=seconds(
            env, "CONSUMER_HTTP_TOTAL_TIMEOUT", 25.0, minimum=0.01, maximum=600.0
        ),
        pool_size=pool_size,
        program_cache_ttl=seconds(env, "CONSUMER_PROGRAM_CACHE_TTL_SECONDS", 300.0, minimum=1.0),
    )


def _kafka(env: Env) -> KafkaSettings:
    api_key, api_secret = pair(env, "EVENT_BUS_KAFKA_API_KEY", "EVENT_BUS_KAFKA_API_SECRET")
    registry_key, registry_secret = pair(
        env,
        "EVENT_BUS_KAFKA_SCHEMA_REGISTRY_API_KEY",
        "EVENT_BUS_KAFKA_SCHEMA_REGISTRY_API_SECRET",
    )
    topics = items(env, "CONSUMER_TOPICS", DEFAULT_TOPICS)
    if not topics:
        env.report("CONSUMER_TOPICS", "must name at least one topic")
        topics = DEFAULT_TOPICS
    prefix = text(env, "EVENT_BUS_TOPIC_PREFIX")
    suffix = text(env, "CONSUMER_DEAD_LETTER_TOPIC_SUFFIX", ".dlq") or ".dlq"
    _check_topics(env, prefix, topics, suffix)
    # Several Open edX instances may share a cluster, each with its prefix: so must groups.
    default_group = f"{prefix}-{DEFAULT_GROUP_ID}" if prefix else DEFAULT_GROUP_ID
    retention = integer(
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
        schema_registry_url=url(env, "EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL", required=False),
        schema_registry_api_key=registry_key,
        schema_registry_api_secret=registry_secret,
        topic_prefix=prefix,
        topics=topics,
        group_id=text(env, "CONSUMER_GROUP_ID", default_group) or default_group,
        auto_offset_reset=choice(
            env, "CONSUMER_AUTO_OFFSET_RESET", "earliest", ("earliest", "latest")
        ),
        dead_letter_suffix=suffix,
        dead_letter_retention_ms=retention,
        timeout_seconds=seconds(
            env, "CONSUMER_KAFKA_TIMEOUT_SECONDS", 15.0, minimum=1.0, maximum=300.0
        ),
    )


def _engine(env: Env) -> EngineSettings:
    max_in_flight = integer(env, "CONSUMER_MAX_IN_FLIGHT", 64, minimum=1, maximum=1024)
    return EngineSettings(
        max_in_flight=max_in_flight,
        max_buffered=integer(
            env, "CONSUMER_MAX_BUFFERED", max(2000, 4 * max_in_flight), minimum=max_in_flight
        ),
        commit_interval_seconds=seconds(
            env, "CONSUMER_COMMIT_INTERVAL_SECONDS", 2.0, minimum=0.1, maximum=60.0
        ),
        drain_timeout_seconds=seconds(env, "CONSUMER_DRAIN_TIMEOUT_SECONDS", 30.0, maximum=3600.0),
        # The revoke drain runs inside a poll call: it must end well within
        # max.poll.interval.ms (300 s), or the group drops the worker.
        revoke_timeout_seconds=seconds(env, "CONSUMER_REVOKE_TIMEOUT_SECONDS", 30.0, maximum=240.0),
        max_rate=number(env, "CONSUMER_MAX_RATE", 0.0, float, minimum=0.0, maximum=100_000.0),
    )


def load(env: Mapping[str, str], *, with_services: bool = True) -> Settings:
    """Read and validate every setting from ``env``; raise ``ConfigErrors`` listing every bad one.

    ``with_services=False`` is for commands that call no Open edX service (``dlq inspect``,
    ``offsets``, ``replay --plan``): their variables are then neither required nor read.
    In dry-run (``CONSUMER_DRY_RUN``) no service is called either.
    """
    source = Env(env)
    kafka = _kafka(source)
    engine = _engine(source)
    retry = _checked_retry(
        source,
        RetrySettings(
            max_attempts=integer(source, "CONSUMER_RETRY_MAX_ATTEMPTS", 6, minimum=1, maximum=100),
            max_seconds=seconds(source, "CONSUMER_RETRY_MAX_SECONDS", 300.0, minimum=1.0),
            initial_seconds=seconds(
                source, "CONSUMER_RETRY_INITIAL_SECONDS", 0.5, minimum=0.01, maximum=60.0
            ),
            max_backoff_seconds=seconds(
                source, "CONSUMER_RETRY_MAX_BACKOFF_SECONDS", 30.0, minimum=0.01, maximum=3600.0
            ),
        ),
    )
    circuit = _checked_circuit(
        source,
        CircuitSettings(
            failure_threshold=integer(
                source, "CONSUMER_CIRCUIT_FAILURE_THRESHOLD", 5, minimum=1, maximum=10_000
            ),
            open_seconds=seconds(
                source, "CONSUMER_CIRCUIT_OPEN_SECONDS", 5.0, minimum=0.1, maximum=3600.0
            ),
            max_open_seconds=seconds(
                source, "CONSUMER_CIRCUIT_MAX_OPEN_SECONDS", 60.0, minimum=0.1
            ),
        ),
    )
    dry_run = boolean(source, "CONSUMER_DRY_RUN", default=False)
    services = (
        _services(source, pool_size=engine.max_in_flight) if with_services and not dry_run else None
    )
    discovery_configured = bool(text(source, "COURSE_CATALOG_API_URL"))
    settings = Settings(
        kafka=kafka,
        policy=_policy(source, programs_enabled=discovery_configured),
        services=services,
        engine=engine,
        retry=retry,
        circuit=circuit,
        dry_run=dry_run,
        dry_run_output=text(source, "CONSUMER_DRY_RUN_OUTPUT"),
        metrics_port=integer(source, "CONSUMER_METRICS_PORT", 9100, minimum=0, maximum=65535),
        log_format=choice(source, "CONSUMER_LOG_FORMAT", "json", ("json", "console")),
        log_level=choice(source, "CONSUMER_LOG_LEVEL", "INFO", LOG_LEVELS, upper=True),
    )
    if source.errors:
        raise ConfigErrors(source.errors)
    return settings


def load_explain(env: Mapping[str, str]) -> ExplainSettings:
    """Read the settings ``explain`` uses; raise ``ConfigErrors`` listing every bad one.

    The service variables are required (``CONSUMER_DRY_RUN`` does not apply: explain only
    reads); Kafka's are not read, except the topic names the suggested fixes mention.
    """
    source = Env(env)
    services = _services(source, pool_size=2)
    prefix = text(source, "EVENT_BUS_TOPIC_PREFIX")
    suffix = text(source, "CONSUMER_DEAD_LETTER_TOPIC_SUFFIX", ".dlq") or ".dlq"
    topics = items(source, "CONSUMER_TOPICS", DEFAULT_TOPICS) or DEFAULT_TOPICS
    certificate_topics = [topic for topic in topics if "certificate" in topic] or list(topics)
    settings = ExplainSettings(
        policy=_policy(source, programs_enabled=services.discovery_url is not None),
        services=services,
        certificate_dead_letter_topics=tuple(
            f"{prefix}-{topic}{suffix}" if prefix else f"{topic}{suffix}"
            for topic in certificate_topics
        ),
        log_format=choice(source, "CONSUMER_LOG_FORMAT", "json", ("json", "console")),
        log_level=choice(source, "CONSUMER_LOG_LEVEL", "INFO", LOG_LEVELS, upper=True),
    )
    if source.errors:
        raise ConfigErrors(source.errors)
    return settings
