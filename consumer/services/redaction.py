r"""Masking a learner's username (or a client secret) in text that leaves the worker.

A value reaches error texts in more spellings than its own: JSON escapes non-ASCII
characters, quotes and backslashes (``José`` becomes ``Jos\u00e9``), and URLs and form
bodies percent-encode it (``Jos%C3%A9``, ``a+b``). ``redaction_forms`` lists the spellings;
``redact_text`` masks all of them at once, left to right, longest first. Parsed bodies are
masked value by value *before* they are serialised (``redact_value``), then the text once
more, so no serialiser can bring a spelling back. ``mask_userinfo`` hides the
``user:password@`` a configured URL may carry.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus, urlsplit, urlunsplit

REDACTED = "<redacted>"

_MAX_DEPTH = 8
_MAX_ITEMS = 50


def _upper_escapes(text: str) -> str:
    r"""``\u00e9`` → ``\u00E9`` and ``%c3`` → ``%C3``: other serialisers' spelling."""
    text = re.sub(r"\\u[0-9a-fA-F]{4}", lambda m: m.group(0)[:2] + m.group(0)[2:].upper(), text)
    return re.sub(r"%[0-9a-fA-F]{2}", lambda m: m.group(0).upper(), text)


def _lower_escapes(text: str) -> str:
    text = re.sub(r"\\u[0-9a-fA-F]{4}", lambda m: m.group(0)[:2] + m.group(0)[2:].lower(), text)
    return re.sub(r"%[0-9a-fA-F]{2}", lambda m: m.group(0).lower(), text)


def redaction_forms(secret: str) -> tuple[str, ...]:
    """Every spelling of ``secret`` worth masking, longest first (empty for ``""``)."""
    if not secret:
        return ()
    escaped = [
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        quote(secret, safe=""),
        quote(secret, safe=":+@"),
        quote_plus(secret, safe=""),
    ]
    forms = {variant for form in escaped for variant in (form, _upper_escapes(form))}
    forms |= {_lower_escapes(form) for form in escaped}
    return tuple(sorted(forms, key=lambda form: (-len(form), form)))


def _pattern(secrets: Iterable[str]) -> re.Pattern[str] | None:
    forms = sorted(
        {form for secret in secrets for form in redaction_forms(secret)},
        key=lambda form: (-len(form), form),
    )
    if not forms:
        return None
    return re.compile("|".join(re.escape(form) for form in forms))


def redact_text(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every spelling of every secret replaced by ``<redacted>``."""
    pattern = _pattern(secrets)
    return text if pattern is None else pattern.sub(REDACTED, text)


def redact_value(value: object, secrets: Iterable[str]) -> object:
    """A copy of a parsed JSON value with secrets masked in every key and string.

    Bounded for summaries: below depth 8 a container becomes ``"…"``, and only its first
    50 items are kept (a summary shows 300 characters anyway).
    """
    pattern = _pattern(secrets)

    def walk(item: object, depth: int) -> object:
        if isinstance(item, str):
            return item if pattern is None else pattern.sub(REDACTED, item)
        if isinstance(item, dict | list) and depth >= _MAX_DEPTH:
            return "…"
        if isinstance(item, dict):
            return {
                str(walk(str(key), depth)): walk(child, depth + 1)
                for key, child in list(item.items())[:_MAX_ITEMS]
            }
        if isinstance(item, list):
            return [walk(child, depth + 1) for child in item[:_MAX_ITEMS]]
        return item

    return walk(value, 0)


def mask_userinfo(url: str) -> str:
    """``url`` with any ``user:password@`` replaced by ``***@`` (the rest as given).

    Text that is not a URL at all shows no part that could be user info.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "***" if "@" in url else url
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))
