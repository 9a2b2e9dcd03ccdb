"""Datadog: match counts as a metric series (v1 or v2 API), one request per block.

Datadog keeps points up to an hour old and ten minutes ahead, and drops the rest while
still answering 202; a point is therefore stamped with the time it is sent, not the
block's (a replay, a backlog or a retry would otherwise be counted nowhere). For one
metric, timestamp and tag set Datadog keeps the last point: a second request in the same
second for the same monitor sends the second's running total, so no count is lost and a
retry of a request Datadog did take counts once.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import Any

from vigil.config.channels import DatadogConfig
from vigil.connectors.notify.delivery import ApiChannel, ChannelEnv, Messages, need, post_json

_NOT_IN_TAG = re.compile(r"[^\w\-:./]")


def tag(key: str, value: Any) -> str:
    """``key:value`` as Datadog stores it (lowercase; characters other than letters, digits,
    ``_-:./`` become ``_``, runs of ``_`` one; 200 characters), so vigil sends what Datadog
    will show and names that differ only in case or punctuation are seen to merge."""
    text = _NOT_IN_TAG.sub("_", f"{key}:{value}".lower())
    return re.sub(r"__+", "_", text)[:200].rstrip("_")


def monitor_tags(monitor: dict[str, Any]) -> tuple[str, ...]:
    """The tags of one monitor's points: its network, its name (as ``monitor`` and as the
    ``sentinel`` tag Defender's dashboards read) and its id, which keeps two monitors whose
    names normalise alike apart."""
    return (
        tag("network", monitor["network"]),
        tag("monitor", monitor["name"]),
        tag("sentinel", monitor["name"]),
        tag("monitor_id", monitor["id"]),
    )


def series(config: DatadogConfig, counts: dict[tuple[str, ...], int], now: int) -> dict[str, Any]:
    """The series body of Datadog's v1 or v2 API: one COUNT point per tag set."""
    metric = f"{config.metric_prefix}sentinel"
    out = []
    for tags, count in sorted(counts.items()):
        if config.api_version == "v2":
            point: Any = {"timestamp": now, "value": count}
            out.append({"metric": metric, "type": 1, "points": [point], "tags": list(tags)})
        else:
            out.append(
                {"metric": metric, "type": "count", "points": [[now, count]], "tags": list(tags)}
            )
    return {"series": out}


def metric_series(config: DatadogConfig, event: dict[str, Any], now: int) -> dict[str, Any]:
    """A task's ``send_metric``: one gauge point of its own name, tagged with the task."""
    name, value = event["metric"]["name"], event["metric"]["value"]
    tags = [tag("task", event["task"]["id"])]
    if config.api_version == "v2":
        point = {"timestamp": now, "value": value}
        return {"series": [{"metric": name, "type": 3, "points": [point], "tags": tags}]}
    return {"series": [{"metric": name, "type": "gauge", "points": [[now, value]], "tags": tags}]}


class DatadogChannel(ApiChannel):
    """Counts the matches of a block; a block without matches sends nothing (no zeros)."""

    kind = "datadog"
    batched = True
    retractable = False  # a count cannot be taken back

    @classmethod
    def build(cls, config: DatadogConfig, env: ChannelEnv) -> DatadogChannel:
        api = env.settings.datadog_api_url or f"https://api.{config.site}"
        return cls(config, env.secret(config.api_key_secret), api, env.client, env.clock)

    config: DatadogConfig

    @classmethod
    def preview(
        cls, config: DatadogConfig, events: list[dict[str, Any]], messages: Messages
    ) -> dict[str, Any]:
        counts = Counter(monitor_tags(e["monitor"]) for e in events)
        return series(config, dict(counts), int(time.time()))

    _second: int = -1
    _counted: dict[tuple[str, ...], int]  # what Datadog holds for _second, per tag set

    async def attempt(
        self, events: list[dict[str, Any]], request_id: str, messages: Messages
    ) -> int:
        key = need(self._credential, self.config.api_key_secret, f"datadog {self.alias}")
        now = int(self.clock.time())
        if "metric" in events[0]:
            body = metric_series(self.config, events[0], now)
        else:
            if now != self._second:
                self._second, self._counted = now, {}
            these = Counter(monitor_tags(e["monitor"]) for e in events)
            totals = {tags: self._counted.get(tags, 0) + n for tags, n in these.items()}
            body = series(self.config, totals, now)
        response = await post_json(
            self._client,
            f"{self._api}/api/{self.config.api_version}/series",
            body,
            timeout=self.timeout,
            headers={"DD-API-KEY": key},
        )
        if "metric" not in events[0] and self._second == now:
            self._counted.update(totals)
        return response.status_code
