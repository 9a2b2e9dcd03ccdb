"""Confluent-compatible schema registry endpoints over vigil's schema store."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from vigil.api.auth import require
from vigil.errors import SchemaError
from vigil.schemas.registry import IncompatibleSchema, SchemaStore, SchemaVersion

REGISTRY_MEDIA = "application/vnd.schemaregistry.v1+json"
router = APIRouter(tags=["schema registry"])


class SchemaBody(BaseModel):
    schema_: str = Field(alias="schema")
    schemaType: str = "AVRO"


class ConfigBody(BaseModel):
    compatibility: str


def _registry_error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"error_code": code, "message": message}, status_code=status, media_type=REGISTRY_MEDIA
    )


def _store(request: Request) -> SchemaStore:
    store: SchemaStore = request.app.state.store
    return store


@router.get("/subjects", dependencies=[require("registry:read")])
def subjects(request: Request) -> JSONResponse:
    store = _store(request)
    return JSONResponse(store.subjects(), media_type=REGISTRY_MEDIA)


@router.get("/subjects/{subject}/versions", dependencies=[require("registry:read")])
def versions(subject: str, request: Request) -> JSONResponse:
    store = _store(request)
    found = store.versions(subject)
    if not found:
        return _registry_error(404, 40401, f"Subject '{subject}' not found.")
    return JSONResponse(found, media_type=REGISTRY_MEDIA)


def _version(store: SchemaStore, subject: str, version: str) -> SchemaVersion | JSONResponse:
    """The subject's version (a number or latest), or the 404 Confluent answers."""
    if not store.versions(subject):
        return _registry_error(404, 40401, f"Subject '{subject}' not found.")
    found = store.version(subject, version)
    if found is None:
        return _registry_error(404, 40402, f"Version {version} not found.")
    return found


@router.get("/subjects/{subject}/versions/{version}", dependencies=[require("registry:read")])
def version(subject: str, version: str, request: Request) -> JSONResponse:
    found = _version(_store(request), subject, version)
    if isinstance(found, JSONResponse):
        return found
    return JSONResponse(found.as_json(), media_type=REGISTRY_MEDIA)


@router.post("/subjects/{subject}/versions", dependencies=[require("registry:write")])
async def register(subject: str, body: SchemaBody, request: Request) -> JSONResponse:
    store = _store(request)
    if body.schemaType.upper() != "AVRO":
        return _registry_error(422, 42201, f"only AVRO schemas, got {body.schemaType}")
    try:
        schema_id = await run_in_threadpool(store.register, subject, body.schema_)
    except IncompatibleSchema as exc:
        return _registry_error(409, 409, str(exc))
    except SchemaError as exc:
        return _registry_error(422, 42201, str(exc))
    return JSONResponse({"id": schema_id}, media_type=REGISTRY_MEDIA)


@router.get("/config", dependencies=[require("registry:read")])
def default_config(request: Request) -> JSONResponse:
    """The default compatibility mode (BACKWARD unless changed)."""
    return JSONResponse({"compatibilityLevel": _store(request).mode()}, media_type=REGISTRY_MEDIA)


@router.put("/config", dependencies=[require("registry:write")])
async def set_default_config(body: ConfigBody, request: Request) -> JSONResponse:
    """Change the default compatibility mode (NONE, BACKWARD, FORWARD, FULL, *_TRANSITIVE)."""
    return await _set_mode(request, body.compatibility.upper(), None)


@router.get("/config/{subject}", dependencies=[require("registry:read")])
def subject_config(subject: str, request: Request, defaultToGlobal: bool = False) -> JSONResponse:
    """The subject's own compatibility mode (404 without one, unless defaultToGlobal)."""
    store = _store(request)
    own = store.own_mode(subject)
    if own is None and not defaultToGlobal:
        return _registry_error(
            404, 40408, f"Subject '{subject}' does not have subject-level compatibility configured"
        )
    return JSONResponse({"compatibilityLevel": own or store.mode()}, media_type=REGISTRY_MEDIA)


@router.put("/config/{subject}", dependencies=[require("registry:write")])
async def set_subject_config(subject: str, body: ConfigBody, request: Request) -> JSONResponse:
    """Change one subject's compatibility mode."""
    return await _set_mode(request, body.compatibility.upper(), subject)


async def _set_mode(request: Request, mode: str, subject: str | None) -> JSONResponse:
    try:
        await run_in_threadpool(_store(request).set_mode, mode, subject)
    except SchemaError as exc:
        return _registry_error(422, 42203, str(exc))
    return JSONResponse({"compatibility": mode}, media_type=REGISTRY_MEDIA)


@router.post(
    "/compatibility/subjects/{subject}/versions/{version}",
    dependencies=[require("registry:read")],
)
async def compatibility(
    subject: str, version: str, body: SchemaBody, request: Request, verbose: bool = False
) -> JSONResponse:
    """Whether ``schema`` may follow ``version`` (a number or latest) under the subject's mode."""
    store = _store(request)
    found = _version(store, subject, version)
    if isinstance(found, JSONResponse):
        return found
    try:
        problems = await run_in_threadpool(store.problems, subject, body.schema_, [found])
    except SchemaError as exc:
        return _registry_error(422, 42201, str(exc))
    answer: dict[str, object] = {"is_compatible": not problems}
    if verbose:
        answer["messages"] = problems
    return JSONResponse(answer, media_type=REGISTRY_MEDIA)


@router.get("/schemas/ids/{schema_id}", dependencies=[require("registry:read")])
def schema_by_id(schema_id: int, request: Request) -> JSONResponse:
    store = _store(request)
    try:
        text = store.schema_by_id(schema_id)
    except SchemaError:
        return _registry_error(404, 40403, f"Schema {schema_id} not found")
    return JSONResponse({"schema": text, "schemaType": "AVRO"}, media_type=REGISTRY_MEDIA)
