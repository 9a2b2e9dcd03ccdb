"""Local Mode webhook authentication: a scan node's publisher JWT, or a shared token.

A scan node's publisher signs its bearer JWT the way forta-core-go's ``CreateScannerJWT``
does: header ``{"alg": "ETH"}``, a 65-byte ``r || s || v`` signature (v 0/1) over
Keccak-256 of ``header.payload`` with no message prefix, and the claims ``jti``, ``sub``
(the node's address), ``iat``, ``nbf``, ``exp`` (30 s either side of ``iat``) and
``localMode: "true"``. vigil recovers the signer and accepts only such tokens:

- the signer is a configured scan node, and ``sub`` names it;
- ``localMode`` is ``"true"`` and there is no ``bot-id``: the node's JWT provider signs
  tokens for its bots with the same key and lets them choose the claims, so a bot-minted
  token must never pass for the node's own;
- ``iat``, ``nbf`` and ``exp`` are numbers, ``exp - iat`` is at most 60 s, and the token is
  inside its window, give or take the clock skew (rejected at ``exp == now`` with no skew,
  as golang-jwt does);
- its ``jti`` was not used before. Tokens are not bound to the body, so remembering each
  ``jti`` until it expires is the only defence against a replayed request.

Reasons name the failed check, never the token.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import threading
from typing import Any

from eth_keys.datatypes import Signature
from eth_keys.exceptions import BadSignature
from eth_keys.exceptions import ValidationError as KeyValidationError  # type: ignore[attr-defined]  # re-exported by eth_keys, not declared
from eth_utils.crypto import keccak

from vigil.errors import VigilError

MAX_LIFETIME = 60.0  # seconds from iat to exp; a node's publisher uses 30 s


class AuthError(VigilError):
    """The request's Authorization does not prove it comes from a configured scan node."""


class UsedTokens:
    """The ``jti`` of every accepted token until it expires: a second use is a replay."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def claim(self, jti: str, until: float, now: float) -> bool:
        """Record ``jti`` as used until ``until``; False when it was already used."""
        with self._lock:
            if len(self._until) > 1024:  # prune now and then, not on every request
                self._until = {k: t for k, t in self._until.items() if t > now}
            if self._until.get(jti, 0.0) > now:
                return False
            self._until[jti] = until
            return True


def _b64(part: str, what: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise AuthError(f"the token's {what} is not base64url") from None


def _json(part: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64(part, what))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise AuthError(f"the token's {what} is not JSON") from None
    if not isinstance(value, dict):
        raise AuthError(f"the token's {what} is not a JSON object")
    return value


def signer(token: str) -> tuple[str, dict[str, Any]]:
    """(the lower-case address that signed ``token``, its claims); AuthError if it is no
    ETH-signed JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        raise AuthError("the bearer token is not a JWT (header.payload.signature)")
    header, claims = _json(parts[0], "header"), _json(parts[1], "payload")
    if header.get("alg") != "ETH":
        raise AuthError(f"expected a JWT signed with alg ETH, got alg {header.get('alg')!r}")
    signature = _b64(parts[2], "signature")
    if len(signature) != 65:
        raise AuthError(f"expected a 65-byte r||s||v signature, got {len(signature)} bytes")
    v = signature[64] - 27 if signature[64] >= 27 else signature[64]
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big")
    digest = keccak(f"{parts[0]}.{parts[1]}".encode())
    try:
        public = Signature(vrs=(v, r, s)).recover_public_key_from_msg_hash(digest)
    except (BadSignature, KeyValidationError, ValueError):
        raise AuthError("the token's signature does not recover to any key") from None
    return public.to_checksum_address().lower(), claims


def _number(claims: dict[str, Any], name: str) -> float:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AuthError(f"the token's {name} claim must be a number, got {type(value).__name__}")
    return float(value)


def check_claims(claims: dict[str, Any], node: str, *, now: float, skew: float) -> None:
    """AuthError unless ``claims`` are those of ``node``'s publisher, valid at ``now``."""
    if "bot-id" in claims:
        raise AuthError("the token was minted for a bot (bot-id claim), not by the scan node")
    if claims.get("localMode") != "true":
        raise AuthError('the token lacks the localMode: "true" claim')
    subject = claims.get("sub")
    if not isinstance(subject, str) or subject.lower() != node:
        raise AuthError("the token's subject is not its signer")
    issued, not_before, expires = (_number(claims, n) for n in ("iat", "nbf", "exp"))
    if expires - issued > MAX_LIFETIME:
        raise AuthError(f"the token lives {expires - issued:.0f} s, over {MAX_LIFETIME:.0f} s")
    if now >= expires + skew:
        raise AuthError("the token has expired")
    if now < not_before - skew:
        raise AuthError("the token is not valid yet (nbf)")
    if now < issued - skew:
        raise AuthError("the token was issued in the future (iat)")
    if not isinstance(claims.get("jti"), str) or not claims["jti"]:
        raise AuthError("the token has no jti claim")


def authenticate(
    authorization: str | None,
    *,
    scan_nodes: frozenset[str],
    shared_token: str | None,
    now: float,
    skew: float = 30.0,
    used: UsedTokens | None = None,
) -> str | None:
    """The scan node that sent the request (None for the shared token); AuthError otherwise.

    With ``used``, a token's ``jti`` is accepted once.
    """
    if not authorization or not authorization.startswith("Bearer "):
        raise AuthError("expected an Authorization: Bearer <token> header")
    token = authorization.removeprefix("Bearer ").strip()
    if shared_token is not None and hmac.compare_digest(token, shared_token):
        return None
    if not scan_nodes:
        raise AuthError("the token is not the configured shared token")
    node, claims = signer(token)
    if node not in scan_nodes:
        raise AuthError("the token is not signed by a configured scan node")
    check_claims(claims, node, now=now, skew=skew)
    if used is not None and not used.claim(claims["jti"], claims["exp"] + skew, now):
        raise AuthError("the token's jti was used before (a replayed request)")
    return node
