"""Reading typed values from an environment mapping, collecting every error on the way.

``Env`` wraps the mapping ``config.load`` reads and the ``ConfigError``s found so far. Each
reader returns the value, or reports the variable and returns the default, so that one
``load`` finds *every* bad variable, not only the first. Every number has a sane upper bound
(a timeout of ``1e308`` seconds would overflow a wait and crash-loop). A URL in a message
never shows its user info.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TypeVar
from urllib.parse import urlparse

from consumer.errors import ConfigError
from consumer.services.redaction import mask_userinfo

T = TypeVar("T")

DAY = 86_400.0


class Env:
    """The environment being read, and the errors found so far."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = values
        self.errors: list[ConfigError] = []

    def get(self, name: str) -> str:
        """The raw value of ``name``, ``""`` when unset."""
        return self._values.get(name, "") or ""

    def report(self, name: str, problem: str) -> None:
        """Record that ``name`` is invalid."""
        self.errors.append(ConfigError(name, problem))


def text(env: Env, name: str, default: str | None = None) -> str | None:
    """The value stripped, or ``default`` when unset or blank."""
    value = env.get(name).strip()
    return value or default


def required_text(env: Env, name: str, why: str = "is required") -> str:
    """The value; reported (and ``""``) when unset."""
    value = text(env, name)
    if value is None:
        env.report(name, why)
        return ""
    return value


def boolean(env: Env, name: str, default: bool) -> bool:
    """``true``/``false`` (also 1/0, yes/no, on/off), any case."""
    value = text(env, name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    env.report(name, f"must be true or false, not {value!r}")
    return default


def number(
    env: Env,
    name: str,
    default: T,
    parse: Callable[[str], T],
    *,
    minimum: float,
    maximum: float,
) -> T:
    """A number ``parse`` reads, finite and within ``[minimum, maximum]``."""
    value = text(env, name)
    if value is None:
        return default
    shown = value if len(value) <= 40 else f"{value[:37]}..."
    try:
        parsed = parse(value)
    except (ValueError, OverflowError):
        env.report(name, f"must be a number, not {shown!r}")
        return default
    # Compared as parsed: an int of 400 digits has no float form, and must not need one.
    if isinstance(parsed, float) and not math.isfinite(parsed):
        env.report(name, f"must be a finite number, not {shown!r}")
        return default
    if not minimum <= parsed <= maximum:  # type: ignore[operator]
        env.report(name, f"must be between {_plain(minimum)} and {_plain(maximum)}, not {shown}")
        return default
    return parsed


def _plain(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def integer(env: Env, name: str, default: int, *, minimum: int, maximum: int = 1_000_000) -> int:
    """A whole number within bounds."""
    return number(env, name, default, int, minimum=minimum, maximum=maximum)


def seconds(
    env: Env, name: str, default: float, *, minimum: float = 0.0, maximum: float = DAY
) -> float:
    """A duration in seconds within bounds (a day at most unless said)."""
    return number(env, name, default, float, minimum=minimum, maximum=maximum)


def choice(
    env: Env,
    name: str,
    default: str,
    choices: tuple[str, ...],
    *,
    upper: bool = False,
) -> str:
    """One of ``choices`` (compared upper-cased with ``upper``)."""
    value = text(env, name, default) or default
    value = value.upper() if upper else value
    if value not in choices:
        env.report(name, f"must be one of {', '.join(choices)}, not {value!r}")
        return default
    return value


def items(env: Env, name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
    """A comma list, blanks dropped; ``default`` when unset."""
    value = text(env, name)
    if value is None:
        return default
    return tuple(item.strip() for item in value.split(",") if item.strip())


def url(env: Env, name: str, *, required: bool) -> str | None:
    """An http(s) URL without its trailing slash; None when unset and not required."""
    value = text(env, name)
    if value is None:
        if required:
            env.report(name, "is required (unless CONSUMER_DRY_RUN=true)")
        return None
    problem = _url_problem(value)
    if problem:
        env.report(name, f"must be an http(s) URL ({problem}), not {mask_userinfo(value)!r}")
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


def pair(env: Env, key_name: str, secret_name: str) -> tuple[str | None, str | None]:
    """A key and its secret, both set or both unset."""
    key, secret = text(env, key_name), text(env, secret_name)
    if bool(key) != bool(secret):
        missing = secret_name if key else key_name
        env.report(missing, f"must be set together with {key_name if key else secret_name}")
    return key, secret
