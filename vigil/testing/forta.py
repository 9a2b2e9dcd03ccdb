"""Forta scan-node tokens as a node's publisher signs them, for tests of Local Mode ingress."""

from __future__ import annotations

import json
from typing import Any

from vigil.clock import SYSTEM


def sign_eth_jwt(private_key: bytes, claims: dict[str, Any]) -> str:
    """A JWT signed as forta-core-go signs one: alg ETH, Keccak-256 of ``header.payload``
    with no prefix, a 65-byte ``r || s || v`` signature with v 0/1 (``crypto.Sign``)."""
    import base64

    from eth_keys.datatypes import PrivateKey
    from eth_utils.crypto import keccak

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = part(json.dumps({"alg": "ETH", "typ": "JWT"}).encode())
    payload = part(json.dumps(claims).encode())
    signature = PrivateKey(private_key).sign_msg_hash(keccak(f"{header}.{payload}".encode()))
    return f"{header}.{payload}.{part(signature.to_bytes())}"


def scan_node_jwt(private_key: bytes, *, now: float | None = None, **overrides: Any) -> str:
    """The bearer JWT a Forta scan node's publisher sends at ``now``, claims overridable
    (``exp=None`` gives a null exp; ``**{"bot-id": ...}`` a bot-minted token)."""
    import uuid

    from eth_keys.datatypes import PrivateKey

    issued = int(SYSTEM.time() if now is None else now)
    claims: dict[str, Any] = {
        "jti": str(uuid.uuid4()),
        "sub": PrivateKey(private_key).public_key.to_checksum_address(),
        "iat": issued,
        "nbf": issued - 30,
        "exp": issued + 30,
        "localMode": "true",
    }
    return sign_eth_jwt(private_key, {**claims, **overrides})
