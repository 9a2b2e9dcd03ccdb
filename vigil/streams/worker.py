"""The worker: Faust agents that match blocks, retract orphaned matches, and notify channels."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import faust

from vigil import metrics
from vigil.errors import SerializationError
from vigil.processors import confirmation
from vigil.processors.forta import alert_batch
from vigil.processors.matching import batches
from vigil.schemas import tx_index
from vigil.schemas.codec import Codec
from vigil.schemas.records import Block, FortaAlert, Match, MatchBatch
from vigil.settings import Settings
from vigil.streams.app import VigilApp
from vigil.streams.dlq import DeadLetters, dead_letter
from vigil.streams.live_config import LiveConfig, Snapshot
from vigil.streams.notify import Notifier

log = logging.getLogger(__name__)


def _json_table(app: VigilApp, name: str) -> Any:
    """A changelog-backed table of JSON keys and values (strings, lists), kept as they are."""
    return app.Table(
        name,
        default=None,
        partitions=app.conf.topic_partitions,  # as many as the topics its events come from
        schema=faust.Schema(
            key_type=str, value_type=None, key_serializer="json", value_serializer="json"
        ),
    )


class Matching:
    """Blocks and retractions of one worker: match, hold for depth, release, retract.

    The rules are ``processors.confirmation``'s; this class reads their state from the
    tables, writes back what they return, and sends batches. Blocks and retractions are
    separate streams of one partition, handled one at a time, so a retraction falls either
    before a block (orphaned: nothing sent) or after it (its batches were sent first, and
    are retracted behind them).
    """

    def __init__(self, app: VigilApp, settings: Settings, live: LiveConfig, codec: Codec) -> None:
        self.live, self.codec = live, codec
        self.matches = app.topic(settings.topic("monitor.matches"))
        self.batches = app.topic(settings.topic("monitor.match-batches"))
        self.filter_requests = app.topic(settings.topic("monitor.filter-requests"))
        # network:block_hash → that block's match batches; network → its [[number, hash]]
        # (written from the block's partition; reorgs are co-partitioned with blocks)
        self.recent = _json_table(app, "recent-match-batches")
        self.recent_index = _json_table(app, "recent-match-blocks")
        self.held = _json_table(app, "held-match-batches")  # network → [[at, hash, monitor]]
        self.orphans = _json_table(app, "orphaned-blocks")  # network → [[number, hash]]
        self.in_order = asyncio.Lock()
        self.taken_over: set[str] = set()  # state keys whose legacy state was looked for

    def _filtered(self, monitor_id: str) -> bool:
        """Whether the monitor has a custom filter: its matches go to the runner first."""
        applied = self.live.snapshot.monitors.get(monitor_id)
        return applied is not None and applied.monitor.config.filter is not None

    async def send_match(self, match: Match) -> None:
        if self._filtered(match["monitor"]["id"]):
            return  # the filter runner writes the matches its filter keeps
        metrics.MATCHES.labels(match["monitor"]["id"]).inc()
        metrics.RECORDS.labels(self.matches.get_topic_name()).inc()
        await self.matches.send(
            key=match["monitor"]["id"].encode(),
            value=self.codec.encode(self.matches.get_topic_name(), "Match", match),
        )

    async def send_batch(self, batch: MatchBatch) -> None:
        """To notification, or first to the monitor's filter (a retraction goes straight on:
        only matches that were notified are followed up)."""
        filtered = not batch["retracted"] and self._filtered(batch["monitorId"])
        topic = self.filter_requests if filtered else self.batches
        metrics.RECORDS.labels(topic.get_topic_name()).inc()
        await topic.send(
            key=batch["monitorId"].encode(),
            value=self.codec.encode(topic.get_topic_name(), "MatchBatch", batch),
        )

    async def on_block(
        self, block: Block, partition: int, snapshot: Snapshot | None = None
    ) -> None:
        """``snapshot``: the one the block's transactions were chosen with, if they were."""
        async with self.in_order:
            key = self._state_key(block["network"], partition)
            await self._block(block, key, snapshot or self.live.snapshot)

    async def on_retraction(self, retraction: dict[str, Any], partition: int) -> None:
        network = retraction["network"]
        async with self.in_order:
            await self._retraction(
                network,
                self._state_key(network, partition),
                retraction["number"],
                retraction["hash"],
            )

    async def on_head(self, head: dict[str, Any], partition: int) -> None:
        """The network reached block ``head["number"]``: release what this partition holds."""
        network = head["network"]
        async with self.in_order:
            await self._release(network, self._state_key(network, partition), head["number"])

    def _state_key(self, network: str, partition: int) -> str:
        """Per-network state is kept per partition of chain.blocks (``network#partition``):
        a block, its retraction and the heads that release its held batches all arrive on
        that partition, so whichever worker owns it has all it needs. State written under
        the plain network name (before blocks were spread by number) is taken over once."""
        key = f"{network}#{partition}"
        if key in self.taken_over:  # once per key and process, not on every event
            return key
        for table in (self.held, self.orphans, self.recent_index):
            legacy = table.get(network)
            if legacy:
                table[key] = [*self._read(table, key), *legacy]
                table.pop(network, None)
        self.taken_over.add(key)
        return key

    async def _block(self, block: Block, key: str, snapshot: Snapshot) -> None:
        found = snapshot.matcher.match_block(block)
        for match in found:  # history marks those of an orphaned block retracted
            await self.send_match(match)
        network, number, block_hash = block["network"], block["number"], block["hash"]
        grouped = batches(found)
        orphans = confirmation.within_window(self._read(self.orphans, key), number)
        self._write(self.orphans, key, orphans)
        if confirmation.is_orphaned(orphans, block_hash):
            log.info(
                "block %s of %s came after its retraction: %d match batch(es) not sent",
                number,
                network,
                len(grouped),
            )
            return
        self._remember(network, key, number, block_hash, grouped)
        split = confirmation.split_by_depth(grouped, snapshot.extra_depth, number, block_hash)
        for batch in split.now:
            await self.send_batch(batch)
        if split.hold:
            self.held[key] = [*self._read(self.held, key), *split.hold]
        await self._release(network, key, number)

    def _remember(
        self, network: str, key: str, number: int, block_hash: str, found: list[MatchBatch]
    ) -> None:
        if found:
            self.recent[f"{network}:{block_hash}"] = found
        remembered = confirmation.remember(
            self._read(self.recent_index, key), number, block_hash, bool(found)
        )
        for old_hash in remembered.forgotten:
            self.recent.pop(f"{network}:{old_hash}", None)
        self._write(self.recent_index, key, remembered.index)

    async def _release(self, network: str, key: str, number: int) -> None:
        """Send the held batches whose monitors' depth block ``number`` reaches."""
        released = confirmation.release(self._read(self.held, key), number)
        if not released.due:
            return
        remembered = {
            block_hash: self.recent.get(f"{network}:{block_hash}") or []
            for _, block_hash, _ in released.due
        }
        for batch in confirmation.due_batches(released.due, remembered):
            await self.send_batch(batch)
        self.held[key] = released.waiting

    async def _retraction(self, network: str, key: str, number: int, block_hash: str) -> None:
        result = confirmation.orphan(
            self._read(self.orphans, key),
            self._read(self.held, key),
            self.recent.get(f"{network}:{block_hash}") or [],
            number,
            block_hash,
        )
        self._write(self.orphans, key, result.orphans)
        self._write(self.held, key, result.held)
        for batch in result.retract:
            await self.send_batch(batch)
        self.recent.pop(f"{network}:{block_hash}", None)
        log.info(
            "block %s %s of %s retracted: %d match batch(es) followed up as retracted",
            number,
            block_hash,
            network,
            len(result.retract),
        )

    @staticmethod
    def _read(table: Any, network: str) -> list[list[Any]]:
        return list(table.get(network) or [])

    @staticmethod
    def _write(table: Any, network: str, value: list[list[Any]]) -> None:
        """Write only a change: every write is a changelog record."""
        if value != (table.get(network) or []):
            table[network] = value


