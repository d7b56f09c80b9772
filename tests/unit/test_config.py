"""Settings from environment variables: defaults, parsing, errors naming the variable, secrets."""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType

import pytest

from consumer import config
from consumer.config import (
    CircuitSettings,
    EngineSettings,
    KafkaSettings,
    RetrySettings,
    Settings,
)
from consumer.errors import ConfigError, ConfigErrors
from consumer.handlers import Policy
from consumer.rules import ALL_PROGRAMS
from consumer.services.settings import ServiceSettings

BOOTSTRAP = "EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS"
OAUTH_SECRET = "oauth-secret-value-5e8d"
KAFKA_SECRET = "kafka-secret-value-7f3a"
REGISTRY_SECRET = "registry-secret-value-91c2"
REQUIRED_SERVICES = {
    "BACKEND_SERVICE_EDX_OAUTH2_PROVIDER_URL": "https://lms.example.com/oauth2",
    "BACKEND_SERVICE_EDX_OAUTH2_KEY": "credentials-consumer",
    "BACKEND_SERVICE_EDX_OAUTH2_SECRET": OAUTH_SECRET,
    "CREDENTIALS_INTERNAL_SERVICE_URL": "https://credentials.example.com",
    "LMS_ROOT_URL": "https://lms.example.com",
}
BASE = {BOOTSTRAP: "kafka-1:9092,kafka-2:9092", **REQUIRED_SERVICES}


def load(**env: str) -> Settings:
    return config.load({**BASE, **env})


# ---------------------------------------------------------------------------- defaults


def test_defaults_with_only_the_required_variables() -> None:
    """With only the required variables set, every setting takes its documented default."""
    settings = config.load(BASE)
    assert settings == Settings(
        kafka=KafkaSettings(bootstrap_servers="kafka-1:9092,kafka-2:9092"),
        policy=Policy(programs_enabled=False),
        services=ServiceSettings(
            oauth_url="https://lms.example.com/oauth2",
            oauth_client_id="credentials-consumer",
            oauth_client_secret=OAUTH_SECRET,
            credentials_url="https://credentials.example.com",
            lms_url="https://lms.example.com",
        ),
        engine=EngineSettings(),
        retry=RetrySettings(),
        circuit=CircuitSettings(),
    )


def test_dry_run_needs_only_the_bootstrap_servers() -> None:
    """In dry-run nothing is called, so no service variable is required and services is None."""
    settings = config.load({BOOTSTRAP: "kafka:9092", "CONSUMER_DRY_RUN": "true"})
    assert settings.dry_run is True
    assert settings.services is None


@pytest.mark.parametrize("variable", sorted(REQUIRED_SERVICES))
def test_service_variables_are_required_unless_dry_run(variable: str) -> None:
    """Outside dry-run each service variable is required; ConfigError names it."""
    env = {name: value for name, value in BASE.items() if name != variable}
    with pytest.raises(ConfigError) as caught:
        config.load(env)
    assert caught.value.variable == variable
    assert config.load({**env, "CONSUMER_DRY_RUN": "true"}).services is None


@pytest.mark.parametrize(
    ("get", "expected"),
    [
        pytest.param(lambda s: s.kafka.api_key, None, id="EVENT_BUS_KAFKA_API_KEY unset"),
        pytest.param(
            lambda s: s.kafka.schema_registry_url, None, id="EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL"
        ),
        pytest.param(lambda s: s.kafka.topic_prefix, None, id="EVENT_BUS_TOPIC_PREFIX unset"),
        pytest.param(
            lambda s: s.kafka.topics,
            ("learning-certificate-lifecycle", "course-catalog-info-changed"),
            id="CONSUMER_TOPICS",
        ),
        pytest.param(lambda s: s.kafka.group_id, "credentials-consumer", id="CONSUMER_GROUP_ID"),
        pytest.param(
            lambda s: s.kafka.auto_offset_reset, "earliest", id="CONSUMER_AUTO_OFFSET_RESET"
        ),
        pytest.param(
            lambda s: s.kafka.dead_letter_suffix, ".dlq", id="CONSUMER_DEAD_LETTER_TOPIC_SUFFIX"
        ),
        pytest.param(lambda s: s.engine.max_in_flight, 64, id="CONSUMER_MAX_IN_FLIGHT"),
        pytest.param(lambda s: s.engine.max_buffered, 2000, id="CONSUMER_MAX_BUFFERED"),
        pytest.param(lambda s: s.dry_run, False, id="CONSUMER_DRY_RUN"),
        pytest.param(lambda s: s.dry_run_output, None, id="CONSUMER_DRY_RUN_OUTPUT"),
        pytest.param(lambda s: s.metrics_port, 9100, id="CONSUMER_METRICS_PORT"),
        pytest.param(lambda s: s.log_format, "json", id="CONSUMER_LOG_FORMAT"),
        pytest.param(lambda s: s.log_level, "INFO", id="CONSUMER_LOG_LEVEL"),
        pytest.param(
            lambda s: s.policy.programs_without_certificates,
            frozenset(),
            id="PROGRAMS_WITHOUT_CERTIFICATES",
        ),
        pytest.param(
            lambda s: s.policy.learner_records_disabled_orgs,
            frozenset(),
            id="LEARNER_RECORDS_DISABLED_ORGS",
        ),
        pytest.param(
            lambda s: s.policy.sync_course_certificates,
            True,
            id="CONSUMER_SYNC_COURSE_CERTIFICATES",
        ),
        pytest.param(
            lambda s: s.policy.honor_certificates_enabled, True, id="DISABLE_HONOR_CERTIFICATES"
        ),
        pytest.param(
            lambda s: s.policy.programs_enabled, False, id="COURSE_CATALOG_API_URL: no programs"
        ),
        pytest.param(lambda s: s.services.studio_url, None, id="CMS_ROOT_URL"),
        pytest.param(lambda s: s.services.discovery_url, None, id="COURSE_CATALOG_API_URL"),
        pytest.param(
            lambda s: s.services.connect_timeout, 3.05, id="CONSUMER_HTTP_CONNECT_TIMEOUT"
        ),
        pytest.param(lambda s: s.services.read_timeout, 20.0, id="CONSUMER_HTTP_READ_TIMEOUT"),
        pytest.param(lambda s: s.services.total_timeout, 25.0, id="CONSUMER_HTTP_TOTAL_TIMEOUT"),
        pytest.param(
            lambda s: s.services.program_cache_ttl, 300.0, id="CONSUMER_PROGRAM_CACHE_TTL_SECONDS"
        ),
        pytest.param(
            lambda s: s.policy.completion_source, "credentials", id="CONSUMER_COMPLETION_SOURCE"
        ),
        pytest.param(lambda s: s.services.pool_size, 64, id="pool size: CONSUMER_MAX_IN_FLIGHT"),
    ],
)
def test_documented_defaults(get: Callable[[Settings], object], expected: object) -> None:
    """Each default is the one in DESIGN's configuration table."""
    assert get(config.load(BASE)) == expected


