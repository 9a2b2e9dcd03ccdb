"""The worker: Faust agents that match blocks, retract orphaned matches, and notify channels."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import faust
import httpx

from vigil.config.loader import LoadedChannel
from vigil.connectors.notify.events import match_event
from vigil.connectors.notify.webhook import Outcome, WebhookChannel
from vigil.errors import SerializationError
from vigil.processors.matching import batches
from vigil.schemas.codec import Codec
from vigil.settings import Settings
from vigil.streams.app import VigilApp
from vigil.streams.live_config import LiveConfig

log = logging.getLogger(__name__)
RECENT_BLOCKS = 256  # match batches kept per network for retraction: deeper than any reorg window


def delivery_record(
    match: dict[str, Any], key: str, channel_id: str, request_id: str, outcome: Outcome
) -> dict[str, Any]:
    return {
        "id": key,
        "matchId": match["id"],
        "monitorId": match["monitor"]["id"],
        "channel": channel_id,
        "channelType": "webhook",
        "requestId": request_id,
        "status": "SENT" if outcome.ok else "FAILED",
        "attempts": outcome.attempts,
        "httpStatus": outcome.status,
        "error": outcome.error,
        "at": int(time.time() * 1000),
        "latencyMs": outcome.latency_ms,
    }


def retraction_event(match: dict[str, Any]) -> dict[str, Any]:
    """The follow-up for a match whose block a reorg orphaned: same event, marked retracted."""
    return {**match_event(match), "type": "RETRACTION", "retracted": True}


def _json_table(app: VigilApp, name: str) -> Any:
    """A changelog-backed table of JSON keys and values (strings, lists), kept as they are."""
    return app.Table(
        name,
        default=None,
        partitions=3,
        schema=faust.Schema(
            key_type=str, value_type=None, key_serializer="json", value_serializer="json"
        ),
    )


def register_agents(app: VigilApp, settings: Settings, live: LiveConfig, codec: Codec) -> None:
    """Declare the topics, tables and agents of the worker on ``app``.

    Monitors and channels come from ``live``, which follows the config topics: each record
    is handled with the snapshot in force when it arrives.
    """
    blocks = app.topic(settings.topic("chain.blocks"))
    reorgs = app.topic(settings.topic("chain.reorgs"))
    matches_topic = app.topic(settings.topic("monitor.matches"))
    batches_topic = app.topic(settings.topic("monitor.match-batches"))
    deliveries_topic = app.topic(settings.topic("notify.deliveries"))
    # delivery key (match_id:channel_id[:retracted]) → request that sent it
    delivered = _json_table(app, "delivered")
    # network:block_hash → that block's match batches; network → [[number, hash], ...] of them
    # (both written from the block's partition; reorgs are co-partitioned with blocks)
    recent = _json_table(app, "recent-match-batches")
    recent_index = _json_table(app, "recent-match-blocks")
    # network → [[release at block number, block hash, monitor id], ...] held for depth
    held = _json_table(app, "held-match-batches")
    http = httpx.AsyncClient()

    async def send_batch(batch: dict[str, Any]) -> None:
        await batches_topic.send(
            key=batch["monitorId"].encode(),
            value=codec.encode(batches_topic.get_topic_name(), "MatchBatch", batch),
        )

    def remember(block: dict[str, Any], found: list[dict[str, Any]]) -> None:
        network = block["network"]
        index = list(recent_index.get(network) or [])
        if found:
            recent[f"{network}:{block['hash']}"] = found
            index.append([block["number"], block["hash"]])
        kept = [entry for entry in index if entry[0] > block["number"] - RECENT_BLOCKS]
        for _, old_hash in (entry for entry in index if entry not in kept):
            recent.pop(f"{network}:{old_hash}", None)
        if kept != (recent_index.get(network) or []):
            recent_index[network] = kept

    async def release(network: str, number: int) -> None:
        """Send the held batches whose monitors' depth block ``number`` reaches."""
        waiting = list(held.get(network) or [])
        due = [entry for entry in waiting if entry[0] <= number]
        if not due:
            return
        for _, block_hash, monitor_id in due:
            for batch in recent.get(f"{network}:{block_hash}") or []:
                if batch["monitorId"] == monitor_id:
                    await send_batch(batch)
        held[network] = [entry for entry in waiting if entry[0] > number]

    async def on_block(block: dict[str, Any]) -> None:
        snapshot = live.snapshot
        found = snapshot.matcher.match_block(block)
        for match in found:
            await matches_topic.send(
                key=match["monitor"]["id"].encode(),
                value=codec.encode(matches_topic.get_topic_name(), "Match", match),
            )
        grouped = batches(found)
        remember(block, grouped)
        network, waiting = block["network"], []
        for batch in grouped:
            depth = snapshot.extra_depth.get(batch["monitorId"], 0)
            if depth:
                waiting.append([block["number"] + depth, block["hash"], batch["monitorId"]])
            else:
                await send_batch(batch)
        if waiting:
            held[network] = [*(held.get(network) or []), *waiting]
        await release(network, block["number"])

    async def on_retraction(retraction: dict[str, Any]) -> None:
        network, orphan = retraction["network"], retraction["hash"]
        waiting = list(held.get(network) or [])
        if any(entry[1] == orphan for entry in waiting):  # never sent: nothing to take back
            held[network] = [entry for entry in waiting if entry[1] != orphan]
        for batch in recent.get(f"{network}:{orphan}") or []:
            await send_batch({**batch, "retracted": True})
        recent.pop(f"{network}:{orphan}", None)

    async def deliver(batch: dict[str, Any], loaded: LoadedChannel) -> None:
        channel_id = loaded.id
        suffix = ":retracted" if batch["retracted"] else ""
        pending = []
        for match in batch["matches"]:
            told = delivered.get(f"{match['id']}:{channel_id}") is not None
            key = f"{match['id']}:{channel_id}{suffix}"
            # a retraction goes only where the match went, and only once
            if delivered.get(key) is None and (told or not batch["retracted"]):
                pending.append((match, key))
        if not pending:
            return
        request_id = f"{batch['id']}:{channel_id}{suffix}"
        render = retraction_event if batch["retracted"] else match_event
        secret = _secret(settings, loaded.config.secret)
        if loaded.config.secret and secret is None:
            outcome = Outcome(
                False, 0, None, f"secret {loaded.config.secret!r} is not set in VIGIL_SECRETS", 0
            )
        else:
            channel = WebhookChannel(loaded.config, secret, http)
            outcome = await channel.send([render(m) for m, _ in pending], request_id)
        for match, key in pending:
            record = delivery_record(match, key, channel_id, request_id, outcome)
            if outcome.ok:
                delivered[key] = request_id
            await deliveries_topic.send(
                key=key.encode(),
                value=codec.encode(deliveries_topic.get_topic_name(), "Delivery", record),
            )

    async def on_batch(batch: dict[str, Any]) -> None:
        aliases = batch["matches"][0]["monitor"]["channels"] if batch["matches"] else []
        channels = live.snapshot.channels
        for alias in aliases:
            if alias not in channels:
                log.error("batch %s: no applied channel has alias %r", batch["id"], alias)
            for loaded in channels.get(alias, []):
                await deliver(batch, loaded)

    @app.agent(blocks)
    async def match_blocks(stream: Any) -> None:
        async for event in stream.events():
            await _guarded(codec, event, "Block", on_block)

    @app.agent(reorgs)
    async def retract(stream: Any) -> None:
        async for event in stream.events():
            await _guarded(codec, event, "Retraction", on_retraction)

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
