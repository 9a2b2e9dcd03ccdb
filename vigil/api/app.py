"""FastAPI app: health, read-only SQL, monitors, Forta Local Mode ingress and the schema
registry, one router per capability (``api/routes/``), over what the serving process owns.

Every route but /health and the Forta ingress (its own auth) needs an API key holding the
route's scope (``api/auth.py``)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from vigil import __version__
from vigil.api.auth import Keys
from vigil.api.routes import (
    deliveries,
    health,
    metrics,
    monitors,
    queries,
    registry,
    relayers,
    sinks,
    sql,
    tasks,
)
from vigil.api.routes import forta as forta_routes
from vigil.schemas.codec import Codec
from vigil.schemas.registry import SchemaStore
from vigil.settings import Settings
from vigil.streams.forta.ingress import LocalModeIngress
from vigil.streams.relayers import Relay
from vigil.streams.task_webhooks import Webhooks


def create_app(
    keys: Keys,
    *,
    store: SchemaStore | None = None,
    clickhouse: Any | None = None,
    status: dict[str, Any] | None = None,
    forta: LocalModeIngress | None = None,
    limits: dict[str, Any] | None = None,
    config: tuple[Settings, str, Codec] | None = None,
    webhooks: Webhooks | None = None,
    route_secret: str | None = None,
    relay: Relay | None = None,
) -> FastAPI:
    """The API over the keys it accepts, a schema store (None: external registry), a
    ClickHouse client, the config topics (settings, bootstrap, codec), the tasks'
    webhooks (runs by hand, by webhook and by sink route), the sink routes' secret and the
    relayers (the Relay API).

    Users' SQL runs under ``limits`` (Settings.sql_limits) on ``clickhouse``, which should be
    a client of its own: no lock is shared with the history sink, so a long query never
    holds up history. Routes read these from ``app.state``."""
    app = FastAPI(title="vigil", version=__version__)
    app.state.keys, app.state.store, app.state.clickhouse = keys, store, clickhouse
    app.state.status, app.state.forta, app.state.limits = status, forta, limits
    app.state.config, app.state.webhooks = config, webhooks
    app.state.route_secret, app.state.relay = route_secret, relay
    app.include_router(health.router)
    app.include_router(sql.router)
    app.include_router(queries.router)
    app.include_router(deliveries.router)
    app.include_router(monitors.router)
    app.include_router(metrics.router)
    app.include_router(tasks.router)
    app.include_router(sinks.router)
    app.include_router(relayers.router)
    if forta is not None:
        app.include_router(forta_routes.router)
    if store is not None:
        app.include_router(registry.router)
    return app
