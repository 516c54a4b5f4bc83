"""Perses's JWTs read strictly, without trusting them (only Perses can check a signature).

`parse_token` is what the API asks of a token a client sent before asking Perses about it;
`token_claims` is what a token PersAI already trusts says about itself (`exp`, `nbf`, `iat`).
The messages never contain the token.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from dataclasses import dataclass
from typing import Any

from persai.errors import Unauthenticated

__all__ = ["MAX_TOKEN_BYTES", "TokenClaims", "parse_token", "token_claims"]

MAX_TOKEN_BYTES = 8192
_HS512_SIGNATURE_BYTES = 64
_CLOCK_SKEW_S = 60.0  # tolerance for `nbf` between Perses's clock and ours
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class TokenClaims:
    """What a JWT claims about itself (unverified: only Perses can check the signature)."""

    subject: str
    expires_at: float
    """`exp`, seconds since the epoch."""


def _segment(part: str, what: str, name: str) -> bytes:
    if not _BASE64URL.fullmatch(part) or len(part) % 4 == 1:
        raise Unauthenticated(f"the {what} is not a JWT: its {name} is not base64url")
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except binascii.Error as exc:
        raise Unauthenticated(f"the {what} is not a JWT: its {name} is not base64url") from exc


def _json_object(raw: bytes, what: str, name: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    # UnicodeDecodeError and JSONDecodeError are ValueErrors; RecursionError: nested too deep
    except (ValueError, RecursionError) as exc:
        raise Unauthenticated(f"the {what} is not a JWT: its {name} is not JSON") from exc
    if not isinstance(value, dict):
        raise Unauthenticated(f"the {what} is not a JWT: its {name} is not a JSON object")
    return value


_LATEST_EPOCH_S = 253_402_300_799.0  # 9999-12-31T23:59:59Z: `exp` and `nbf` beyond are refused


def _number(value: object) -> float | None:
    """A JSON number as seconds since the epoch, when it can be one (JSON allows NaN, 1e300 and
    integers of any length; Perses writes whole seconds of this era)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        seconds = float(value)
    except OverflowError:  # an integer beyond any float
        return None
    return seconds if 0 <= seconds <= _LATEST_EPOCH_S else None


def parse_token(
    token: str, *, what: str = "access token", now: float | None = None, expired_ok: bool = False
) -> TokenClaims:
    """Read a Perses JWT strictly, without trusting it: Unauthenticated for anything odd.

    Exactly three base64url parts, JSON objects for header and payload, `alg` HS512, an
    HS512-sized signature, a `sub`, an `exp` in the future (unless `expired_ok`) and no `nbf` in
    the future. The messages never contain the token.
    """
    if len(token) > MAX_TOKEN_BYTES:
        raise Unauthenticated(f"the {what} is longer than {MAX_TOKEN_BYTES} bytes")
    parts = token.split(".")
    if len(parts) != 3:
        raise Unauthenticated(f"the {what} must have 3 dot-separated parts, not {len(parts)}")
    header = _json_object(_segment(parts[0], what, "header"), what, "header")
    payload = _json_object(_segment(parts[1], what, "payload"), what, "payload")
    if header.get("alg") != "HS512":
        raise Unauthenticated(f"the {what} must be signed with HS512 as Perses signs its tokens")
    if len(_segment(parts[2], what, "signature")) != _HS512_SIGNATURE_BYTES:
        raise Unauthenticated(f"the {what} does not carry an HS512 signature")
    return _claims(payload, what, time.time() if now is None else now, expired_ok)


def _claims(payload: dict[str, Any], what: str, now: float, expired_ok: bool) -> TokenClaims:
    subject, exp, nbf = payload.get("sub"), _number(payload.get("exp")), payload.get("nbf")
    if not isinstance(subject, str) or not subject:
        raise Unauthenticated(f"the {what} names no user (sub)")
    if exp is None:
        raise Unauthenticated(f"the {what} has no expiry (exp)")
    if exp <= now and not expired_ok:
        raise Unauthenticated(f"the {what} has expired")
    if nbf is not None and (_number(nbf) is None or float(nbf) > now + _CLOCK_SKEW_S):
        raise Unauthenticated(f"the {what} is not valid yet (nbf)")
    return TokenClaims(subject=subject, expires_at=exp)


def token_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, read without checking its signature (only Perses can).

    Use it for what a token says about itself (`exp`, `nbf`) once it is trusted for other
    reasons, never for identity. Raises ValueError for something that is not a JWT.
    """
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a JWT: expected 3 dot-separated parts")
    try:
        return _json_object(_segment(parts[1], "token", "payload"), "token", "payload")
    except Unauthenticated as exc:
        raise ValueError(exc.message) from exc
