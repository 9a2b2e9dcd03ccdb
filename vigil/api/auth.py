"""API keys on every route: no key is 401, a key without the route's scope is 403 naming it.

A key comes as ``Authorization: Bearer <key>``, as ``X-Api-Key: <key>``, or as the password
of HTTP Basic auth (what Confluent's schema registry clients send). The Forta ingress keeps
its own auth (the scan node's JWT) and /health answers liveness to anyone.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Any, Protocol

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPBearer

from vigil.config.access import ALL, ApiKey, key_id_of

# declares the scheme in the OpenAPI document; the checking is done below
bearer = HTTPBearer(auto_error=False, description="an API key from `vigil keys create`")
ANONYMOUS_HINT = "send Authorization: Bearer <key>; `vigil keys create` makes one"


class Keys(Protocol):
    """What the API asks of a key ring (streams.api_keys.KeyRing, or StaticKeys)."""

    stack_key: str | None

    def get(self, key_id: str) -> ApiKey | None: ...


class StaticKeys:
    """Only the stack's own key: for an API served without a keys topic (tests, tools)."""

    def __init__(self, stack_key: str) -> None:
        self.stack_key = stack_key

    def get(self, key_id: str) -> ApiKey | None:
        return None


def presented(request: Request) -> str | None:
    """The key the request carries, in any of the three accepted places."""
    if key := request.headers.get("x-api-key"):
        return key.strip()
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":
        try:
            _, _, password = base64.b64decode(value.strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return password or None
    return None


def authenticate(keys: Keys, key: str) -> ApiKey | None:
    """The record of a valid, unrevoked ``key``; the stack key holds every scope."""
    if keys.stack_key and hmac.compare_digest(key.encode(), keys.stack_key.encode()):
        return ApiKey(key_id="0" * 12, name="stack", scopes=(ALL,), sha256="0" * 64, created_ms=0)
    key_id = key_id_of(key)
    record = keys.get(key_id) if key_id else None
    if record is None or record.revoked_ms is not None or not record.matches(key):
        return None
    return record


def optional_key(request: Request) -> ApiKey | None:
    """The request's valid key, or None: for routes that answer more to a known caller."""
    key = presented(request)
    return authenticate(request.app.state.keys, key) if key else None


def require(scope: str) -> Any:
    """A route dependency: the request's key must be valid and hold ``scope``, whose
    ``{name}`` parts are the route's path parameters (``tasks:run:{task_id}``)."""

    def check(request: Request, _: Any = Depends(bearer)) -> ApiKey:
        needed = scope.format(**request.path_params)
        key = presented(request)
        if not key:
            raise HTTPException(401, f"missing API key: {ANONYMOUS_HINT}", _CHALLENGE)
        record = authenticate(request.app.state.keys, key)
        if record is None:
            raise HTTPException(401, "unknown or revoked API key", _CHALLENGE)
        if not record.allows(needed):
            raise HTTPException(403, f"the key {record.key_id} lacks the scope {needed}")
        return record

    return Depends(check)


_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="vigil"'}
