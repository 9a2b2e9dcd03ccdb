"""``GET /health``: liveness, the version, the instance and what the process reports."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from vigil import __version__
from vigil.api.auth import optional_key

router = APIRouter(tags=["health"])


@router.get("/health")
def health(request: Request) -> dict[str, Any]:
    """Up, with the version; a key with ``status:read`` also gets this instance's status
    (instance id, data dir, history counts)."""
    answer = {"status": "ok", "version": __version__}
    key = optional_key(request)
    if key is not None and key.allows("status:read"):
        answer.update(request.app.state.status or {})
    return answer
