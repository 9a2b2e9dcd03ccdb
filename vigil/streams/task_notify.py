"""A task run's notifications: ``context.notify`` calls and the notice of a failed run, sent
through the project's applied channels with the notify path's own senders (retries, secrets,
rendering), each one recorded on ``notify.deliveries`` as a match's delivery is.

The hosted service's rules: an unknown alias raises inside the task; every channel that
shares the alias is sent to; a send that fails after its retries does not raise, but a line
in the run's logs says so (the answer's ``warning``). ``send_metric`` needs a Datadog
channel. A delivery's key is ``<run id>:notify:<n>:<channel>`` (``:failure:`` for the
failure notice): a run happens once, so its sends do too.
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
from vigil.config.state import channel_from_record
from vigil.connectors.notify.channels import build_channel
from vigil.connectors.notify.delivery import Messages, Outcome
from vigil.schemas.codec import Codec
from vigil.schemas.records import Delivery
from vigil.settings import Settings
from vigil.streams.config_topics import applied

log = logging.getLogger(__name__)
FAILURE_SUBJECT = "Task {{ task.name }} failed: {{ status }}"
FAILURE_BODY = (
    "Task **{{ task.name }}** (`{{ task.id }}`, version {{ task.version }}) run "
    "`{{ runId }}` ({{ trigger }}) ended **{{ status }}**: {{ errorType }}: {{ errorMessage }}"
)


def applied_channels(settings: Settings, bootstrap: str, codec: Codec) -> dict[str, list[Any]]:
    """The applied channels by alias (several channels may share one)."""
    found: dict[str, list[LoadedChannel]] = {}
    for record in applied(settings, bootstrap, codec, "channel").values():
        channel = channel_from_record(record)
        found.setdefault(channel.config.alias, []).append(channel)
    return found


class RunNotices:
    """Sends for one run; made when the run starts, the channels read at its first send."""

    def __init__(
        self,
        settings: Settings,
        bootstrap: str,
        codec: Codec,
        sink: Any,
        run: dict[str, Any],
        clock: Clock = SYSTEM,
    ) -> None:
        self.settings, self.bootstrap, self.codec, self.sink = settings, bootstrap, codec, sink
        self.run, self.clock = run, clock  # run: runId, taskId, taskName, version, trigger
        # what history says sent it: a task, or (``source`` in run) another of vigil's parts
        self.source = run.get("source") or f"task:{run['taskId']}"
        self.topic = settings.topic("notify.deliveries")
        self._channels: dict[str, list[LoadedChannel]] | None = None
        self.sent = 0

    def channels(self, alias: str) -> list[LoadedChannel]:
        """The alias's channels that are not paused; a ValueError (raised in the task) for
        an unknown alias, or one whose every channel is paused."""
        if self._channels is None:
            self._channels = applied_channels(self.settings, self.bootstrap, self.codec)
        if alias not in self._channels:
            known = ", ".join(sorted(self._channels)) or "none"
            raise ValueError(f"unknown notification channel alias {alias!r}; applied: {known}")
        running = [c for c in self._channels[alias] if not c.config.paused]
        if not running:
            raise ValueError(
                f"notification channel alias {alias!r} is paused (vigil channels resume {alias})"
            )
        return running

    def event(self, **extra: Any) -> dict[str, Any]:
        """What the templates see: the task, the run and ``extra``."""
        task = {
            "id": self.run["taskId"],
            "name": self.run["taskName"],
            "version": self.run["version"],
        }
        return {"type": "TASK", "task": task, "runId": self.run["runId"], **extra}

    def send(self, alias: str, subject: str, message: str) -> str | None:
        """``context.notify.send``: the warning for the run's logs when a send failed."""
        targets = self.channels(alias)
        self.sent += 1
        event = self.event(subject=subject, message=message, trigger=self.run["trigger"])
        messages = Messages(parsed(subject), parsed(message))
        return self._deliver(targets, f"notify:{self.sent}", event, messages)

    def metric(self, alias: str, name: str, value: float) -> str | None:
        """``context.notify.send_metric``: one point on the alias's Datadog channel(s)."""
        targets = self.channels(alias)
        wrong = [c.config.type for c in targets if c.config.type != "datadog"]
        if wrong:
            raise ValueError(f"send_metric needs a datadog channel; {alias!r} is {wrong[0]}")
        self.sent += 1
        event = self.event(metric={"name": name, "value": value})
        return self._deliver(targets, f"notify:{self.sent}", event, None)

    def failed(self, aliases: list[str], ended: dict[str, Any]) -> None:
        """Tell the task's failure channels how the run ended (unknown aliases logged)."""
        for alias in aliases:
            try:
                targets = self.channels(alias)
            except ValueError as exc:
                log.error("task %s: failure channel: %s", self.run["taskId"], exc)
                continue
            event = self.event(
                trigger=self.run["trigger"],
                status=ended["status"],
                errorType=ended.get("errorType") or "",
                errorMessage=ended.get("errorMessage") or "",
            )
            messages = Messages(parsed(FAILURE_SUBJECT), parsed(FAILURE_BODY))
            self._deliver(targets, "failure", event, messages)

    def _deliver(
        self,
        targets: list[LoadedChannel],
        what: str,
        event: dict[str, Any],
        messages: Messages | None,
    ) -> str | None:
        event = {**event, "id": f"{self.run['runId']}:{what}"}  # dedup keys (PagerDuty…)
        outcomes = asyncio.run(self._send_all(targets, what, event, messages))
        problems = []
        for channel, (key, outcome) in zip(targets, outcomes, strict=True):
            self._record(channel, key, outcome)
            if not outcome.ok:
                problems.append(f"{channel.config.type} {channel.config.alias}: {outcome.error}")
        return "; ".join(problems) or None

    async def _send_all(
        self,
        targets: list[LoadedChannel],
        what: str,
        event: dict[str, Any],
        messages: Messages | None,
    ) -> list[tuple[str, Outcome]]:
        async with httpx.AsyncClient() as client:
            done = []
            for channel in targets:
                key = f"{self.run['runId']}:{what}:{channel.id}"
                sender = build_channel(channel.config, self.settings, client, self.clock)
                done.append((key, await sender.send([event], key, messages)))
            return done

    def _record(self, channel: LoadedChannel, key: str, outcome: Outcome) -> None:
        record: Delivery = {
            "id": key,
            "matchId": self.run["runId"],
            "monitorId": self.source,
            "channel": channel.id,
            "channelType": channel.config.type,
            "requestId": key,
            "status": "SENT" if outcome.ok else "FAILED",
            "attempts": outcome.attempts,
            "httpStatus": outcome.status,
            "error": outcome.error,
            "at": self.clock.ms(),
            "latencyMs": outcome.latency_ms,
        }
        metrics.DELIVERIES.labels(channel.id, channel.config.type, record["status"]).inc()
        value = self.codec.encode(self.topic, "Delivery", record)
        self.sink.send(self.topic, key=key.encode(), value=value).get(30)
