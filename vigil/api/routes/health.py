"""``GET /health``: liveness, the version, the instance and what the process reports."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from vigil import __version__

router = APIRouter(tags=["health"])


@router.get("/health")
def health(request: Request) -> dict[str, Any]:
    """Up, with the version and this instance's status (instance id, data dir, history)."""
    return {"status": "ok", "version": __version__, **(request.app.state.status or {})}
