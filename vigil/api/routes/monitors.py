"""``/monitors`` and ``/channels``: what is applied; create, change, delete, pause and resume,
through the same config topics (and the same one-transaction writes, and the same checks)
as `vigil apply` and `vigil monitors pause`.

`vigil apply` makes the topics say what the project's files say: an object made here and
not in the files is removed by the next apply. Keep the files the source of truth, or use
the API alone."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from vigil.api.auth import require
from vigil.config.state import channel_summary, monitor_summaries
from vigil.errors import ConfigError, NotFound
from vigil.streams.config_topics import (
    applied,
    applied_monitors,
    channel_change,
    delete_object,
    monitor_change,
    put_object,
    set_paused,
)

router = APIRouter(tags=["monitors"])


def config_of(request: Request) -> tuple[Any, str, Any]:
    config: tuple[Any, str, Any] | None = request.app.state.config
    if config is None:
        raise HTTPException(503, "this process does not follow the config topics")
    return config


@router.get("/monitors", dependencies=[require("monitors:read")])
async def monitors(request: Request, category: str | None = None) -> list[dict[str, Any]]:
    """Every applied monitor (of risk ``category`` only, if given): id, name, network,
    severity, category, paused, version, source."""
    found = await run_in_threadpool(applied_monitors, *config_of(request))
    try:
        return monitor_summaries(found, category)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


@router.get("/channels", dependencies=[require("monitors:read")])
async def channels(request: Request) -> list[dict[str, Any]]:
    """Every applied channel: id, type, version, source (never a URL or a secret)."""
    found = await run_in_threadpool(applied, *config_of(request), "channel")
    return [channel_summary(record) for _, record in sorted(found.items())]


async def _set(request: Request, monitor_id: str, paused: bool) -> dict[str, Any]:
    settings, bootstrap, codec = config_of(request)
    try:
        changed = await run_in_threadpool(
            set_paused, settings, bootstrap, codec, monitor_id, paused
        )
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    return {"id": monitor_id, "paused": paused, "changed": changed}


@router.post("/monitors/{monitor_id}/pause", dependencies=[require("monitors:write")])
async def pause(monitor_id: str, request: Request) -> dict[str, Any]:
    """Pause a monitor: it matches nothing until resumed. ``changed`` is false if it was."""
    return await _set(request, monitor_id, True)


@router.post("/monitors/{monitor_id}/resume", dependencies=[require("monitors:write")])
async def resume(monitor_id: str, request: Request) -> dict[str, Any]:
    """Resume a paused monitor. ``changed`` is false if it was running."""
    return await _set(request, monitor_id, False)


MONITOR_EXAMPLE = {
    "name": "USDT transfers over 1,000",
    "network": "mainnet",
    "addresses": ["0xdac17f958d2ee523a2206206994597c13d831ec7"],
    "conditions": {
        "events": [
            {
                "signature": "event Transfer(address indexed from, address indexed to, "
                "uint256 value)",
                "expression": "value > 1000 * 10^6",
            }
        ]
    },
    "channels": ["ops"],
}
CHANNEL_EXAMPLE = {"alias": "ops", "type": "slack", "url_secret": "slack-ops-url"}


async def put_change(request: Request, build: Any, *args: Any) -> dict[str, Any]:
    settings, bootstrap, codec = config_of(request)
    try:
        change = await run_in_threadpool(build, *args)
    except ConfigError as exc:
        raise HTTPException(422, str(exc)) from exc
    effect = await run_in_threadpool(put_object, settings, bootstrap, codec, change)
    return {"id": change.id, "version": change.version[:12], "effect": effect}


@router.put("/monitors/{monitor_id}", dependencies=[require("monitors:write")])
async def put_monitor(
    monitor_id: str,
    request: Request,
    body: dict[str, Any] = Body(..., examples=[MONITOR_EXAMPLE]),
) -> dict[str, Any]:
    """Create or change a monitor: a monitor file's content as JSON (the ABI inline).
    Checked as `vigil apply` checks files; a problem is a 422 naming the field."""
    settings, bootstrap, codec = config_of(request)
    return await put_change(request, monitor_change, settings, bootstrap, codec, monitor_id, body)


@router.put("/channels/{channel_id}", dependencies=[require("monitors:write")])
async def put_channel(
    channel_id: str,
    request: Request,
    body: dict[str, Any] = Body(..., examples=[CHANNEL_EXAMPLE]),
) -> dict[str, Any]:
    """Create or change a channel: a channel file's content as JSON (secrets by name)."""
    return await put_change(request, channel_change, channel_id, body)


async def delete_change(request: Request, kind: str, object_id: str) -> dict[str, Any]:
    settings, bootstrap, codec = config_of(request)
    try:
        await run_in_threadpool(delete_object, settings, bootstrap, codec, kind, object_id)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except ConfigError as exc:
        raise HTTPException(409, str(exc)) from exc
    return {"id": object_id, "effect": "deleted"}


@router.delete("/monitors/{monitor_id}", dependencies=[require("monitors:write")])
async def delete_monitor(monitor_id: str, request: Request) -> dict[str, Any]:
    """Remove a monitor: it matches nothing from the next block on."""
    return await delete_change(request, "monitor", monitor_id)


@router.delete("/channels/{channel_id}", dependencies=[require("monitors:write")])
async def delete_channel(channel_id: str, request: Request) -> dict[str, Any]:
    """Remove a channel no applied monitor names (409 naming the monitors that do)."""
    return await delete_change(request, "channel", channel_id)