def test_max_buffered_default_grows_with_max_in_flight() -> None:
    """CONSUMER_MAX_BUFFERED defaults to max(2000, 4 x CONSUMER_MAX_IN_FLIGHT)."""
    assert load(CONSUMER_MAX_IN_FLIGHT="1000").engine.max_buffered == 4000
    assert load(CONSUMER_MAX_IN_FLIGHT="10").engine.max_buffered == 2000


@pytest.mark.parametrize("blank", ["", "   ", "\t"])
def test_blank_values_mean_unset(blank: str) -> None:
    """A blank variable is treated as unset: the default applies."""
    settings = load(
        CONSUMER_GROUP_ID=blank,
        CONSUMER_MAX_IN_FLIGHT=blank,
        CONSUMER_DRY_RUN=blank,
        EVENT_BUS_TOPIC_PREFIX=blank,
        CONSUMER_LOG_LEVEL=blank,
        CONSUMER_TOPICS=blank,
    )
    assert settings == config.load(BASE)


def test_load_is_pure(monkeypatch: pytest.MonkeyPatch) -> None:
    """load() reads only the mapping it is given, never os.environ, and does not change it."""
    monkeypatch.setenv("CONSUMER_MAX_IN_FLIGHT", "not-a-number")
    monkeypatch.setenv("EVENT_BUS_KAFKA_API_KEY", "key-without-secret")
    env = MappingProxyType(dict(BASE))
    assert config.load(env).engine.max_in_flight == 64
    assert dict(env) == BASE


