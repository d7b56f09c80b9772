r"""A username (or secret) never leaves in any spelling: plain, JSON-escaped, percent-encoded.

Regression tests of issue 8, item 7: redaction used to run after ``json.dumps``, so
``José.García`` left as ``Jos\u00e9.Garc\u00eda`` (and names with ``"`` or ``\`` escaped)
in dead-letter headers, logs and ``dlq inspect``.
"""

from __future__ import annotations

import json
from urllib.parse import quote, quote_plus

from hypothesis import assume, given
from hypothesis import strategies as st

from consumer.events import CertificateEvent, EventMeta, EventType, Learner, parse_course_key
from consumer.processing import _redact
from consumer.services.classify import classify_status, summarise_body
from consumer.services.redaction import REDACTED, redact_text

# Open edX usernames: word characters (Unicode when ENABLE_UNICODE_USERNAME), space, . @ _ + -;
# drawn wider here: quotes, backslashes and control characters too. Never '<' or '>', which
# only the mask itself holds.
usernames = st.text(
    alphabet=st.characters(blacklist_characters="<>", blacklist_categories=["Cs"]),
    min_size=3,
    max_size=30,
).filter(lambda name: name.strip() == name and name not in REDACTED)


def spellings(name: str) -> set[str]:
    """How a serialiser or a URL may spell ``name``."""
    return {
        name,
        json.dumps(name)[1:-1],
        json.dumps(name, ensure_ascii=False)[1:-1],
        quote(name, safe=""),
        quote_plus(name),
    }


def leaked(name: str, text: str) -> set[str]:
    return {form for form in spellings(name) if form and form in text}


def test_the_example_of_the_issue() -> None:
    """José.García, as a 400 body from Credentials, is masked in the summary and the message."""
    body = {"username": ["José.García is not a valid user"], "detail": 'say "José.García"'}
    error = classify_status(
        400,
        service="credentials",
        endpoint="credentials_post",
        host="h",
        body=body,
        retry_after=None,
        redact=("José.García",),
    )
    assert error is not None
    assert leaked("José.García", str(error)) == set()
    assert "Jos\\u00e9" not in str(error)


@given(name=usernames, noise=st.text(max_size=20))
def test_summaries_of_parsed_bodies_hold_no_spelling_of_the_username(name: str, noise: str) -> None:
    """Whatever the username, a body quoting it (in keys, values, nested) is summarised masked."""
    assume(not (leaked(name, noise) or leaked(name, json.dumps(noise))))
    body = {"detail": f"{noise}{name}{noise}", name: [name, {"again": name}], "n": noise}
    assert leaked(name, summarise_body(body, (name,))) == set()


@given(name=usernames)
def test_summaries_of_text_bodies_hold_no_spelling_of_the_username(name: str) -> None:
    """A text body that quotes the name JSON-escaped or percent-encoded is masked as well."""
    text = " | ".join(sorted(spellings(name)))
    assert leaked(name, summarise_body(text, (name,))) == set()


@given(name=usernames)
def test_dead_letter_messages_hold_no_spelling_of_the_username(name: str) -> None:
    """processing._redact masks every spelling in the text that becomes the dead-letter message."""
    event = CertificateEvent(
        meta=EventMeta(id="e", type=EventType.CERTIFICATE_CREATED),
        learner=Learner(user_id=1, username=name),
        course_key=parse_course_key("course-v1:edX+A+1T2026"),
        mode="verified",
        status="downloadable",
    )
    message = "credentials answered 400: " + json.dumps(
        {"user": name, "forms": sorted(spellings(name))}
    )
    assert leaked(name, _redact(message, event)) == set()


def test_a_secret_is_masked_in_form_and_url_spellings() -> None:
    """A client secret echoed form-encoded or JSON-escaped is masked, other text kept."""
    secret = "s3cr3t/é+&="
    text = f"client_id=worker&client_secret={quote_plus(secret)} or {json.dumps(secret)}"
    masked = redact_text(text, (secret,))
    assert "s3cr3t" not in masked
    assert masked.startswith("client_id=worker&client_secret=<redacted>")
