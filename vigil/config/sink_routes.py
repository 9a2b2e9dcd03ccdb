"""Sink routes: signed URLs that run a task and answer with what it returns.

A route is its task and its constraints (method, content type, path suffix), written into
the URL as base64url JSON, followed by an HMAC-SHA256 of exactly those bytes under the
server secret (``VIGIL_ROUTE_SECRET``, or the data dir's). Nothing is stored: the signature
is checked on every call, and a new server secret invalidates every route at once.

    /routes/<base64url of {"t": task, "m": method, "c": content type, "p": suffix}>.<hmac>/<suffix>
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass


@dataclass(frozen=True)
class SinkRoute:
    task_id: str
    method: str = "POST"
    content_type: str | None = None
    suffix: str = ""  # the path after the token, without the leading slash

    def token(self, secret: str) -> str:
        fields = {"t": self.task_id, "m": self.method, "c": self.content_type, "p": self.suffix}
        body = _b64(json.dumps(fields, separators=(",", ":"), sort_keys=True).encode())
        return f"{body}.{_sign(secret, body)}"

    def path(self, secret: str) -> str:
        return f"/routes/{self.token(secret)}" + (f"/{self.suffix}" if self.suffix else "")


def verified(token: str, secret: str) -> SinkRoute | None:
    """The route a token names when its signature is the secret's; else None."""
    body, _, signature = token.partition(".")
    if not body or not hmac.compare_digest(signature.encode(), _sign(secret, body).encode()):
        return None
    try:
        fields = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        return SinkRoute(fields["t"], fields["m"], fields["c"], fields["p"])
    except (binascii.Error, ValueError, KeyError, TypeError):
        return None


def _sign(secret: str, body: str) -> str:
    return _b64(hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
