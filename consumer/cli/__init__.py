"""The command line: ``run``, ``replay``, ``offsets``, ``check``, ``dlq``, ``schemas``, ``explain``.

``main`` (``main.py``) parses the line, loads the settings the command uses
(``config.load``: each command loads only what it uses — ``dlq inspect``, ``offsets``,
``replay --plan`` and any dry-run need Kafka's alone) and runs it. One module per command
(``run``, ``replay``, ``offsets``, ``check``, ``dlq``, ``schemas``, ``explain``) holds its
arguments and its function; ``wiring`` builds what they share (clients, the engine,
dead-letter sinks) and nothing else builds; ``exits`` holds the exit codes.

Exit codes: 0 success; 2 configuration or usage error (every bad variable named at once);
1 anything else. An expected failure — a broker or registry that cannot be reached, a
missing topic or group, a refused reset — is one JSON log line on stderr
(``command_failed``), never a traceback; librdkafka's own lines go through structlog too.
"""

from __future__ import annotations

from consumer.cli.main import main

__all__ = ["main"]
