"""``POST /sql``: read-only SQL over the history, under limits the query cannot lift."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from vigil.api.auth import require
from vigil.connectors.history.query import run_readonly
from vigil.errors import HistoryError

router = APIRouter(tags=["sql"])


class SqlBody(BaseModel):
    query: str = Field(min_length=1, examples=["SELECT count() FROM matches FINAL"])


@router.post("/sql", dependencies=[require("sql:read")])
async def sql(body: SqlBody, request: Request) -> dict[str, Any]:
    """Run one read-only query; a write, or a query past its limits, is a 400 naming why."""
    return await history(request, body.query)


async def history(request: Request, query: str) -> dict[str, Any]:
    """``query`` on the history, read-only and under the users' limits: columns and rows."""
    state = request.app.state
    if state.clickhouse is None:
        raise HTTPException(503, "this process has no ClickHouse connection")
    try:
        result = await run_in_threadpool(run_readonly, state.clickhouse, query, None, state.limits)
    except HistoryError as exc:
        raise HTTPException(400, str(exc)) from exc
    return {"columns": result.columns, "rows": result.rows}
