"""``check``'s verdicts: ok, warn or FAIL per dependency, as text or JSON.

Kafka (the consumed topics, their dead-letter topics and how long those keep records), the
schema registry, and — through ``services.check`` — an OAuth token and one read from each
configured service. A warning (a dead-letter topic that may lose records) keeps exit code 0;
a failure makes it 1.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from consumer.config import KafkaSettings
from consumer.deadletter.topics import audit
from consumer.errors import ConsumerError
from consumer.kafka_admin import KafkaAdmin
from consumer.services.check import CheckResult
from consumer.wire import registry_client

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One line of ``check``: a dependency, its status, what was seen and what to do."""

    name: str
    status: Status
    summary: str
    hint: str | None = None

    @classmethod
    def of(cls, result: CheckResult) -> Finding:
        """A service check's result as a finding."""
        return cls(result.service, "ok" if result.ok else "fail", result.summary, result.hint)

    def line(self) -> str:
        """One line (plus the hint, indented) for a terminal."""
        label = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}[self.status]
        text = f"{label}  {self.name:<12} {self.summary}"
        return f"{text}\n      hint: {self.hint}" if self.hint else text

    def to_json(self) -> dict[str, object]:
        """As a JSON-ready dict."""
        return {
            "name": self.name,
            "status": self.status,
            "summary": self.summary,
            "hint": self.hint,
        }


def kafka_findings(admin: KafkaAdmin, kafka: KafkaSettings) -> list[Finding]:
    """The consumed topics, their dead-letter topics, and the durability of the latter."""
    try:
        pairs = {source: kafka.dead_letter_topic(source) for source in kafka.full_topics}
        topics = admin.existing_topics([*pairs, *pairs.values()])
        configs = admin.topic_configs([name for name in pairs.values() if name in topics])
    except ConsumerError as error:
        return [Finding("kafka", "fail", str(error))]
    findings = []
    for source, target in pairs.items():
        if source in topics:
            info = topics[source]
            findings.append(
                Finding(
                    "kafka",
                    "ok",
                    f"topic {source} present ({len(info.partitions)} partitions, "
                    f"{info.replication} replicas)",
                )
            )
        else:
            findings.append(
                Finding(
                    "kafka",
                    "fail",
                    f"topic {source} missing",
                    "check CONSUMER_TOPICS and EVENT_BUS_TOPIC_PREFIX",
                )
            )
        if target in topics:
            retention = configs.get(target, {}).get("retention.ms", "?")
            findings.append(
                Finding("kafka", "ok", f"topic {target} present (retention.ms={retention})")
            )
        else:
            findings.append(
                Finding(
                    "kafka",
                    "ok",
                    f"topic {target} missing (created at start, retention.ms="
                    f"{kafka.dead_letter_retention_ms})",
                )
            )
    findings += [
        Finding("kafka", "warn", f"topic {concern.topic}: {concern.problem}", concern.fix)
        for concern in audit(kafka, topics, configs)
    ]
    return findings


def registry_finding(kafka: KafkaSettings) -> Finding:
    """Whether the schema registry answers (or that none is configured)."""
    if not kafka.schema_registry_url:
        return Finding("registry", "ok", "not configured: decoding with schemas/ only")
    client = registry_client(
        kafka.schema_registry_url,
        api_key=kafka.schema_registry_api_key,
        api_secret=kafka.schema_registry_api_secret,
    )
    try:
        subjects = client.get_subjects()
    except Exception as error:  # noqa: BLE001 - reported to the person running check
        return Finding("registry", "fail", f"unreachable: {type(error).__name__}")
    finally:
        client.close()
    return Finding("registry", "ok", f"reachable, {len(subjects)} subjects")


def exit_ok(findings: Iterable[Finding]) -> bool:
    """True unless something failed (warnings pass)."""
    return all(finding.status != "fail" for finding in findings)
