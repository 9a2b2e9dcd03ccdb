"""Local Mode webhook authentication: a JWT signed by a scan node's key, or a shared token.

A scan node signs its bearer JWT with its secp256k1 key. vigil knows scan nodes by address,
so it recovers the signer from the signature (over SHA-256 of the signing input for
``ES256K``, over Keccak-256 for ``ETH``) and accepts the batch only when the signer is one of
the configured scan nodes and the token has not expired.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from eth_keys.datatypes import Signature
from eth_keys.exceptions import BadSignature
from eth_keys.exceptions import ValidationError as KeyValidationError  # type: ignore[attr-defined]  # re-exported by eth_keys, not declared
from eth_utils.crypto import keccak

from vigil.errors import VigilError


class AuthError(VigilError):
    """The request's Authorization does not prove it comes from a configured scan node."""


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


def signers(token: str) -> tuple[list[str], dict[str, Any]]:
    """(addresses that may have signed ``token``, its claims); AuthError if it is no valid JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        raise AuthError("the bearer token is not a JWT (header.payload.signature)")
    header, claims = _json(parts[0], "header"), _json(parts[1], "payload")
    algorithm = header.get("alg")
    signing_input = f"{parts[0]}.{parts[1]}".encode()
    if algorithm == "ES256K":
        digest = hashlib.sha256(signing_input).digest()
    elif algorithm == "ETH":
        digest = keccak(signing_input)
    else:
        raise AuthError(f"expected a JWT signed with ES256K or ETH, got alg {algorithm!r}")
    signature = _b64(parts[2], "signature")
    if len(signature) not in (64, 65):
        raise AuthError(f"expected a 64- or 65-byte signature, got {len(signature)} bytes")
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big")
    if len(signature) == 65:  # r || s || v, v as 0/1 or 27/28
        recovery_ids = [signature[64] - 27 if signature[64] >= 27 else signature[64]]
    else:  # r || s as ES256K gives it: either recovery id may be the signer's
        recovery_ids = [0, 1]
    found = []
    for v in recovery_ids:
        try:
            public = Signature(vrs=(v, r, s)).recover_public_key_from_msg_hash(digest)
        except (BadSignature, KeyValidationError, ValueError):
            continue
        found.append(public.to_checksum_address().lower())
    if not found:
        raise AuthError("the token's signature does not recover to any key")
    return found, claims


def authenticate(
    authorization: str | None,
    *,
    scan_nodes: frozenset[str],
    shared_token: str | None,
    now: float,
) -> str | None:
    """The scan node that sent the request (None for the shared token); AuthError otherwise."""
    if not authorization or not authorization.startswith("Bearer "):
        raise AuthError("expected an Authorization: Bearer <token> header")
    token = authorization.removeprefix("Bearer ").strip()
    if shared_token is not None and hmac.compare_digest(token, shared_token):
        return None
    if not scan_nodes:
        raise AuthError("the token is not the configured shared token")
    addresses, claims = signers(token)
    matched = [a for a in addresses if a in scan_nodes]
    if not matched:
        raise AuthError("the token is not signed by a configured scan node")
    expires = claims.get("exp")
    if expires is not None and (not isinstance(expires, int | float) or expires < now):
        raise AuthError("the token has expired")
    subject = claims.get("sub")
    if isinstance(subject, str) and subject.lower() != matched[0]:
        raise AuthError("the token's subject is not its signer")
    return matched[0]
