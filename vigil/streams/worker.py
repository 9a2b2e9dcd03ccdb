"""The worker: Faust agents that match blocks and deliver match batches to channels."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import faust
import httpx

from vigil.config.loader import Project
from vigil.connectors.notify.events import match_event
from vigil.connectors.notify.webhook import WebhookChannel
from vigil.errors import SerializationError
from vigil.processors.matching import Matcher, batches, compile_monitor
from vigil.schemas.codec import Codec
from vigil.settings import Settings
from vigil.streams.app import VigilApp

log = logging.getLogger(__name__)


def build_matcher(project: Project) -> Matcher:
    chain_ids = {name: net.chain_id for name, net in project.config.networks.items()}
    return Matcher(compile_monitor(m, chain_ids[m.config.network]) for m in project.monitors)


def delivery_record(
    match: dict[str, Any], channel_id: str, channel_type: str, request_id: str, outcome: Any
) -> dict[str, Any]:
    return {
        "id": f"{match['id']}:{channel_id}",
        "matchId": match["id"],
        "monitorId": match["monitor"]["id"],
        "channel": channel_id,
        "channelType": channel_type,
        "requestId": request_id,
        "status": "SENT" if outcome.ok else "FAILED",
        "attempts": outcome.attempts,
        "httpStatus": outcome.status,
        "error": outcome.error,
        "at": int(time.time() * 1000),
        "latencyMs": outcome.latency_ms,
    }


def register_agents(app: VigilApp, settings: Settings, project: Project, codec: Codec) -> None:
    """Declare the topics, the delivered-keys table and the two agents on ``app``."""
    blocks = app.topic(settings.topic("chain.blocks"))
    matches_topic = app.topic(settings.topic("monitor.matches"))
    batches_topic = app.topic(settings.topic("monitor.match-batches"))
    deliveries_topic = app.topic(settings.topic("notify.deliveries"))
    matcher = build_matcher(project)
    # delivery key (match_id:channel_id) → request that sent it; a redelivered batch skips these
    delivered = app.Table(
        "delivered",
        default=None,
        partitions=3,
        schema=faust.Schema(
            key_type=str, value_type=str, key_serializer="json", value_serializer="json"
        ),
    )
    http = httpx.AsyncClient()
    channels = {
        alias: [
            (c.id, WebhookChannel(c.config, _secret(settings, c.config.secret), http))
            for c in group
        ]
        for alias, group in project.channels.items()
    }

    async def on_block(block: dict[str, Any]) -> None:
        found = matcher.match_block(block)
        for match in found:
            await matches_topic.send(
                key=match["monitor"]["id"].encode(),
                value=codec.encode(matches_topic.get_topic_name(), "Match", match),
            )
        for batch in batches(found):
            await batches_topic.send(
                key=batch["monitorId"].encode(),
                value=codec.encode(batches_topic.get_topic_name(), "MatchBatch", batch),
            )

    async def deliver(batch: dict[str, Any], channel_id: str, channel: WebhookChannel) -> None:
        pending = [m for m in batch["matches"] if delivered.get(f"{m['id']}:{channel_id}") is None]
        if not pending:
            return  # every match of this batch already went to this channel
        request_id = f"{batch['id']}:{channel_id}"
        outcome = await channel.send([match_event(m) for m in pending], request_id)
        for match in pending:
            record = delivery_record(match, channel_id, "webhook", request_id, outcome)
            if outcome.ok:
                delivered[record["id"]] = request_id
            await deliveries_topic.send(
                key=record["id"].encode(),
                value=codec.encode(deliveries_topic.get_topic_name(), "Delivery", record),
            )

    async def on_batch(batch: dict[str, Any]) -> None:
        aliases = batch["matches"][0]["monitor"]["channels"] if batch["matches"] else []
        for alias in aliases:
            for channel_id, channel in channels.get(alias, []):
                await deliver(batch, channel_id, channel)

    @app.agent(blocks)
    async def match_blocks(stream: Any) -> None:
        async for event in stream.events():
            await _guarded(codec, event, "Block", on_block)

    @app.agent(batches_topic)
    async def notify(stream: Any) -> None:
        async for event in stream.events():
            await _guarded(codec, event, "MatchBatch", on_batch)


async def _guarded(
    codec: Codec, event: Any, schema: str, handle: Callable[[dict[str, Any]], Awaitable[None]]
) -> None:
    """Decode and handle one record; a failure is logged with its position, never fatal."""
    where = f"{event.message.topic}[{event.message.partition}]@{event.message.offset}"
    try:
        await handle(codec.decode(event.value, schema, where=where))
    except SerializationError as exc:
        log.error("skipping undecodable record: %s", exc)
    except Exception:
        log.exception("%s: processing failed; the worker goes on with the next record", where)


def _secret(settings: Settings, name: str | None) -> str | None:
    if name is None:
        return None
    secret = settings.secrets.get(name)
    return secret.get_secret_value() if secret is not None else None
