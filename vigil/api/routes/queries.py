"""``/queries``: the ready-made queries over the history, with typed parameters, under the
same limits as users' own SQL."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request

from vigil.api.auth import require
from vigil.api.routes.sql import history
from vigil.connectors.history.queries import QUERIES, ready_query
from vigil.errors import ConfigError, NotFound

router = APIRouter(tags=["sql"])


@router.get("/queries", dependencies=[require("sql:read")])
def queries() -> list[dict[str, Any]]:
    """The ready-made queries: name, what each answers, and its parameters with defaults."""
    return [
        {
            "name": q.name,
            "doc": q.doc,
            "params": [
                {"name": p.name, "doc": p.doc, "default": p.shown_default} for p in q.params
            ],
        }
        for q in QUERIES.values()
    ]


@router.get("/queries/{name}", dependencies=[require("sql:read")])
async def run_query(
    name: str,
    request: Request,
    limit: str | None = Query(None, description="rows at most (the queries that take it)"),
    hours: str | None = Query(None, description="how far back (the queries that take it)"),
    days: str | None = Query(None, description="how many days back (the queries that take it)"),
    monitor: str | None = Query(None, description="a monitor id (the queries that take it)"),
    task: str | None = Query(None, description="a task id (task-run-durations)"),
) -> dict[str, Any]:
    """Run one ready-made query with its parameters (``GET /queries`` lists which it takes);
    a parameter it does not take, or a bad value, is a 422 naming it."""
    try:
        sql = ready_query(name).render(dict(request.query_params))
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except ConfigError as exc:
        raise HTTPException(422, str(exc)) from exc
    return await history(request, sql)
