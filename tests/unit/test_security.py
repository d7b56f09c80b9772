"""Security settings reach every client, and TLS verification stays on (issue 14).

- ``EVENT_BUS_KAFKA_API_KEY``/``_SECRET`` make every Kafka client of the worker speak
  SASL_SSL with PLAIN (the consumer, the dead-letter producer, the admin clients of ``run``
  and ``check``, the reader of ``dlq inspect``), and nothing weakens librdkafka's TLS checks.
- ``EVENT_BUS_KAFKA_SCHEMA_REGISTRY_API_KEY``/``_SECRET`` reach the registry as HTTP basic
  auth, and only then.
- HTTPS is verified, for the services and the registry. There is no setting that turns it
  off, and the environment variables that do so elsewhere (an empty ``CURL_CA_BUNDLE``,
  ``PYTHONHTTPSVERIFY=0``) do not; trusting a private CA is explicit (``REQUESTS_CA_BUNDLE``).

Secrets in logs, command output, exception texts and dead-letter headers are searched for
in everything a soak writes (``tests/integration/test_chaos.py``).
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import os
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import structlog
from confluent_kafka import KafkaException, libversion
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from consumer import config, kafka_admin
from consumer.cli import main as run_cli
from consumer.cli import wiring
from consumer.cli.exits import EXIT_FAILURE
from consumer.config import consumer_config
from consumer.deadletter import inspect as dlq
from consumer.deadletter import producer as deadletter
from consumer.errors import RegistryUnavailableError, ServiceUnavailableError
from consumer.services.http import HttpClient
from consumer.services.request_parts import environment_ca_bundle
from consumer.wire import RegistryWriterSchemas, registry_client

SASL_KEY = "AKIA7QX2EXAMPLEKEY"
SASL_PASSWORD = "sasl-password-d4Jq9+Lm/Zx2Wv8e"
REGISTRY_KEY = "SR7Q2EXAMPLEKEY"
REGISTRY_SECRET = "registry-secret-Qm4/+8vLx2Z"
SASL = {
    "security.protocol": "SASL_SSL",
    "sasl.mechanism": "PLAIN",
    "sasl.username": SASL_KEY,
    "sasl.password": SASL_PASSWORD,
}
WEAKENING = {
    "enable.ssl.certificate.verification": "false",
    "ssl.endpoint.identification.algorithm": "none",
}


def settings(**env: str) -> config.Settings:
    return config.load(
        {
            "EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
            "CONSUMER_DRY_RUN": "true",
            "EVENT_BUS_KAFKA_API_KEY": SASL_KEY,
            "EVENT_BUS_KAFKA_API_SECRET": SASL_PASSWORD,
            **env,
        }
    )


def carries(client: dict[str, Any], wanted: dict[str, str]) -> bool:
    return {name: client.get(name) for name in wanted} == wanted


def weakened(client: dict[str, Any]) -> list[str]:
    return [name for name, value in WEAKENING.items() if str(client.get(name, "")).lower() == value]


class Recorder:
    """Stands in for a confluent-kafka class: records its configuration, then fails."""

    configs: list[dict[str, Any]]

    def __init__(self, conf: dict[str, Any], **_kwargs: Any) -> None:
        type(self).configs.append(dict(conf))

    def list_topics(self, *_args: Any, **_kwargs: Any) -> Any:
        raise KafkaException("unreachable (test)")

    def poll(self, *_args: Any) -> int:
        return 0


@pytest.fixture
def recorder() -> type[Recorder]:
    return type("Recorded", (Recorder,), {"configs": []})


# ---------------------------------------------------------------------------- Kafka


def test_the_consumer_speaks_sasl_ssl_with_the_key_and_secret() -> None:
    """The group consumer's configuration carries SASL_SSL/PLAIN and the credentials."""
    kafka = settings().kafka
    conf = consumer_config(kafka, group_id="g")
    assert carries(conf, SASL)
    assert weakened(conf) == []


def test_without_a_key_every_client_speaks_plaintext() -> None:
    """No key and secret: no security protocol, no SASL setting at all."""
    env = {"EVENT_BUS_KAFKA_API_KEY": "", "EVENT_BUS_KAFKA_API_SECRET": ""}
    conf = consumer_config(settings(**env).kafka, group_id="g")
    assert not [name for name in conf if name.startswith(("security.", "sasl.", "ssl."))]


def test_the_dead_letter_producer_speaks_sasl_ssl(
    monkeypatch: pytest.MonkeyPatch, recorder: type[Recorder]
) -> None:
    """Dead letters are written over SASL_SSL too, with acks from all replicas."""
    monkeypatch.setattr(deadletter, "Producer", recorder)
    deadletter.DeadLetterProducer(
        settings().kafka.client_config(), topic_for=lambda topic: topic, group="g"
    )
    (conf,) = recorder.configs
    assert carries(conf, {**SASL, "acks": "all"})
    assert weakened(conf) == []


def test_dlq_inspect_reads_over_sasl_ssl(
    monkeypatch: pytest.MonkeyPatch, recorder: type[Recorder]
) -> None:
    """``dlq inspect`` reads the dead-letter topic with the same security settings."""
    monkeypatch.setattr(dlq, "Consumer", recorder)
    with pytest.raises(Exception):  # noqa: B017, PT011 - the recorder cannot consume
        dlq.inspect_topic(settings().kafka.client_config(), "topic.dlq")
    (conf,) = recorder.configs
    assert carries(conf, SASL)


