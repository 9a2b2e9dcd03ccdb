"""Datadog: match counts as a metric series (v1 or v2 API), one request per block."""

from __future__ import annotations

from collections import Counter
from typing import Any

from vigil.config.channels import DatadogConfig
from vigil.connectors.notify.delivery import ApiChannel, ChannelEnv, Messages, need, post_json


def series(config: DatadogConfig, events: list[dict[str, Any]], now: int) -> dict[str, Any]:
    """The series body of Datadog's v1 or v2 API: one point per (network, monitor) seen."""
    counts = Counter((e["monitor"]["network"], e["monitor"]["name"]) for e in events)
    metric = f"{config.metric_prefix}sentinel"
    out = []
    for (network, monitor), count in sorted(counts.items()):
        tags = [f"network:{network}", f"monitor:{monitor}"]
        if config.api_version == "v2":
            out.append(
                {
                    "metric": metric,
                    "type": 1,  # COUNT
                    "points": [{"timestamp": now, "value": count}],
                    "tags": tags,
                }
            )
        else:
            out.append({"metric": metric, "type": "count", "points": [[now, count]], "tags": tags})
    return {"series": out}


def metric_series(config: DatadogConfig, event: dict[str, Any], now: int) -> dict[str, Any]:
    """A task's ``send_metric``: one gauge point of its own name, tagged with the task."""
    name, value = event["metric"]["name"], event["metric"]["value"]
    tags = [f"task:{event['task']['id']}"]
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

    async def attempt(
        self, events: list[dict[str, Any]], request_id: str, messages: Messages
    ) -> int:
        key = need(self._credential, self.config.api_key_secret, f"datadog {self.alias}")
        now = max(int(e.get("timestamp") or 0) for e in events) or int(self.clock.time())
        if "metric" in events[0]:
            body = metric_series(self.config, events[0], now)
        else:
            body = series(self.config, events, now)
        response = await post_json(
            self._client,
            f"{self._api}/api/{self.config.api_version}/series",
            body,
            timeout=self.timeout,
            headers={"DD-API-KEY": key},
        )
        return response.status_code
