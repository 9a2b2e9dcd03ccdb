"""``/monitors``: the applied monitors, pause and resume, through the same config topics
(and the same one-transaction writes) as `vigil monitors pause` and `vigil apply`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from vigil.api.auth import require
from vigil.config.state import channel_summary, monitor_summary
from vigil.errors import ConfigError
from vigil.streams.config_topics import applied, applied_monitors, set_paused

router = APIRouter(tags=["monitors"])


def _config(request: Request) -> tuple[Any, str, Any]:
    config: tuple[Any, str, Any] | None = request.app.state.config
    if config is None:
        raise HTTPException(503, "this process does not follow the config topics")
    return config


@router.get("/monitors", dependencies=[require("monitors:read")])
async def monitors(request: Request) -> list[dict[str, Any]]:
    """Every applied monitor: id, name, network, severity, paused, version, source."""
    found = await run_in_threadpool(applied_monitors, *_config(request))
    return [monitor_summary(record) for _, record in sorted(found.items())]


@router.get("/channels", dependencies=[require("monitors:read")])
async def channels(request: Request) -> list[dict[str, Any]]:
    """Every applied channel: id, type, version, source (never a URL or a secret)."""
    found = await run_in_threadpool(applied, *_config(request), "channel")
    return [channel_summary(record) for _, record in sorted(found.items())]


async def _set(request: Request, monitor_id: str, paused: bool) -> dict[str, Any]:
    settings, bootstrap, codec = _config(request)
    try:
        changed = await run_in_threadpool(
            set_paused, settings, bootstrap, codec, monitor_id, paused
        )
    except ConfigError as exc:
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
