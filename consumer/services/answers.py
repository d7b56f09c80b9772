"""Reading a service's parsed JSON answer: documented shapes or ``MalformedAnswerError``.

Every client reads its answers through an ``AnswerReader``, so a list where an object
belongs, a number where a string belongs, or a date with no UTC form becomes one
classified failure at the service boundary (retried, then dead-lettered) and never a
``KeyError``, ``TypeError`` or ``OverflowError`` deep in the effects. Messages name the
place in the answer and the type found, never a value: answers hold usernames and tokens.

Example::

    read = AnswerReader("lms", "course_modes")
    for index, item in enumerate(read.array(body, "answer")):
        slug = read.text(read.mapping(item, f"[{index}]").get("mode_slug"), f"[{index}].mode_slug")
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import UnionType
from typing import Any, NoReturn

from consumer.errors import MalformedAnswerError

_KINDS: tuple[tuple[type | UnionType, str], ...] = (
    (bool, "a boolean"),
    (int | float, "a number"),
    (str, "a string"),
    (list, "a list"),
    (dict, "an object"),
)


def _kind(value: object) -> str:
    """What a JSON value is, for a message that must not show the value itself."""
    if value is None:
        return "null"
    return next((name for kind, name in _KINDS if isinstance(value, kind)), type(value).__name__)


@dataclass(frozen=True, slots=True)
class AnswerReader:
    """Checks values of one endpoint's answer; each method returns the value typed or raises."""

    service: str
    endpoint: str

    def fail(self, where: str, problem: str) -> NoReturn:
        """Raise ``MalformedAnswerError`` for ``where`` in the answer."""
        raise MalformedAnswerError(
            f"{self.service} answered {self.endpoint} with {where} {problem}",
            service=self.service,
        )

    def mapping(self, value: object, where: str) -> Mapping[str, Any]:
        """An object."""
        if not isinstance(value, dict):
            self.fail(where, f"as {_kind(value)}, not an object")
        return value

    def array(self, value: object, where: str) -> list[Any]:
        """A list."""
        if not isinstance(value, list):
            self.fail(where, f"as {_kind(value)}, not a list")
        return value

    def text(self, value: object, where: str) -> str:
        """A non-empty string."""
        if not isinstance(value, str) or not value:
            self.fail(where, f"as {_kind(value) if value != '' else 'an empty string'}, not text")
        return value

    def optional_text(self, value: object, where: str) -> str | None:
        """A string, or ``None`` for null, a missing field or an empty string."""
        if value is None or value == "":
            return None
        return self.text(value, where)

    def optional_bool(self, value: object, where: str) -> bool | None:
        """A boolean, or ``None`` for null or a missing field."""
        if value is None:
            return None
        if not isinstance(value, bool):
            self.fail(where, f"as {_kind(value)}, not a boolean")
        return value

    def optional_date(self, value: object, where: str) -> datetime | None:
        """An ISO-8601 date as an aware UTC datetime (naive means UTC), or ``None`` for null.

        A value that is not a date, or a date with no UTC form (``0001-01-01T00:00:00+05:00``,
        ``9999-12-31T23:59:59-05:00``), is a malformed answer.
        """
        if value is None:
            return None
        if not isinstance(value, str):
            self.fail(where, f"as {_kind(value)}, not a date")
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            self.fail(where, "as a string that is not an ISO-8601 date")
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        try:
            return parsed.astimezone(UTC)
        except (OverflowError, ValueError):
            self.fail(where, "as a date with no UTC form")