# ---------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("variable", "raw", "get", "expected"),
    [
        pytest.param(BOOTSTRAP, " b1:9092 ", lambda s: s.kafka.bootstrap_servers, "b1:9092"),
        pytest.param(
            "EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL",
            "https://registry.example.com:8081/",
            lambda s: s.kafka.schema_registry_url,
            "https://registry.example.com:8081",
            id="registry URL, trailing slash dropped",
        ),
        pytest.param("EVENT_BUS_TOPIC_PREFIX", "prod", lambda s: s.kafka.topic_prefix, "prod"),
        pytest.param(
            "CONSUMER_TOPICS", " a , b,,c ", lambda s: s.kafka.topics, ("a", "b", "c"), id="topics"
        ),
        pytest.param("CONSUMER_GROUP_ID", "g2", lambda s: s.kafka.group_id, "g2"),
        pytest.param(
            "CONSUMER_AUTO_OFFSET_RESET", "latest", lambda s: s.kafka.auto_offset_reset, "latest"
        ),
        pytest.param(
            "CONSUMER_DEAD_LETTER_TOPIC_SUFFIX",
            "-dead",
            lambda s: s.kafka.dead_letter_suffix,
            "-dead",
        ),
        pytest.param("CONSUMER_MAX_IN_FLIGHT", "1", lambda s: s.engine.max_in_flight, 1),
        pytest.param("CONSUMER_MAX_IN_FLIGHT", "1024", lambda s: s.engine.max_in_flight, 1024),
        pytest.param("CONSUMER_MAX_BUFFERED", "64", lambda s: s.engine.max_buffered, 64),
        pytest.param(
            "CONSUMER_COMMIT_INTERVAL_SECONDS",
            "0.1",
            lambda s: s.engine.commit_interval_seconds,
            0.1,
        ),
        pytest.param(
            "CONSUMER_DRAIN_TIMEOUT_SECONDS", "40", lambda s: s.engine.drain_timeout_seconds, 40.0
        ),
        pytest.param(
            "CONSUMER_REVOKE_TIMEOUT_SECONDS",
            "0",
            lambda s: s.engine.revoke_timeout_seconds,
            0.0,
        ),
        pytest.param("CONSUMER_RETRY_MAX_ATTEMPTS", "1", lambda s: s.retry.max_attempts, 1),
        pytest.param("CONSUMER_RETRY_MAX_SECONDS", "1", lambda s: s.retry.max_seconds, 1.0),
        pytest.param(
            "CONSUMER_RETRY_INITIAL_SECONDS", "0.01", lambda s: s.retry.initial_seconds, 0.01
        ),
        pytest.param(
            "CONSUMER_RETRY_MAX_BACKOFF_SECONDS",
            "12.5",
            lambda s: s.retry.max_backoff_seconds,
            12.5,
        ),
        pytest.param(
            "CONSUMER_CIRCUIT_FAILURE_THRESHOLD", "1", lambda s: s.circuit.failure_threshold, 1
        ),
        pytest.param("CONSUMER_CIRCUIT_OPEN_SECONDS", "0.1", lambda s: s.circuit.open_seconds, 0.1),
        pytest.param(
            "CONSUMER_CIRCUIT_MAX_OPEN_SECONDS",
            "120",
            lambda s: s.circuit.max_open_seconds,
            120.0,
        ),
        pytest.param("CONSUMER_DRY_RUN", "true", lambda s: s.dry_run, True, id="dry run true"),
        pytest.param("CONSUMER_DRY_RUN", "TRUE", lambda s: s.dry_run, True, id="dry run TRUE"),
        pytest.param("CONSUMER_DRY_RUN", "1", lambda s: s.dry_run, True, id="dry run 1"),
        pytest.param("CONSUMER_DRY_RUN", "yes", lambda s: s.dry_run, True, id="dry run yes"),
        pytest.param("CONSUMER_DRY_RUN", "on", lambda s: s.dry_run, True, id="dry run on"),
        pytest.param("CONSUMER_DRY_RUN", "false", lambda s: s.dry_run, False, id="dry run false"),
        pytest.param("CONSUMER_DRY_RUN", "0", lambda s: s.dry_run, False, id="dry run 0"),
        pytest.param("CONSUMER_DRY_RUN", "no", lambda s: s.dry_run, False, id="dry run no"),
        pytest.param("CONSUMER_DRY_RUN", "Off", lambda s: s.dry_run, False, id="dry run Off"),
        pytest.param(
            "CONSUMER_DRY_RUN_OUTPUT",
            "/tmp/commands.jsonl",
            lambda s: s.dry_run_output,
            "/tmp/commands.jsonl",
        ),
        pytest.param("CONSUMER_METRICS_PORT", "0", lambda s: s.metrics_port, 0),
        pytest.param("CONSUMER_METRICS_PORT", "65535", lambda s: s.metrics_port, 65535),
        pytest.param("CONSUMER_LOG_FORMAT", "console", lambda s: s.log_format, "console"),
        pytest.param("CONSUMER_LOG_LEVEL", "DEBUG", lambda s: s.log_level, "DEBUG"),
        pytest.param("CONSUMER_LOG_LEVEL", "WARNING", lambda s: s.log_level, "WARNING"),
        pytest.param("CONSUMER_LOG_LEVEL", "ERROR", lambda s: s.log_level, "ERROR"),
        pytest.param(
            "CONSUMER_LOG_LEVEL", "debug", lambda s: s.log_level, "DEBUG", id="log level any case"
        ),
        pytest.param(
            "BACKEND_SERVICE_EDX_OAUTH2_PROVIDER_URL",
            "http://lms:8000/oauth2/",
            lambda s: s.services.oauth_url,
            "http://lms:8000/oauth2",
        ),
        pytest.param(
            "BACKEND_SERVICE_EDX_OAUTH2_KEY", "k2", lambda s: s.services.oauth_client_id, "k2"
        ),
        pytest.param(
            "BACKEND_SERVICE_EDX_OAUTH2_SECRET",
            "s2",
            lambda s: s.services.oauth_client_secret,
            "s2",
        ),
        pytest.param(
            "CREDENTIALS_INTERNAL_SERVICE_URL",
            "http://credentials:18150/",
            lambda s: s.services.credentials_url,
            "http://credentials:18150",
        ),
        pytest.param(
            "LMS_ROOT_URL", "http://lms:8000", lambda s: s.services.lms_url, "http://lms:8000"
        ),
        pytest.param(
            "CMS_ROOT_URL",
            "http://studio:8010/",
            lambda s: s.services.studio_url,
            "http://studio:8010",
        ),
        pytest.param(
            "COURSE_CATALOG_API_URL",
            "http://discovery:18381/api/v1/",
            lambda s: (s.services.discovery_url, s.policy.programs_enabled),
            ("http://discovery:18381/api/v1", True),
            id="COURSE_CATALOG_API_URL enables programs",
        ),
        pytest.param(
            "CONSUMER_HTTP_CONNECT_TIMEOUT", "1.5", lambda s: s.services.connect_timeout, 1.5
        ),
        pytest.param("CONSUMER_HTTP_READ_TIMEOUT", "60", lambda s: s.services.read_timeout, 60.0),
        pytest.param(
            "CONSUMER_HTTP_TOTAL_TIMEOUT", "12.5", lambda s: s.services.total_timeout, 12.5
        ),
        pytest.param(
            "CONSUMER_PROGRAM_CACHE_TTL_SECONDS", "1", lambda s: s.services.program_cache_ttl, 1.0
        ),
        pytest.param(
            "CONSUMER_COMPLETION_SOURCE", "lms", lambda s: s.policy.completion_source, "lms"
        ),
        pytest.param(
            "CONSUMER_MAX_IN_FLIGHT",
            "8",
            lambda s: s.services.pool_size,
            8,
            id="pool size follows CONSUMER_MAX_IN_FLIGHT",
        ),
        pytest.param(
            "PROGRAMS_WITHOUT_CERTIFICATES",
            " 0b5c3a1e-0000-4000-8000-000000000001 ,0b5c3a1e-0000-4000-8000-000000000002,, ",
            lambda s: s.policy.programs_without_certificates,
            frozenset(
                {"0b5c3a1e-0000-4000-8000-000000000001", "0b5c3a1e-0000-4000-8000-000000000002"}
            ),
            id="PROGRAMS_WITHOUT_CERTIFICATES list",
        ),
        pytest.param(
            "PROGRAMS_WITHOUT_CERTIFICATES",
            "all",
            lambda s: s.policy.programs_without_certificates,
            ALL_PROGRAMS,
            id="PROGRAMS_WITHOUT_CERTIFICATES ALL, any case",
        ),
        pytest.param(
            "LEARNER_RECORDS_DISABLED_ORGS",
            "OrgX, OrgY",
            lambda s: s.policy.learner_records_disabled_orgs,
            frozenset({"OrgX", "OrgY"}),
        ),
        pytest.param(
            "CONSUMER_SYNC_COURSE_CERTIFICATES",
            "false",
            lambda s: s.policy.sync_course_certificates,
            False,
        ),
        pytest.param(
            "DISABLE_HONOR_CERTIFICATES",
            "true",
            lambda s: s.policy.honor_certificates_enabled,
            False,
        ),
    ],
)
def test_every_variable_is_parsed(
    variable: str, raw: str, get: Callable[[Settings], object], expected: object
) -> None:
    """Each variable's value lands, parsed, in its setting."""
    assert get(load(**{variable: raw})) == expected


