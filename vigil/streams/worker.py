"""The worker: Faust agents that match blocks, retract orphaned matches, and notify channels."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import faust

from vigil.errors import SerializationError
from vigil.processors.forta import alert_batch
from vigil.processors.matching import batches
from vigil.schemas.codec import Codec
from vigil.settings import Settings
from vigil.streams.app import VigilApp
from vigil.streams.dlq import DeadLetters, dead_letter
from vigil.streams.live_config import LiveConfig
from vigil.streams.notify import Notifier

log = logging.getLogger(__name__)
RECENT_BLOCKS = 256  # match batches kept per network for retraction: deeper than any reorg window


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
    dead = DeadLetters(app.topic(settings.topic("dlq")), codec)
    notifier = Notifier(
        app,
        settings,
        live,
        codec,
        {name: _json_table(app, name) for name in ("delivered", "alert-state")},
        dead,
    )
    # network:block_hash → that block's match batches; network → [[number, hash], ...] of them
    # (both written from the block's partition; reorgs are co-partitioned with blocks)
    recent = _json_table(app, "recent-match-batches")
    recent_index = _json_table(app, "recent-match-blocks")
    # network → [[release at block number, block hash, monitor id], ...] held for depth
    held = _json_table(app, "held-match-batches")
    # network → [[number, hash], ...] of retracted blocks: their batches are never sent, even
    # when the block arrives after its retraction (a lagging or rejoining worker)
    orphans = _json_table(app, "orphaned-blocks")
    # blocks and retractions are separate streams of one partition: one at a time, so a
    # retraction falls either before a block (orphaned: nothing sent) or after it (its
    # batches are in `recent` and were sent first: retracted behind them)
    in_order = asyncio.Lock()

    def orphaned(network: str, block_hash: str) -> bool:
        return any(entry[1] == block_hash for entry in orphans.get(network) or [])

    def forget_orphans(network: str, number: int) -> None:
        known = list(orphans.get(network) or [])
        kept = [entry for entry in known if entry[0] > number - RECENT_BLOCKS]
        if kept != known:
            orphans[network] = kept

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
        async with in_order:
            await handle_block(block)

    async def handle_block(block: dict[str, Any]) -> None:
        snapshot = live.snapshot
        found = snapshot.matcher.match_block(block)
        for match in found:  # history marks those of an orphaned block retracted
            await matches_topic.send(
                key=match["monitor"]["id"].encode(),
                value=codec.encode(matches_topic.get_topic_name(), "Match", match),
            )
        network, grouped = block["network"], batches(found)
        forget_orphans(network, block["number"])
        if orphaned(network, block["hash"]):
            log.info(
                "block %s of %s came after its retraction: %d match batch(es) not sent",
                block["number"],
                network,
                len(grouped),
            )
            return
        remember(block, grouped)
        waiting = []
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
        async with in_order:
            await handle_retraction(retraction)

    async def handle_retraction(retraction: dict[str, Any]) -> None:
        network, orphan = retraction["network"], retraction["hash"]
        if not orphaned(network, orphan):
            orphans[network] = [*(orphans.get(network) or []), [retraction["number"], orphan]]
        waiting = list(held.get(network) or [])
        if any(entry[1] == orphan for entry in waiting):  # never sent: nothing to take back
            held[network] = [entry for entry in waiting if entry[1] != orphan]
        for batch in recent.get(f"{network}:{orphan}") or []:
            await send_batch({**batch, "retracted": True})
        recent.pop(f"{network}:{orphan}", None)

    forta_alerts = app.topic(settings.topic("forta.alerts"))
    # alert hash → when it was received: a repeat (API and Local Mode, or a re-poll) is dropped
    seen_alerts = _json_table(app, "forta-seen")

    async def on_alert(alert: dict[str, Any]) -> None:
        if seen_alerts.get(alert["hash"]) is not None:
            return
        for match in live.snapshot.forta.match(alert):
            await matches_topic.send(
                key=match["monitor"]["id"].encode(),
                value=codec.encode(matches_topic.get_topic_name(), "Match", match),
            )
            await send_batch(alert_batch(match))
        seen_alerts[alert["hash"]] = alert["receivedAt"]  # after: a crash repeats, never loses

    @app.agent(forta_alerts)
    async def match_alerts(stream: Any) -> None:
        async for event in stream.events():
            await _guarded(codec, dead, event, "FortaAlert", on_alert)

    @app.agent(blocks)
    async def match_blocks(stream: Any) -> None:
        async for event in stream.events():
            await _guarded(codec, dead, event, "Block", on_block)

    @app.agent(reorgs)
    async def retract(stream: Any) -> None:
        async for event in stream.events():
            await _guarded(codec, dead, event, "Retraction", on_retraction)

    @app.agent(batches_topic)
    async def notify(stream: Any) -> None:
        async for event in stream.events():
            where = {"partition": event.message.partition, "offset": event.message.offset}
            await _guarded(
                codec, dead, event, "MatchBatch", partial(notifier.on_batch, where=where)
            )


async def _guarded(
    codec: Codec,
    dead: DeadLetters,
    event: Any,
    schema: str,
    handle: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    """Decode and handle one record; a failure goes to the dead-letter topic, never fatal."""
    message = event.message
    where = f"{message.topic}[{message.partition}]@{message.offset}"
    try:
        record = codec.decode(event.value, schema, where=where)
    except SerializationError as exc:
        await _dead(dead, event, schema, str(exc))
        return
    try:
        await handle(record)
    except Exception as exc:
        log.exception("%s: processing failed; the worker goes on with the next record", where)
        await _dead(dead, event, schema, f"{where}: {type(exc).__name__}: {exc}")


async def _dead(dead: DeadLetters, event: Any, schema: str, error: str) -> None:
    message = event.message
    await dead.send(
        dead_letter(
            id=f"{message.topic}[{message.partition}]@{message.offset}",
            source="worker",
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key=event.key if isinstance(event.key, bytes) else None,
            error=error,
            schema=schema,
            payload=event.value if isinstance(event.value, bytes) else None,
        )
    )