def test_check_reaches_kafka_over_sasl_ssl_and_prints_no_secret(
    monkeypatch: pytest.MonkeyPatch,
    recorder: type[Recorder],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``check``'s admin client speaks SASL_SSL; its output masks the password."""
    for name in list(os.environ):
        if name.startswith(("CONSUMER_", "EVENT_BUS_", "BACKEND_SERVICE_")):
            monkeypatch.delenv(name)
    for name, value in {
        "EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "EVENT_BUS_KAFKA_API_KEY": SASL_KEY,
        "EVENT_BUS_KAFKA_API_SECRET": SASL_PASSWORD,
        "CONSUMER_DRY_RUN": "true",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(kafka_admin, "AdminClient", recorder)

    try:
        assert run_cli(["check"]) == EXIT_FAILURE
    finally:
        structlog.reset_defaults()  # main logged to this test's captured stderr

    output = capsys.readouterr()
    assert recorder.configs
    assert all(carries(conf, SASL) for conf in recorder.configs)
    assert "FAIL  kafka" in output.out
    assert SASL_PASSWORD not in output.out + output.err
    assert "api_secret = ***" in output.out


def test_nothing_weakens_librdkafkas_tls_checks() -> None:
    """Certificates and host names are verified: librdkafka's defaults, never overridden.

    librdkafka verifies broker certificates by default, and host names by default from 2.0
    (``ssl.endpoint.identification.algorithm=https``); no client configuration here turns
    either off.
    """
    kafka = settings().kafka
    assert tuple(int(part) for part in libversion()[0].split(".")[:2]) >= (2, 0)
    for conf in (kafka.client_config(), consumer_config(kafka, group_id="g")):
        assert weakened(conf) == []
        assert not [name for name in conf if name.startswith("ssl.")]


# ---------------------------------------------------------------------------- registry


class _Recording(BaseHTTPRequestHandler):
    """Answers a registry's subjects list; records each request's Authorization header."""

    seen: list[str | None]

    def do_GET(self) -> None:
        type(self).seen.append(self.headers.get("Authorization"))
        body = json.dumps([]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def registry() -> Iterator[tuple[str, list[str | None]]]:
    handler: type[_Recording] = type("Handler", (_Recording,), {"seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/apis/ccompat/v7", handler.seen
    server.shutdown()
    server.server_close()


def test_the_registry_gets_basic_auth_from_the_settings(
    registry: tuple[str, list[str | None]],
) -> None:
    """The worker's registry client, built from the settings, sends ``Basic key:secret``."""
    url, seen = registry
    loaded = settings(
        EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL=url,
        EVENT_BUS_KAFKA_SCHEMA_REGISTRY_API_KEY=REGISTRY_KEY,
        EVENT_BUS_KAFKA_SCHEMA_REGISTRY_API_SECRET=REGISTRY_SECRET,
    )
    with wiring._writer_schemas(loaded) as schemas:
        assert isinstance(schemas, RegistryWriterSchemas)
        schemas.client.get_subjects()
    expected = base64.b64encode(f"{REGISTRY_KEY}:{REGISTRY_SECRET}".encode()).decode()
    assert seen == [f"Basic {expected}"]


def test_the_registry_gets_no_credentials_without_a_key(
    registry: tuple[str, list[str | None]],
) -> None:
    """Without a registry key, no Authorization header is sent (not even the SASL one)."""
    url, seen = registry
    with wiring._writer_schemas(settings(EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL=url)) as schemas:
        assert isinstance(schemas, RegistryWriterSchemas)
        schemas.client.get_subjects()
    assert seen == [None]


# ---------------------------------------------------------------------------- HTTPS


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (PEM files)."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def https_server(certificate: tuple[Path, Path]) -> Iterator[str]:
    """An HTTPS server with the self-signed certificate, answering ``[]`` to any GET."""
    handler = type("Handler", (_Recording,), {"seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _get(root: str) -> object:
    client = HttpClient(service="lms", root=root, connect_timeout=2, read_timeout=2, pool_size=1)
    return client.call("GET", "/api/x/", endpoint="probe", request_id="security-test")


def test_https_services_are_verified_whatever_the_environment_says(
    https_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A self-signed service is refused as a TLS failure (an outage, never a dead letter)."""
    monkeypatch.setenv("CURL_CA_BUNDLE", "")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "")
    monkeypatch.setenv("PYTHONHTTPSVERIFY", "0")
    assert environment_ca_bundle() is True

    with pytest.raises(ServiceUnavailableError) as refused:
        _get(https_server)

    assert refused.value.reason == "tls_error"


def test_a_private_ca_is_trusted_only_when_named(
    https_server: str, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``REQUESTS_CA_BUNDLE`` naming the certificate, the same server is reached.

    The control for the test above: it was verification, not a broken server, that refused.
    """
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
    assert _get(https_server) is not None


def test_an_https_registry_is_verified(https_server: str) -> None:
    """The registry client refuses the self-signed registry: unavailable, not poison."""
    client = registry_client(f"{https_server}/apis/ccompat/v7")
    try:
        with pytest.raises(RegistryUnavailableError):
            RegistryWriterSchemas(client).get(1)
    finally:
        client.close()
