"""Settings from environment variables, validated once at start-up.

``load(env)`` (and ``load_explain``) read and check every variable, reporting *all* bad
ones at once as ``ConfigErrors`` (exit code 2); the values are frozen ``Settings``;
``describe(settings)`` shows them with secrets masked. Three modules: ``settings`` (the
values and ``describe``), ``env`` (typed readers that collect errors) and ``load`` (which
variable fills which field, and every check).
"""

from __future__ import annotations

from consumer.config.load import load, load_explain
from consumer.config.settings import (
    KEEP_FOREVER,
    CircuitSettings,
    EngineSettings,
    ExplainSettings,
    KafkaSettings,
    RetrySettings,
    Settings,
    consumer_config,
    describe,
)

__all__ = [
    "KEEP_FOREVER",
    "CircuitSettings",
    "EngineSettings",
    "ExplainSettings",
    "KafkaSettings",
    "RetrySettings",
    "Settings",
    "consumer_config",
    "describe",
    "load",
    "load_explain",
]
