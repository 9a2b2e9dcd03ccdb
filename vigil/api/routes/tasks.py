"""``/tasks`` and ``/secrets``: the applied tasks, runs by hand, webhook URLs (made here,
called by anyone holding one) and the tasks' secrets (write-only: names come back, never
values)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from fastapi import APIRouter, Body, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from vigil.api.auth import require
from vigil.api.routes.monitors import config_of, delete_change, put_change
from vigil.clock import SYSTEM
from vigil.config.access import ALL, ApiKey
from vigil.connectors.tasks.secrets import check_name, parse_key, seal
from vigil.errors import VigilError
from vigil.streams import secrets as stored_secrets
from vigil.streams.config_topics import task_change
from vigil.streams.task_webhooks import Webhooks, new_webhook
from vigil.streams.tasks import applied_tasks

router = APIRouter(tags=["tasks"])
NOT_FOUND = {"message": "Not Found"}  # an unknown task and a wrong token look the same
POST_ONLY = (
    "a task webhook takes POST with a JSON body; its headers X-* and Stripe-* and its query "
    "parameters reach the task"
)


def webhooks_of(request: Request) -> Webhooks:
    found: Webhooks | None = request.app.state.webhooks
    if found is None:
        raise HTTPException(503, "this process does not take task calls")
    return found


@router.get("/tasks", dependencies=[require("tasks:read")])
async def tasks(request: Request) -> list[dict[str, Any]]:
    """Every applied task: id, name, version, schedule, timeout, memory, paused."""
    found = await run_in_threadpool(applied_tasks, *config_of(request))
    return [
        {
            "id": task_id,
            "name": task["config"]["name"],
            "version": task["version"],
            "schedule": task["config"].get("schedule"),
            "timeout": task["config"]["timeout"],
            "memoryMb": task["config"]["memory_mb"],
            "paused": task["config"].get("paused", False),
        }
        for task_id, task in sorted(found.items())
    ]


TASK_EXAMPLE = {
    "definition": {"name": "counter", "timeout": 30, "failure_channels": ["ops"]},
    "files": {"main.py": "ZGVmIGhhbmRsZXIoZXZlbnQpOgogICAgcmV0dXJuIDEK"},
}


class TaskUpload(BaseModel):
    """A task given whole: its definition (a task file's content, ``code`` not needed) and
    its files, base64, with ``main.py`` among them."""

    definition: dict[str, Any]
    files: dict[str, str]


@router.put("/tasks/{task_id}", dependencies=[require("tasks:write")])
async def put_task(
    task_id: str, request: Request, body: TaskUpload = Body(..., examples=[TASK_EXAMPLE])
) -> dict[str, Any]:
    """Create or change a task (as `vigil tasks deploy`); checked as `vigil apply` checks a
    project's tasks (5 MB zipped, requirements.txt, failure channels): a 422 names what."""
    try:
        files = {name: base64.b64decode(data, validate=True) for name, data in body.files.items()}
    except (binascii.Error, ValueError) as exc:
        raise HTTPException(422, f"files: expected base64 values: {exc}") from exc
    definition = {"code": "main.py", **body.definition}
    settings, bootstrap, codec = config_of(request)
    origin = f"PUT /tasks/{task_id}"
    return await put_change(
        request, task_change, settings, bootstrap, codec, task_id, definition, files, origin
    )


@router.delete("/tasks/{task_id}", dependencies=[require("tasks:write")])
async def delete_task(task_id: str, request: Request) -> dict[str, Any]:
    """Remove a task no applied monitor names (409 naming the monitors that do)."""
    return await delete_change(request, "task", task_id)


async def _known(request: Request, task_id: str) -> None:
    known = await run_in_threadpool(applied_tasks, *config_of(request))
    if task_id not in known:
        raise HTTPException(
            404, f"no applied task {task_id!r}; applied: {', '.join(sorted(known)) or 'none'}"
        )


@router.post("/tasks/{task_id}/runs")
async def run_task(
    request: Request,
    task_id: str,
    payload: Any = Body(None),
    key: ApiKey = require("tasks:run:{task_id}"),
) -> dict[str, Any]:
    """Run the task by hand with ``payload`` as its request body, as the calling key (the
    run may do what the key's scopes allow); answers as a webhook does (pending after
    VIGIL_TASK_WEBHOOK_WAIT seconds)."""
    await _known(request, task_id)
    webhooks = webhooks_of(request)
    run_as = None if ALL in key.scopes else key.key_id  # the stack's own key: everything
    body = payload if payload is not None else {}
    return await run_in_threadpool(
        lambda: webhooks.call(task_id, body, trigger="manual", run_as=run_as)
    )


@router.post("/tasks/{task_id}/webhook", dependencies=[require("tasks:write")])
async def make_webhook(request: Request, task_id: str) -> dict[str, Any]:
    """A new webhook URL for the task, shown this once; the previous URL answers 404."""
    await _known(request, task_id)
    settings, bootstrap, _ = config_of(request)
    token = await run_in_threadpool(new_webhook, settings, bootstrap, task_id)
    path = f"/tasks/{task_id}/webhook/{token}"
    return {"taskId": task_id, "url": str(request.base_url).rstrip("/") + path, "path": path}


@router.post("/tasks/{task_id}/webhook/{token}", include_in_schema=False)
async def call_webhook(request: Request, task_id: str, token: str) -> Any:
    """A webhook call: no API key, the token is the credential."""
    webhooks = webhooks_of(request)
    if not webhooks.accepts(task_id, token):
        return JSONResponse(NOT_FOUND, 404)
    raw = await request.body()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return JSONResponse({"message": f"the body is not JSON: {POST_ONLY}"}, 400)
    headers, query = dict(request.headers), dict(request.query_params)
    return await run_in_threadpool(webhooks.call, task_id, body, headers, query)


@router.get("/tasks/{task_id}/webhook/{token}", include_in_schema=False)
async def get_webhook(task_id: str, token: str) -> JSONResponse:
    return JSONResponse({"message": POST_ONLY}, 405, headers={"Allow": "POST"})


def _key(request: Request) -> bytes:
    settings, _, _ = config_of(request)
    if settings.secrets_key is None:
        raise HTTPException(503, "VIGIL_SECRETS_KEY is not set in the API's process")
    return parse_key(settings.secrets_key.get_secret_value())


@router.get("/secrets", dependencies=[require("secrets:write")])
async def secrets(request: Request) -> list[dict[str, Any]]:
    """The secrets' names and when each was set (ms); never a value."""
    settings, bootstrap, _ = config_of(request)
    found = await run_in_threadpool(stored_secrets.stored, settings, bootstrap)
    return [{"name": name, "setAt": s.updated_ms} for name, s in sorted(found.items())]


@router.put("/secrets/{name}", dependencies=[require("secrets:write")])
async def set_secret(
    request: Request, name: str, value: str = Body(..., embed=True, min_length=1)
) -> dict[str, Any]:
    """Seal ``{"value": …}`` under ``name``; a task run reads it from its next start."""
    key = _key(request)
    try:
        check_name(name)
    except VigilError as exc:
        raise HTTPException(422, str(exc)) from exc
    settings, bootstrap, _ = config_of(request)
    sealed = seal(key, name, value, SYSTEM.ms())
    await run_in_threadpool(stored_secrets.write, settings, bootstrap, name, sealed)
    return {"name": name, "setAt": sealed.updated_ms}


@router.delete("/secrets/{name}", status_code=204, dependencies=[require("secrets:write")])
async def delete_secret(request: Request, name: str) -> None:
    settings, bootstrap, _ = config_of(request)
    found = await run_in_threadpool(stored_secrets.stored, settings, bootstrap)
    if name not in found:
        raise HTTPException(
            404, f"no secret {name!r}; secrets: {', '.join(sorted(found)) or 'none'}"
        )
    await run_in_threadpool(stored_secrets.write, settings, bootstrap, name, None)