@pytest.mark.parametrize(
    ("key_var", "secret_var", "get"),
    [
        pytest.param(
            "EVENT_BUS_KAFKA_API_KEY",
            "EVENT_BUS_KAFKA_API_SECRET",
            lambda s: (s.kafka.api_key, s.kafka.api_secret),
            id="kafka SASL",
        ),
        pytest.param(
            "EVENT_BUS_KAFKA_SCHEMA_REGISTRY_API_KEY",
            "EVENT_BUS_KAFKA_SCHEMA_REGISTRY_API_SECRET",
            lambda s: (s.kafka.schema_registry_api_key, s.kafka.schema_registry_api_secret),
            id="registry basic auth",
        ),
    ],
)
def test_key_secret_pairs_are_parsed_together(
    key_var: str, secret_var: str, get: Callable[[Settings], object]
) -> None:
    """A key and its secret, set together, are both kept."""
    assert get(load(**{key_var: "the-key", secret_var: "the-secret"})) == ("the-key", "the-secret")


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        (BOOTSTRAP, ""),
        (BOOTSTRAP, "   "),
        ("EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL", "registry:8081"),
        ("EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL", "ftp://registry:8081"),
        ("EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL", "http://"),
        ("CONSUMER_TOPICS", " , ,"),
        ("CONSUMER_AUTO_OFFSET_RESET", "smallest"),
        ("CONSUMER_AUTO_OFFSET_RESET", "EARLIEST"),
        ("CONSUMER_MAX_IN_FLIGHT", "0"),
        ("CONSUMER_MAX_IN_FLIGHT", "1025"),
        ("CONSUMER_MAX_IN_FLIGHT", "ten"),
        ("CONSUMER_MAX_IN_FLIGHT", "1.5"),
        ("CONSUMER_MAX_BUFFERED", "63"),
        ("CONSUMER_MAX_BUFFERED", "lots"),
        ("CONSUMER_COMMIT_INTERVAL_SECONDS", "0.05"),
        ("CONSUMER_COMMIT_INTERVAL_SECONDS", "soon"),
        ("CONSUMER_DRAIN_TIMEOUT_SECONDS", "-1"),
        ("CONSUMER_DRAIN_TIMEOUT_SECONDS", "nan"),
        ("CONSUMER_REVOKE_TIMEOUT_SECONDS", "-0.5"),
        ("CONSUMER_RETRY_MAX_ATTEMPTS", "0"),
        ("CONSUMER_RETRY_MAX_ATTEMPTS", "3.0"),
        ("CONSUMER_RETRY_MAX_SECONDS", "0.5"),
        ("CONSUMER_RETRY_INITIAL_SECONDS", "0"),
        ("CONSUMER_RETRY_MAX_BACKOFF_SECONDS", "0.001"),
        ("CONSUMER_CIRCUIT_FAILURE_THRESHOLD", "0"),
        ("CONSUMER_CIRCUIT_FAILURE_THRESHOLD", "five"),
        ("CONSUMER_CIRCUIT_OPEN_SECONDS", "0"),
        ("CONSUMER_CIRCUIT_MAX_OPEN_SECONDS", "0.01"),
        ("CONSUMER_DRY_RUN", "maybe"),
        ("CONSUMER_METRICS_PORT", "65536"),
        ("CONSUMER_METRICS_PORT", "-1"),
        ("CONSUMER_METRICS_PORT", "http"),
        ("CONSUMER_LOG_FORMAT", "xml"),
        ("CONSUMER_LOG_LEVEL", "VERBOSE"),
        ("BACKEND_SERVICE_EDX_OAUTH2_PROVIDER_URL", "lms.example.com/oauth2"),
        ("CREDENTIALS_INTERNAL_SERVICE_URL", "credentials"),
        ("LMS_ROOT_URL", "tcp://lms:8000"),
        ("CMS_ROOT_URL", "studio"),
        ("COURSE_CATALOG_API_URL", "/api/v1"),
        ("CONSUMER_HTTP_CONNECT_TIMEOUT", "0"),
        ("CONSUMER_HTTP_READ_TIMEOUT", "-5"),
        ("CONSUMER_HTTP_TOTAL_TIMEOUT", "0"),
        ("CONSUMER_PROGRAM_CACHE_TTL_SECONDS", "0.5"),
        ("CONSUMER_COMPLETION_SOURCE", "discovery"),
        ("CONSUMER_SYNC_COURSE_CERTIFICATES", "sometimes"),
        ("DISABLE_HONOR_CERTIFICATES", "2"),
        ("PROGRAMS_WITHOUT_CERTIFICATES", "masters-program"),
    ],
)
def test_bad_value_raises_config_error_naming_the_variable(variable: str, raw: str) -> None:
    """Each invalid value raises ConfigError whose message starts with the variable's name."""
    env = {**BASE, variable: raw}
    with pytest.raises(ConfigError) as caught:
        config.load(env)
    assert caught.value.variable == variable
    assert str(caught.value).startswith(f"{variable}: ")
    assert caught.value.reason == "config"