class FortaMatching:
    """Forta alerts: each alert once (API and Local Mode, or a re-poll, give repeats)."""

    def __init__(self, app: VigilApp, live: LiveConfig, matching: Matching) -> None:
        self.live, self.matching = live, matching
        self.seen = _json_table(app, "forta-seen")  # alert hash → when it was received

    async def on_alert(self, alert: FortaAlert) -> None:
        if self.seen.get(alert["hash"]) is not None:
            return
        for match in self.live.snapshot.forta.match(alert):
            await self.matching.send_match(match)
            await self.matching.send_batch(alert_batch(match))
        self.seen[alert["hash"]] = alert["receivedAt"]  # after: a crash repeats, never loses


def register_agents(app: VigilApp, settings: Settings, live: LiveConfig, codec: Codec) -> None:
    """Declare the worker's topics, tables and agents on ``app``.

    Monitors and channels come from ``live``, which follows the config topics: each record
    is handled with the snapshot in force when it arrives.
    """
    dead = DeadLetters(app.topic(settings.topic("dlq")), codec)
    matching = Matching(app, settings, live, codec)
    forta = FortaMatching(app, live, matching)
    tables = {name: _json_table(app, name) for name in ("delivered", "alert-state")}
    notifier = Notifier(app, settings, live, codec, tables, dead)

    @app.agent(app.topic(settings.topic("forta.alerts")))
    async def match_alerts(stream: Any) -> None:
        async for event in stream.events():
            await _guarded(codec, dead, event, "FortaAlert", forta.on_alert)

    @app.agent(app.topic(settings.topic("chain.blocks")))
    async def match_blocks(stream: Any) -> None:
        async for event in stream.events():
            # only the transactions that involve a watched address are decoded
            snapshot = live.snapshot
            index = dict(event.message.headers or ()).get(tx_index.HEADER)
            value = tx_index.select(event.value, index, snapshot.matcher.watches)
            on_block = partial(
                matching.on_block, partition=event.message.partition, snapshot=snapshot
            )
            await _guarded(codec, dead, event, "Block", on_block, value=value)

    @app.agent(app.topic(settings.topic("chain.reorgs")))
    async def retract(stream: Any) -> None:
        async for event in stream.events():
            on_retraction = partial(matching.on_retraction, partition=event.message.partition)
            await _guarded(codec, dead, event, "Retraction", on_retraction)

    @app.agent(app.topic(settings.topic("chain.heads")))
    async def heads(stream: Any) -> None:
        async for event in stream.events():
            on_head = partial(matching.on_head, partition=event.message.partition)
            await _guarded(codec, dead, event, "Checkpoint", on_head)

    @app.agent(matching.batches)
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
    handle: Callable[[Any], Awaitable[None]],
    *,
    value: bytes | None = None,
) -> None:
    """Decode and handle one record (``value``: the part of it to decode, if not all); a
    failure sends the whole record to the dead-letter topic and is never fatal."""
    message = event.message
    where = f"{message.topic}[{message.partition}]@{message.offset}"
    try:
        record = codec.decode(event.value if value is None else value, schema, where=where)
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
    metrics.DEAD_LETTERS.labels(message.topic).inc()
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
