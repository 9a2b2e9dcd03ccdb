"""``GET /metrics``: the API process's Prometheus metrics (history sink, DLQ, registry)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from vigil.api.auth import require

router = APIRouter(tags=["metrics"])


@router.get("/metrics", dependencies=[require("metrics:read")], response_class=Response)
def metrics() -> Response:
    """Prometheus text format; scrape with ``authorization: {credentials: <key>}``."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