@pytest.mark.parametrize(
    ("present", "missing"),
    [
        ("EVENT_BUS_KAFKA_API_KEY", "EVENT_BUS_KAFKA_API_SECRET"),
        ("EVENT_BUS_KAFKA_API_SECRET", "EVENT_BUS_KAFKA_API_KEY"),
        ("EVENT_BUS_KAFKA_SCHEMA_REGISTRY_API_KEY", "EVENT_BUS_KAFKA_SCHEMA_REGISTRY_API_SECRET"),
        ("EVENT_BUS_KAFKA_SCHEMA_REGISTRY_API_SECRET", "EVENT_BUS_KAFKA_SCHEMA_REGISTRY_API_KEY"),
        ("BACKEND_SERVICE_EDX_OAUTH2_KEY", "BACKEND_SERVICE_EDX_OAUTH2_SECRET"),
        ("BACKEND_SERVICE_EDX_OAUTH2_SECRET", "BACKEND_SERVICE_EDX_OAUTH2_KEY"),
    ],
)
def test_key_and_secret_must_come_together(present: str, missing: str) -> None:
    """Half a key/secret pair is an error naming the missing half, without echoing the value."""
    env = {
        name: value
        for name, value in BASE.items()
        if not name.startswith("BACKEND_SERVICE_EDX_OAUTH2_") or name.endswith("PROVIDER_URL")
    }
    with pytest.raises(ConfigError) as caught:
        config.load({**env, present: "half-of-a-pair-3b9d"})
    assert caught.value.variable == missing
    assert present in str(caught.value)
    assert "half-of-a-pair-3b9d" not in str(caught.value)


SECONDS_VARIABLES = (
    "CONSUMER_COMMIT_INTERVAL_SECONDS",
    "CONSUMER_DRAIN_TIMEOUT_SECONDS",
    "CONSUMER_REVOKE_TIMEOUT_SECONDS",
    "CONSUMER_RETRY_MAX_SECONDS",
    "CONSUMER_RETRY_INITIAL_SECONDS",
    "CONSUMER_RETRY_MAX_BACKOFF_SECONDS",
    "CONSUMER_CIRCUIT_OPEN_SECONDS",
    "CONSUMER_CIRCUIT_MAX_OPEN_SECONDS",
    "CONSUMER_HTTP_CONNECT_TIMEOUT",
    "CONSUMER_HTTP_READ_TIMEOUT",
    "CONSUMER_HTTP_TOTAL_TIMEOUT",
    "CONSUMER_PROGRAM_CACHE_TTL_SECONDS",
)


def test_infinite_seconds_are_rejected() -> None:
    """Every seconds variable set to 'inf' raises ConfigError naming that variable."""
    not_rejected = []
    for variable in SECONDS_VARIABLES:
        try:
            load(**{variable: "inf"})
        except ConfigError as error:
            if error.variable != variable:
                not_rejected.append(variable)
        else:
            not_rejected.append(variable)
    assert not_rejected == []


@pytest.mark.parametrize(
    ("start_var", "cap_var"),
    [
        ("CONSUMER_RETRY_INITIAL_SECONDS", "CONSUMER_RETRY_MAX_BACKOFF_SECONDS"),
        ("CONSUMER_CIRCUIT_OPEN_SECONDS", "CONSUMER_CIRCUIT_MAX_OPEN_SECONDS"),
    ],
)
def test_cap_below_start_value_is_rejected(start_var: str, cap_var: str) -> None:
    """A maximum below its starting value raises ConfigError naming the maximum."""
    with pytest.raises(ConfigError) as caught:
        load(**{start_var: "10", cap_var: "1"})
    assert caught.value.variable == cap_var


