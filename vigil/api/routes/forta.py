"""``POST /forta/v1/alerts``: Forta Local Mode; the scan node's own JWT is the auth."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from vigil.streams.forta.ingress import MAX_BODY_BYTES

router = APIRouter(tags=["forta"])


@router.post("/forta/v1/alerts")
async def forta_alerts(request: Request) -> JSONResponse:
    """Forta Local Mode: point a scan node's localMode.webhookUrl here."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return JSONResponse({"reason": "body too large"}, status_code=413)
    body = await request.body()
    ingress = request.app.state.forta
    answer = await run_in_threadpool(ingress.accept, request.headers.get("authorization"), body)
    return JSONResponse(answer.body, status_code=answer.status)
