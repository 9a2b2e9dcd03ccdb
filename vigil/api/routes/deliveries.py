"""``/deliveries``: the latest deliveries from the history, and resending a failed one
through its dead letter (as `vigil deliveries retry` does)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool

from vigil.api.auth import require
from vigil.api.routes.sql import history
from vigil.connectors.history.queries import deliveries_sql
from vigil.errors import NotFound, VigilError
from vigil.streams.dlq import resend

router = APIRouter(tags=["deliveries"])


@router.get("/deliveries", dependencies=[require("deliveries:read")])
async def deliveries(
    request: Request,
    failed: bool = Query(False, description="only deliveries that failed after their retries"),
    limit: int = Query(50, ge=1, le=10_000, description="rows at most, newest first"),
) -> dict[str, Any]:
    """The latest deliveries: id, request id, channel, status, attempts, HTTP status, error."""
    return await history(request, deliveries_sql(failed, limit))


@router.post("/deliveries/{delivery_id}/resend", dependencies=[require("deliveries:write")])
async def resend_delivery(delivery_id: str, request: Request) -> dict[str, Any]:
    """Send a failed delivery again (its id or request id); 404 if it has no dead letter."""
    config = request.app.state.config
    if config is None:
        raise HTTPException(503, "this process does not reach the dead-letter topic")
    settings, bootstrap, codec = config
    try:
        batch = await run_in_threadpool(resend, settings, bootstrap, codec, delivery_id)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except VigilError as exc:
        raise HTTPException(409, str(exc)) from exc
    return {"resent": len(batch["matches"]), "channel": batch["channel"]}