# ---------------------------------------------------------------------------- secrets


def full_secrets() -> Settings:
    return load(
        EVENT_BUS_KAFKA_API_KEY="kafka-key",
        EVENT_BUS_KAFKA_API_SECRET=KAFKA_SECRET,
        EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL="https://registry.example.com",
        EVENT_BUS_KAFKA_SCHEMA_REGISTRY_API_KEY="registry-key",
        EVENT_BUS_KAFKA_SCHEMA_REGISTRY_API_SECRET=REGISTRY_SECRET,
    )


SECRETS = (KAFKA_SECRET, REGISTRY_SECRET, OAUTH_SECRET)


@pytest.mark.parametrize("render", [repr, str], ids=["repr", "str"])
def test_secrets_never_in_repr(render: Callable[[object], str]) -> None:
    """repr()/str() of the settings and of each part never show a secret."""
    settings = full_secrets()
    for part in (settings, settings.kafka, settings.services):
        text = render(part)
        for secret in SECRETS:
            assert secret not in text
    assert "kafka-key" in render(settings)  # a key is an identity, not a secret: shown


def test_secrets_masked_in_describe() -> None:
    """describe() shows every setting once, secrets as '***' and never their values."""
    settings = full_secrets()
    rows = config.describe(settings)
    values = dict(rows)
    assert len(values) == len(rows)
    assert values["api_secret"] == "***"
    assert values["schema_registry_api_secret"] == "***"
    assert values["oauth_client_secret"] == "***"
    assert values["api_key"] == "kafka-key"
    for _, value in rows:
        for secret in SECRETS:
            assert secret not in value
    assert settings.services is not None
    expected_names = {
        *KafkaSettings.__dataclass_fields__,
        *EngineSettings.__dataclass_fields__,
        *RetrySettings.__dataclass_fields__,
        *CircuitSettings.__dataclass_fields__,
        *Policy.__dataclass_fields__,
        *ServiceSettings.__dataclass_fields__,
        "dry_run",
        "dry_run_output",
        "metrics_port",
        "log_format",
        "log_level",
    }
    assert set(values) == expected_names


def test_describe_shows_unset_secrets_as_none() -> None:
    """An unset Kafka secret is shown as None, so describe() tells 'unset' from 'set'."""
    values = dict(config.describe(config.load(BASE)))
    assert values["api_secret"] == "None"
    assert values["schema_registry_api_secret"] == "None"


def test_client_config_uses_sasl_only_with_credentials() -> None:
    """Kafka clients use SASL_SSL PLAIN with key and secret when set, plaintext otherwise."""
    assert config.load(BASE).kafka.client_config() == {
        "bootstrap.servers": "kafka-1:9092,kafka-2:9092"
    }
    assert full_secrets().kafka.client_config() == {
        "bootstrap.servers": "kafka-1:9092,kafka-2:9092",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "PLAIN",
        "sasl.username": "kafka-key",
        "sasl.password": KAFKA_SECRET,
    }


# ---------------------------------------------------------------------------- topics


@pytest.mark.parametrize(
    ("prefix", "topics", "full"),
    [
        pytest.param(
            None,
            None,
            ("learning-certificate-lifecycle", "course-catalog-info-changed"),
            id="no prefix",
        ),
        pytest.param(
            "prod",
            None,
            ("prod-learning-certificate-lifecycle", "prod-course-catalog-info-changed"),
            id="prefix joined with a dash",
        ),
        pytest.param("stage-eu", "a,b", ("stage-eu-a", "stage-eu-b"), id="custom topics"),
    ],
)
def test_topic_prefix_joins_with_a_dash(
    prefix: str | None, topics: str | None, full: tuple[str, ...]
) -> None:
    """EVENT_BUS_TOPIC_PREFIX is joined to each topic with '-', as edx-event-bus-kafka does."""
    env = {**BASE}
    if prefix is not None:
        env["EVENT_BUS_TOPIC_PREFIX"] = prefix
    if topics is not None:
        env["CONSUMER_TOPICS"] = topics
    kafka = config.load(env).kafka
    assert kafka.full_topics == full
    assert kafka.full_topic("x") == (f"{prefix}-x" if prefix else "x")


@pytest.mark.parametrize(
    ("env", "source", "dead_letter"),
    [
        pytest.param(
            {}, "learning-certificate-lifecycle", "learning-certificate-lifecycle.dlq", id="default"
        ),
        pytest.param(
            {"EVENT_BUS_TOPIC_PREFIX": "prod"},
            "prod-learning-certificate-lifecycle",
            "prod-learning-certificate-lifecycle.dlq",
            id="prefixed source keeps its prefix",
        ),
        pytest.param(
            {"CONSUMER_DEAD_LETTER_TOPIC_SUFFIX": "-dead-letters"},
            "course-catalog-info-changed",
            "course-catalog-info-changed-dead-letters",
            id="custom suffix",
        ),
    ],
)
def test_dead_letter_topic_is_source_plus_suffix(
    env: dict[str, str], source: str, dead_letter: str
) -> None:
    """The dead-letter topic is the (prefixed) source topic followed by the suffix."""
    kafka = load(**env).kafka
    assert kafka.full_topic(source.removeprefix("prod-")) == source
    assert kafka.dead_letter_topic(source) == dead_letter


