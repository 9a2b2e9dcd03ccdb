"""The notify agent's work: rate limits (threshold, timeout), delivery per channel, once.

Match batches arrive keyed by monitor id, so the per-monitor alert state and the delivered
keys live in Faust tables on the same partitions. A delivery key is ``match_id:channel_id``:
a key in the ``delivered`` table is never sent again, whatever is redelivered. After a
successful send the key is written and the producer flushed before the agent moves on, so
a worker killed after sending finds the key when it restarts.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx

from vigil import metrics
from vigil.clock import SYSTEM, Clock
from vigil.config.loader import LoadedChannel
from vigil.config.message import parsed
from vigil.connectors.notify.channels import build_channel
from vigil.connectors.notify.delivery import Channel, Messages, Outcome
from vigil.connectors.notify.render import with_links
from vigil.processors.alerting import Gate, decide
from vigil.processors.replay import REPLAYED
from vigil.schemas.codec import Codec
from vigil.schemas.events import match_event
from vigil.schemas.records import Delivery, Match, MatchBatch, task_request
from vigil.settings import Settings
from vigil.streams.dlq import DeadLetters, dead_letter
from vigil.streams.hooks import BeforeNotify, Vetoed
from vigil.streams.live_config import LiveConfig

log = logging.getLogger(__name__)
FLUSH_TIMEOUT_S = 5.0
RETRACTED = "**RETRACTED: a reorg orphaned the block of this match**\n\n"


def retraction_event(match: Match, abi: list[Any] | None = None) -> dict[str, Any]:
    """The follow-up for a match whose block a reorg orphaned: same event, marked retracted."""
    return {**match_event(match, abi), "type": "RETRACTION", "retracted": True}


def delivery_record(
    match: Match,
    key: str,
    channel: LoadedChannel,
    request_id: str,
    outcome: Outcome,
    at_ms: int,
) -> Delivery:
    return {
        "id": key,
        "matchId": match["id"],
        "monitorId": match["monitor"]["id"],
        "channel": channel.id,
        "channelType": channel.config.type,
        "requestId": request_id,
        "status": "SENT" if outcome.ok else "FAILED",
        "attempts": outcome.attempts,
        "httpStatus": outcome.status,
        "error": outcome.error,
        "at": at_ms,
        "latencyMs": outcome.latency_ms,
    }


class Notifier:
    """Decides which matches of a batch notify, and sends them to the monitor's channels."""

    def __init__(
        self,
        app: Any,
        settings: Settings,
        live: LiveConfig,
        codec: Codec,
        tables: dict[str, Any],
        dead: DeadLetters,
        clock: Clock = SYSTEM,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.app, self.settings, self.live, self.codec, self.dead = app, settings, live, codec, dead
        self.clock = clock
        self.deliveries = app.topic(settings.topic("notify.deliveries"))
        self.suppressed = app.topic(settings.topic("monitor.suppressed"))
        self.batches_name = settings.topic("monitor.match-batches")
        self.task_requests = app.topic(settings.topic("tasks.requests"))
        self.delivered = tables["delivered"]  # delivery key → request id that sent it
        self.alerts = tables["alert-state"]  # monitor id → decide()'s state
        self.http = http or httpx.AsyncClient()  # a transport seam for tests
        self._senders: dict[tuple[str, str], Channel] = {}
        self.before = BeforeNotify(app, settings, codec, clock)

    def sender(self, channel: LoadedChannel) -> Channel:
        """The sender of ``channel`` as applied now (rebuilt when its config changes)."""
        version = self.live.snapshot.versions.get(("channel", channel.id), "")
        key = (channel.id, version)
        if key not in self._senders:
            self._senders[key] = build_channel(channel.config, self.settings, self.http, self.clock)
        return self._senders[key]

    async def on_batch(self, batch: MatchBatch, where: dict[str, Any]) -> None:
        if not batch["matches"]:
            return
        snapshot = self.live.snapshot
        if batch["retracted"] or batch["redelivery"]:
            notify = list(batch["matches"])  # already decided when first sent
        else:
            notify = await self._gate(batch)
        # a line per live batch would flood the log of a busy chain (deliveries are records);
        # replayed, retracted and redelivered ones are the few an operator follows
        unusual = batch["id"].endswith(REPLAYED) or batch["retracted"] or batch["redelivery"]
        log.log(
            logging.INFO if unusual else logging.DEBUG,
            "batch %s (%s[%s]@%s): %d match(es), %d to notify",
            batch["id"],
            self.batches_name,
            where["partition"],
            where["offset"],
            len(batch["matches"]),
            len(notify),
        )
        if not notify:
            return
        if not batch["retracted"] and not batch["redelivery"]:
            await self._trigger_tasks(batch, notify)
        if batch["channel"]:
            only = snapshot.by_id.get(batch["channel"])
            targets = [only] if only else []
            if not targets:
                log.error("batch %s: channel %r is not applied", batch["id"], batch["channel"])
        else:
            targets = []
            for alias in notify[0]["monitor"]["channels"]:
                if alias not in snapshot.channels and alias not in snapshot.tasks:
                    log.error("batch %s: no applied channel has alias %r", batch["id"], alias)
                targets.extend(snapshot.channels.get(alias, []))
        for channel in targets:
            await self._deliver(batch, notify, channel, where)

    async def _trigger_tasks(self, batch: MatchBatch, matches: list[Match]) -> None:
        """Request a run of each task the monitor names (in ``tasks:`` or among its
        channels) with the block's events, as a webhook gets them. The run id is the
        batch's and the task's, so a batch seen again runs nothing twice."""
        snapshot = self.live.snapshot
        config = matches[0]["monitor"]
        applied = snapshot.monitors.get(batch["monitorId"])
        named = list(applied.monitor.config.tasks) if applied else []
        named += [a for a in config["channels"] if a not in snapshot.channels]
        for task_id in dict.fromkeys(named):
            if task_id not in snapshot.tasks:
                log.error("batch %s: task %r is not applied or is paused", batch["id"], task_id)
                continue
            run_id = f"monitor:{batch['id']}:{task_id}"
            request = task_request(
                run_id,
                task_id,
                "monitor",
                {"events": [match_event(m, self._abi(batch["monitorId"])) for m in matches]},
                self.clock.ms(),
            )
            topic = self.task_requests.get_topic_name()
            metrics.RECORDS.labels(topic).inc()
            await self.task_requests.send(
                key=run_id.encode(), value=self.codec.encode(topic, "TaskRequest", request)
            )

    async def _gate(self, batch: MatchBatch) -> list[Match]:
        """The matches that pass the monitor's threshold and timeout; records the others."""
        applied = self.live.snapshot.monitors.get(batch["monitorId"])
        config = applied.monitor.config if applied else None
        gate = Gate(
            config.threshold.amount if config and config.threshold else 0,
            config.threshold.window_seconds if config and config.threshold else 0,
            config.timeout_seconds if config else 0,
        )
        if gate.open:
            return list(batch["matches"])
        state = self.alerts.get(batch["monitorId"])
        passed = []
        for match in batch["matches"]:
            state, decision = decide(state, gate, match["id"], int(match["timestamp"]))
            if decision.notify:
                passed.append(match)
            elif decision.detail != "repeat":
                await self._suppress(match, decision.reason or "", decision.detail, decision.count)
        self.alerts[batch["monitorId"]] = state
        return passed

    async def _suppress(self, match: Match, reason: str, detail: str, count: int) -> None:
        record = {
            "id": match["id"],
            "monitorId": match["monitor"]["id"],
            "network": match["monitor"]["network"],
            "blockNumber": match["blockNumber"],
            "blockHash": match["blockHash"],
            "hash": match["hash"],
            "reason": reason,
            "detail": detail,
            "count": count,
            "timestamp": int(match["timestamp"]),
            "at": self.clock.ms(),
        }
        metrics.SUPPRESSED.labels(match["monitor"]["id"], reason).inc()
        metrics.RECORDS.labels(self.suppressed.get_topic_name()).inc()
        await self.suppressed.send(
            key=match["monitor"]["id"].encode(),
            value=self.codec.encode(self.suppressed.get_topic_name(), "Suppressed", record),
        )

    def _messages(self, monitor_id: str, channel: LoadedChannel, retracted: bool) -> Messages:
        applied = self.live.snapshot.monitors.get(monitor_id)
        message = applied.monitor.config.message if applied else None
        chosen = Messages.choose(message, channel.config.template, self.sender(channel).chat)
        if retracted:
            return Messages(chosen.subject, parsed(RETRACTED + chosen.body.source))
        return chosen

    def _abi(self, monitor_id: str) -> list[Any]:
        """The ABI of the applied monitor (once per version, not in each match record)."""
        applied = self.live.snapshot.monitors.get(monitor_id)
        return applied.monitor.abi if applied else []

    def _event(self, match: Match, retracted: bool, linked: bool) -> dict[str, Any]:
        abi = self._abi(match["monitor"]["id"])
        event = retraction_event(match, abi) if retracted else match_event(match, abi)
        if not linked:
            return event
        applied = self.live.snapshot.monitors.get(match["monitor"]["id"])
        return with_links(event, applied.explorer_url if applied else None)

    async def _deliver(
        self,
        batch: MatchBatch,
        matches: list[Match],
        channel: LoadedChannel,
        where: dict[str, Any],
    ) -> None:
        retracted = bool(batch["retracted"])
        sender = self.sender(channel)
        if retracted and not sender.retractable:
            return
        suffix = ":retracted" if retracted else ""
        pending = []
        for match in matches:
            told = self.delivered.get(f"{match['id']}:{channel.id}") is not None
            key = f"{match['id']}:{channel.id}{suffix}"
            # a retraction goes only where the match went, and only once
            if self.delivered.get(key) is None and (told or not retracted):
                pending.append((match, key))
        if not pending:
            return
        if channel.config.paused:  # told no one, and said so
            if not retracted:
                for match, _ in pending:
                    detail = f"channel {channel.config.alias} ({channel.id}) is paused"
                    await self._suppress(match, "channel", detail, 0)
            return
        messages = self._messages(batch["monitorId"], channel, retracted)
        linked = sender.linked
        if sender.batched:
            request_id = f"{batch['id']}:{channel.id}{suffix}"
            events = [self._event(m, retracted, linked) for m, _ in pending]
            await self._send(batch, channel, pending, events, request_id, messages, where)
        else:
            for match, key in pending:
                event = self._event(match, retracted, linked)
                await self._send(batch, channel, [(match, key)], [event], key, messages, where)
        await self._flush()

    async def _send(
        self,
        batch: MatchBatch,
        channel: LoadedChannel,
        sent: list[tuple[Match, str]],
        events: list[dict[str, Any]],
        request_id: str,
        messages: Messages,
        where: dict[str, Any],
    ) -> None:
        """Send one request, after the channel's before hooks; a veto is a suppression."""
        decided = await self.before.apply(self.live.snapshot, channel, request_id, events, messages)
        if isinstance(decided, Vetoed):
            for match, _ in sent:
                detail = f"hook {decided.task_id}: {decided.reason}"
                await self._suppress(match, "hook", detail, 0)
            return
        events, messages = decided
        outcome = await self.sender(channel).send(events, request_id, messages)
        await self._record(batch, channel, sent, request_id, outcome, where)

    async def _flush(self) -> None:
        """Make the delivered keys durable before going on (bounded: never stall the agent)."""
        try:
            await asyncio.wait_for(self.app.producer.flush(), FLUSH_TIMEOUT_S)
        except TimeoutError:
            log.warning("producer flush took over %.0f s; going on", FLUSH_TIMEOUT_S)

    async def _record(
        self,
        batch: MatchBatch,
        channel: LoadedChannel,
        sent: list[tuple[Match, str]],
        request_id: str,
        outcome: Outcome,
        where: dict[str, Any],
    ) -> None:
        for match, key in sent:
            if outcome.ok:
                self.delivered[key] = request_id
            record = delivery_record(match, key, channel, request_id, outcome, self.clock.ms())
            metrics.DELIVERIES.labels(channel.id, channel.config.type, record["status"]).inc()
            metrics.RECORDS.labels(self.deliveries.get_topic_name()).inc()
            await self.deliveries.send(
                key=key.encode(),
                value=self.codec.encode(self.deliveries.get_topic_name(), "Delivery", record),
            )
        if outcome.ok:
            return
        again = {
            **batch,
            "matches": [match for match, _ in sent],
            "channel": channel.id,
            "redelivery": True,
        }
        payload = self.codec.encode(self.batches_name, "MatchBatch", again)
        await self.dead.send(
            dead_letter(
                id=request_id,
                source="notify",
                topic=self.batches_name,
                partition=where["partition"],
                offset=where["offset"],
                key=batch["monitorId"].encode(),
                error=f"{channel.config.type} {channel.config.alias}: {outcome.error}",
                schema="MatchBatch",
                payload=payload,
                clock=self.clock,
            )
        )
