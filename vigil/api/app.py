"""FastAPI app: Confluent-compatible registry endpoints, read-only SQL, health."""

from __future__ import annotations

import threading
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from vigil import __version__
from vigil.connectors.history.query import run_readonly
from vigil.errors import HistoryError, SchemaError
from vigil.schemas.registry import SchemaStore
from vigil.streams.forta.ingress import MAX_BODY_BYTES, LocalModeIngress

REGISTRY_MEDIA = "application/vnd.schemaregistry.v1+json"


class SchemaBody(BaseModel):
    schema_: str = Field(alias="schema")
    schemaType: str = "AVRO"


class SqlBody(BaseModel):
    query: str = Field(min_length=1)


def _registry_error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"error_code": code, "message": message}, status_code=status, media_type=REGISTRY_MEDIA
    )


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
    holds up history."""
    app = FastAPI(title="vigil", version=__version__)

    if forta is not None:

        @app.post("/forta/v1/alerts")
        async def forta_alerts(request: Request) -> JSONResponse:
            """Forta Local Mode: point a scan node's localMode.webhookUrl here."""
            declared = request.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
                return JSONResponse({"reason": "body too large"}, status_code=413)
            body = await request.body()
            answer = await run_in_threadpool(
                forta.accept, request.headers.get("authorization"), body
            )
            return JSONResponse(answer.body, status_code=answer.status)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__, **(status or {})}

    @app.post("/sql")
    async def sql(body: SqlBody) -> dict[str, Any]:
        if clickhouse is None:
            raise HTTPException(503, "this process has no ClickHouse connection")
        try:
            result = await run_in_threadpool(run_readonly, clickhouse, body.query, lock, limits)
        except HistoryError as exc:
            raise HTTPException(400, str(exc)) from exc
        return {"columns": result.columns, "rows": result.rows}

    if store is None:
        return app

    @app.get("/subjects")
    def subjects() -> JSONResponse:
        return JSONResponse(store.subjects(), media_type=REGISTRY_MEDIA)

    @app.get("/subjects/{subject}/versions")
    def versions(subject: str) -> JSONResponse:
        found = store.versions(subject)
        if not found:
            return _registry_error(404, 40401, f"Subject '{subject}' not found.")
        return JSONResponse(found, media_type=REGISTRY_MEDIA)

    @app.get("/subjects/{subject}/versions/{version}")
    def version(subject: str, version: str) -> JSONResponse:
        if not store.versions(subject):
            return _registry_error(404, 40401, f"Subject '{subject}' not found.")
        found = store.version(subject, version)
        if found is None:
            return _registry_error(404, 40402, f"Version {version} not found.")
        return JSONResponse(found.as_json(), media_type=REGISTRY_MEDIA)

    @app.post("/subjects/{subject}/versions")
    async def register(subject: str, body: SchemaBody) -> JSONResponse:
        if body.schemaType.upper() != "AVRO":
            return _registry_error(422, 42201, f"only AVRO schemas, got {body.schemaType}")
        try:
            schema_id = await run_in_threadpool(store.register, subject, body.schema_)
        except SchemaError as exc:
            return _registry_error(422, 42201, str(exc))
        return JSONResponse({"id": schema_id}, media_type=REGISTRY_MEDIA)

    @app.get("/schemas/ids/{schema_id}")
    def schema_by_id(schema_id: int) -> JSONResponse:
        try:
            text = store.schema_by_id(schema_id)
        except SchemaError:
            return _registry_error(404, 40403, f"Schema {schema_id} not found")
        return JSONResponse({"schema": text, "schemaType": "AVRO"}, media_type=REGISTRY_MEDIA)

    return app
