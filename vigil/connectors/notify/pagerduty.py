"""PagerDuty: the Events API v2, one trigger per match, deduplicated by the match."""

from __future__ import annotations

from typing import Any

from vigil.config.channels import PagerDutyConfig
from vigil.connectors.notify.delivery import ApiChannel, ChannelEnv, Messages, need, post_json
from vigil.connectors.notify.incidents import fill, links, timestamp
from vigil.connectors.notify.render import render
from vigil.errors import DeliveryError


def pagerduty_body(
    config: PagerDutyConfig, routing_key: str, event: dict[str, Any], messages: Messages
) -> tuple[str, dict[str, Any]]:
    """(path, body) of one Events API v2 request for ``event``."""
    if len(routing_key) != 32:
        raise DeliveryError(
            f"pagerduty {config.alias}: routing key {config.routing_key_secret!r} must be "
            f"32 characters, got {len(routing_key)}",
            permanent=True,
        )
    summary = render(messages.subject, event, "plain", limit=1024)
    details = {"event": render(messages.body, event, "plain", limit=10_000)}
    details.update({k: fill(v, event) for k, v in config.custom_details.items()})
    monitor = event.get("monitor") or {}
    if config.event_type == "change":
        payload: dict[str, Any] = {
            "summary": summary,
            "source": f"vigil/{monitor.get('network', '')}",
            "timestamp": timestamp(event),
            "custom_details": details,
        }
        return "/v2/change/enqueue", {
            "routing_key": routing_key,
            "payload": payload,
            "links": links(event),
        }
    payload = {
        "summary": summary,
        "source": f"vigil/{monitor.get('network', '')}",
        "severity": config.severity,
        "timestamp": timestamp(event),
        "custom_details": details,
    }
    for field, value in (
        ("component", config.component),
        ("group", config.group),
        ("class", config.class_),
    ):
        if value:
            payload[field] = fill(value, event)
    dedup = fill(config.dedup_key, event) if config.dedup_key else str(event.get("id", ""))
    return "/v2/enqueue", {
        "routing_key": routing_key,
        "event_action": config.event_action,
        "dedup_key": dedup[:255],
        "payload": payload,
        "links": links(event),
    }


class PagerDutyChannel(ApiChannel):
    kind = "pagerduty"

    @classmethod
    def build(cls, config: PagerDutyConfig, env: ChannelEnv) -> PagerDutyChannel:
        key = env.secret(config.routing_key_secret)
        return cls(config, key, env.settings.pagerduty_api_url, env.client)

    config: PagerDutyConfig

    @classmethod
    def preview(
        cls, config: PagerDutyConfig, events: list[dict[str, Any]], messages: Messages
    ) -> dict[str, Any]:
        [event] = events
        path, body = pagerduty_body(config, "0" * 32, event, messages)
        return {"path": path, **body, "routing_key": f"<secret {config.routing_key_secret}>"}

    async def attempt(
        self, events: list[dict[str, Any]], request_id: str, messages: Messages
    ) -> int:
        key = need(self._credential, self.config.routing_key_secret, f"pagerduty {self.alias}")
        [event] = events
        path, body = pagerduty_body(self.config, key, event, messages)
        response = await post_json(self._client, self._api + path, body, timeout=self.timeout)
        return response.status_code