# ---------------------------------------------------------------------------- hostile values

INT_VARIABLES = (
    "CONSUMER_MAX_IN_FLIGHT",
    "CONSUMER_MAX_BUFFERED",
    "CONSUMER_RETRY_MAX_ATTEMPTS",
    "CONSUMER_CIRCUIT_FAILURE_THRESHOLD",
    "CONSUMER_METRICS_PORT",
    "CONSUMER_DEAD_LETTER_RETENTION_MS",
)
HUGE_INTEGER = "1" + "0" * 400  # above 1e308: no float can hold it


def _refused(env: dict[str, str], *, with_services: bool = True) -> list[str]:
    """The variables named by the ConfigErrors that loading ``env`` raises ([] if none)."""
    try:
        config.load({**BASE, **env}, with_services=with_services)
    except ConfigErrors as error:
        return [item.variable for item in error.errors]
    return []


@pytest.mark.parametrize("variable", INT_VARIABLES)
def test_integers_above_1e308_are_configuration_errors(variable: str) -> None:
    """An integer too large for a float is a ConfigError naming the variable, not OverflowError."""
    assert _refused({variable: HUGE_INTEGER}) == [variable]


@pytest.mark.parametrize("variable", [*SECONDS_VARIABLES, "CONSUMER_KAFKA_TIMEOUT_SECONDS"])
@pytest.mark.parametrize("raw", ["1e308", "100000", HUGE_INTEGER])
def test_absurd_durations_are_refused(variable: str, raw: str) -> None:
    """Every duration has a sane maximum: 1e308 s would overflow a wait and crash-loop."""
    assert _refused({variable: raw}) == [variable]


URL_VARIABLES = (
    "EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL",
    "BACKEND_SERVICE_EDX_OAUTH2_PROVIDER_URL",
    "CREDENTIALS_INTERNAL_SERVICE_URL",
    "LMS_ROOT_URL",
    "CMS_ROOT_URL",
    "COURSE_CATALOG_API_URL",
)


@pytest.mark.parametrize("variable", URL_VARIABLES)
@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("http://[::1", id="unclosed IPv6 bracket"),
        pytest.param("http://lms.example.com:99999", id="port above 65535"),
        pytest.param("http://lms.example.com:http", id="port not a number"),
        pytest.param("http://lms.example.com:0", id="port 0"),
        pytest.param("http://:8000", id="no host"),
    ],
)
def test_malformed_service_urls_are_configuration_errors(variable: str, raw: str) -> None:
    """A URL that would fail every request (or raise while parsed) is refused, naming it."""
    assert _refused({variable: raw}) == [variable]


def test_a_url_error_does_not_echo_user_info() -> None:
    """A refused URL is shown without its user:password part."""
    with pytest.raises(ConfigError) as caught:
        load(EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL="http://user:pa55word@registry:99999")
    assert "pa55word" not in str(caught.value)


@pytest.mark.parametrize(
    "raw",
    [
        "kafka",
        "kafka:",
        "kafka:notaport",
        "kafka:0",
        "kafka:99999",
        "kafka:9092,",
        "kafka:9092,,kafka-2:9092",
        "kafka 1:9092",
        "http://kafka:9092",
        "::1:9092",
    ],
)
def test_bootstrap_servers_must_be_host_port_lists(raw: str) -> None:
    """Each bootstrap server must be host:port (port 1-65535), optionally PROTOCOL://."""
    assert _refused({BOOTSTRAP: raw}) == [BOOTSTRAP]


@pytest.mark.parametrize(
    "raw", ["kafka:9092", "k1:9092, k2:9093", "SASL_SSL://kafka.example.com:9096", "[::1]:9092"]
)
def test_valid_bootstrap_servers_are_accepted(raw: str) -> None:
    """Host names, IPv4, bracketed IPv6 and listener prefixes are all valid."""
    assert _refused({BOOTSTRAP: raw}) == []


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        pytest.param({"CONSUMER_TOPICS": "certificates,bad topic"}, "CONSUMER_TOPICS", id="space"),
        pytest.param({"CONSUMER_TOPICS": "cert/ificates"}, "CONSUMER_TOPICS", id="slash"),
        pytest.param({"CONSUMER_TOPICS": "t" * 250}, "CONSUMER_TOPICS", id="too long"),
        pytest.param({"CONSUMER_TOPICS": ".."}, "CONSUMER_TOPICS", id="dot dot"),
        pytest.param({"CONSUMER_TOPICS": "café"}, "CONSUMER_TOPICS", id="not ASCII"),
        pytest.param({"EVENT_BUS_TOPIC_PREFIX": "prod env"}, "EVENT_BUS_TOPIC_PREFIX", id="prefix"),
        pytest.param(
            {"EVENT_BUS_TOPIC_PREFIX": "p" * 240},
            "CONSUMER_TOPICS",
            id="prefixed name too long",
        ),
        pytest.param(
            {"CONSUMER_DEAD_LETTER_TOPIC_SUFFIX": "/dead"},
            "CONSUMER_DEAD_LETTER_TOPIC_SUFFIX",
            id="bad suffix",
        ),
        pytest.param(
            {"CONSUMER_TOPICS": "t" * 247},
            "CONSUMER_DEAD_LETTER_TOPIC_SUFFIX",
            id="dead-letter name too long",
        ),
    ],
)
def test_topic_names_follow_kafkas_rules(env: dict[str, str], variable: str) -> None:
    """Topic names, with prefix and dead-letter suffix, must be legal Kafka topic names."""
    assert set(_refused(env)) == {variable}


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({"CONSUMER_TOPICS": "certificates,certificates.dlq"}, id="another's"),
        pytest.param(
            {"CONSUMER_TOPICS": "a,a-dead", "CONSUMER_DEAD_LETTER_TOPIC_SUFFIX": "-dead"},
            id="another's with a custom suffix",
        ),
        pytest.param(
            {"CONSUMER_TOPICS": "a,a.dlq,a.dlq.dlq"},
            id="a chain of them",
        ),
    ],
)
def test_a_consumed_topic_that_is_a_dead_letter_topic_is_refused(env: dict[str, str]) -> None:
    """Consuming a dead-letter topic of a consumed topic would loop dead letters for ever."""
    assert set(_refused(env)) == {"CONSUMER_TOPICS"}


