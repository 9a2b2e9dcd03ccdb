"""FastAPI app: health, read-only SQL, Forta Local Mode ingress and the schema registry,
one router per capability (``api/routes/``), over what the serving process owns."""

from __future__ import annotations

import threading
from typing import Any

from fastapi import FastAPI

from vigil import __version__
from vigil.api.routes import forta as forta_routes
from vigil.api.routes import health, registry, sql
from vigil.schemas.registry import SchemaStore
from vigil.streams.forta.ingress import LocalModeIngress


def create_app(
    store: SchemaStore | None,
    clickhouse: Any | None,
    lock: threading.Lock | None = None,
    status: dict[str, Any] | None = None,
    forta: LocalModeIngress | None = None,
    limits: dict[str, Any] | None = None,
) -> FastAPI:
    """The API over a schema store (None: external registry) and a ClickHouse client.

    Users' SQL runs under ``limits`` (Settings.sql_limits) on ``clickhouse``, which should be
    a client of its own: no lock is shared with the history sink, so a long query never
    holds up history. Routes read these from ``app.state``."""
    app = FastAPI(title="vigil", version=__version__)
    app.state.store, app.state.clickhouse, app.state.lock = store, clickhouse, lock
    app.state.status, app.state.forta, app.state.limits = status, forta, limits
    app.include_router(health.router)
    app.include_router(sql.router)
    if forta is not None:
        app.include_router(forta_routes.router)
    if store is not None:
        app.include_router(registry.router)
    return app
