"""HS256 JSON Web Tokens with the standard library, as the fake LMS issues them.

The claims follow the LMS's JWTs where the services look at them (``iss``, ``aud``,
``exp``, ``preferred_username``, ``administrator``); ``generation`` is the fake's own
claim: bumping the fake's generation makes every older token "expired" at once, so tests
force expiry without waiting.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

ISSUER = "http://fake-openedx/oauth2"
AUDIENCE = "openedx"


class TokenError(Exception):
    """The token cannot be used; ``detail`` is what the service answers."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Claims:
    """The claims the fake services act on."""

    username: str
    administrator: bool
    expires_at: float
    generation: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mint(key: bytes, claims: Claims, *, issued_at: float) -> str:
    """Sign ``claims`` into a compact JWT."""
    header = {"alg": "HS256", "typ": "JWT"}
    payload: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": issued_at,
        "exp": claims.expires_at,
        "preferred_username": claims.username,
        "administrator": claims.administrator,
        "scopes": ["read", "write", "email", "profile"],
        "filters": [],
        "generation": claims.generation,
    }
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def verify(key: bytes, token: str, *, now: float, generation: int) -> Claims:
    """Check signature, issuer, audience and expiry; raise ``TokenError`` as DRF answers."""
    try:
        header_part, payload_part, signature_part = token.split(".")
        expected = hmac.new(key, f"{header_part}.{payload_part}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(signature_part)):
            raise TokenError("Invalid token.")
        payload = json.loads(_unb64(payload_part))
    except (ValueError, TypeError):
        raise TokenError("Invalid token.") from None
    if payload.get("iss") != ISSUER or payload.get("aud") != AUDIENCE:
        raise TokenError("Invalid token.")
    if float(payload.get("exp", 0)) <= now or int(payload.get("generation", -1)) < generation:
        raise TokenError("Token has expired.")
    return Claims(
        username=str(payload.get("preferred_username", "")),
        administrator=bool(payload.get("administrator")),
        expires_at=float(payload["exp"]),
        generation=int(payload["generation"]),
    )