def test_every_configuration_error_is_reported_at_once() -> None:
    """One load reports every bad variable, each message naming its own variable."""
    env = {
        BOOTSTRAP: "kafka",
        "CONSUMER_MAX_IN_FLIGHT": "many",
        "CONSUMER_LOG_FORMAT": "xml",
        "LMS_ROOT_URL": "http://[::1",
        "CONSUMER_TOPICS": "a,a.dlq",
        "CONSUMER_HTTP_READ_TIMEOUT": "1e308",
    }
    with pytest.raises(ConfigErrors) as caught:
        config.load({**BASE, **env})
    assert sorted(error.variable for error in caught.value.errors) == sorted(env)
    lines = str(caught.value).splitlines()
    assert len(lines) == len(env)
    assert all(line.split(":", 1)[0] in env for line in lines)


def test_missing_service_variables_are_reported_together() -> None:
    """Outside dry-run, every missing service variable is named in one go."""
    with pytest.raises(ConfigErrors) as caught:
        config.load({BOOTSTRAP: "kafka:9092"})
    assert {error.variable for error in caught.value.errors} == {
        "BACKEND_SERVICE_EDX_OAUTH2_PROVIDER_URL",
        "BACKEND_SERVICE_EDX_OAUTH2_KEY",
        "BACKEND_SERVICE_EDX_OAUTH2_SECRET",
        "CREDENTIALS_INTERNAL_SERVICE_URL",
        "LMS_ROOT_URL",
    }


def test_without_services_no_service_variable_is_required_or_read() -> None:
    """Kafka-only commands need the bootstrap servers and nothing of the services."""
    settings = config.load(
        {BOOTSTRAP: "kafka:9092", "LMS_ROOT_URL": "not a url"}, with_services=False
    )
    assert settings.services is None


# ---------------------------------------------------------------------------- new settings


def test_prefix_sets_the_default_group_id() -> None:
    """With EVENT_BUS_TOPIC_PREFIX, the default group is '<prefix>-credentials-consumer'."""
    assert load(EVENT_BUS_TOPIC_PREFIX="stage").kafka.group_id == "stage-credentials-consumer"
    assert load(EVENT_BUS_TOPIC_PREFIX="stage", CONSUMER_GROUP_ID="mine").kafka.group_id == "mine"


@pytest.mark.parametrize(
    ("variable", "raw", "get", "expected"),
    [
        ("CONSUMER_DEAD_LETTER_RETENTION_MS", None, lambda s: s.kafka.dead_letter_retention_ms, -1),
        (
            "CONSUMER_DEAD_LETTER_RETENTION_MS",
            "2592000000",
            lambda s: s.kafka.dead_letter_retention_ms,
            2_592_000_000,
        ),
        ("CONSUMER_MAX_RATE", None, lambda s: s.engine.max_rate, 0.0),
        ("CONSUMER_MAX_RATE", "12.5", lambda s: s.engine.max_rate, 12.5),
        ("CONSUMER_KAFKA_TIMEOUT_SECONDS", None, lambda s: s.kafka.timeout_seconds, 15.0),
        ("CONSUMER_KAFKA_TIMEOUT_SECONDS", "3", lambda s: s.kafka.timeout_seconds, 3.0),
    ],
)
def test_new_settings_defaults_and_values(
    variable: str, raw: str | None, get: Callable[[Settings], object], expected: object
) -> None:
    """Dead-letter retention, the rate cap and the Kafka timeout: defaults and parsed values."""
    assert get(load(**({variable: raw} if raw is not None else {}))) == expected


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("CONSUMER_DEAD_LETTER_RETENTION_MS", "0"),
        ("CONSUMER_DEAD_LETTER_RETENTION_MS", "60000"),
        ("CONSUMER_DEAD_LETTER_RETENTION_MS", "-2"),
        ("CONSUMER_DEAD_LETTER_RETENTION_MS", "forever"),
        ("CONSUMER_MAX_RATE", "-1"),
        ("CONSUMER_MAX_RATE", "inf"),
        ("CONSUMER_MAX_RATE", "1e9"),
        ("CONSUMER_KAFKA_TIMEOUT_SECONDS", "0"),
    ],
)
def test_new_settings_refuse_bad_values(variable: str, raw: str) -> None:
    """Retention below an hour (except -1), negative rates and zero timeouts are refused."""
    assert _refused({variable: raw}) == [variable]
