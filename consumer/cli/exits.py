"""Exit codes, and the ways every command reports: a JSON document, a configuration error.

Exit codes: 0 success; 2 configuration or usage error (every bad variable named at once);
1 anything else.
"""

from __future__ import annotations

import json
import sys
from typing import TextIO

from consumer.errors import ConfigError

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2


def print_json(value: object, stream: TextIO | None = None) -> None:
    """``value`` as indented JSON on ``stream`` (stdout by default)."""
    print(json.dumps(value, indent=2), file=stream or sys.stdout)


def config_error(error: ConfigError) -> int:
    """Print each bad variable on stderr, one line each; return ``EXIT_CONFIG``."""
    for line in str(error).splitlines():
        print(f"credentials-consumer: configuration error: {line}", file=sys.stderr)  # noqa: T201
    return EXIT_CONFIG
