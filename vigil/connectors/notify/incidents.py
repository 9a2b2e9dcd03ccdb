"""Incident channels: PagerDuty Events API v2 and the Opsgenie Alert API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from vigil.config.channels import OpsgenieConfig, PagerDutyConfig
from vigil.config.message import PLACEHOLDER, resolve
from vigil.connectors.notify.delivery import ApiChannel, Messages, need, post_json
from vigil.connectors.notify.render import as_text, render
from vigil.errors import DeliveryError

OPSGENIE_URLS = {"US": "https://api.opsgenie.com", "EU": "https://api.eu.opsgenie.com"}


def _fill(text: str, event: dict[str, Any]) -> str:
    """``{{ path }}`` in a plain field (dedup key, alias, entity, details)."""
    return PLACEHOLDER.sub(lambda m: as_text(resolve(event, m.group(1))), text)


def _timestamp(event: dict[str, Any]) -> str:
    seconds = int(event.get("timestamp") or 0)
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def _links(event: dict[str, Any]) -> list[dict[str, str]]:
    link = (event.get("transaction") or {}).get("link")
    return [{"href": link, "text": "Transaction"}] if link else []


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
    details.update({k: _fill(v, event) for k, v in config.custom_details.items()})
    monitor = event.get("monitor") or {}
    if config.event_type == "change":
        payload: dict[str, Any] = {
            "summary": summary,
            "source": f"vigil/{monitor.get('network', '')}",
            "timestamp": _timestamp(event),
            "custom_details": details,
        }
        return "/v2/change/enqueue", {
            "routing_key": routing_key,
            "payload": payload,
            "links": _links(event),
        }
    payload = {
        "summary": summary,
        "source": f"vigil/{monitor.get('network', '')}",
        "severity": config.severity,
        "timestamp": _timestamp(event),
        "custom_details": details,
    }
    for field, value in (
        ("component", config.component),
        ("group", config.group),
        ("class", config.class_),
    ):
        if value:
            payload[field] = _fill(value, event)
    dedup = _fill(config.dedup_key, event) if config.dedup_key else str(event.get("id", ""))
    return "/v2/enqueue", {
        "routing_key": routing_key,
        "event_action": config.event_action,
        "dedup_key": dedup[:255],
        "payload": payload,
        "links": _links(event),
    }


class PagerDutyChannel(ApiChannel):
    kind = "pagerduty"
    config: PagerDutyConfig

    async def attempt(
        self, events: list[dict[str, Any]], request_id: str, messages: Messages
    ) -> int:
        key = need(self._credential, self.config.routing_key_secret, f"pagerduty {self.alias}")
        [event] = events
        path, body = pagerduty_body(self.config, key, event, messages)
        response = await post_json(self._client, self._api + path, body, timeout=self.timeout)
        return response.status_code


def opsgenie_body(
    config: OpsgenieConfig, event: dict[str, Any], messages: Messages
) -> dict[str, Any]:
    """The create-alert body for ``event`` (field limits of the Alert API)."""

    def people(items: list[Any]) -> list[dict[str, str]]:
        return [item.model_dump(exclude_none=True) for item in items]

    alias = _fill(config.alert_alias, event) if config.alert_alias else str(event.get("id", ""))
    body: dict[str, Any] = {
        "message": render(messages.subject, event, "plain", limit=130),
        "alias": alias[:512],
        "description": render(messages.body, event, "plain", limit=15_000),
        "priority": config.priority,
        "source": "vigil",
    }
    optional: dict[str, Any] = {
        "responders": people(config.responders),
        "visibleTo": people(config.visible_to),
        "actions": list(config.actions),
        "tags": list(config.tags),
        "details": {k: _fill(v, event)[:8000] for k, v in config.details.items()},
        "entity": _fill(config.entity, event)[:512] if config.entity else None,
        "note": config.note,
    }
    body.update({k: v for k, v in optional.items() if v})
    return body


class OpsgenieChannel(ApiChannel):
    kind = "opsgenie"
    config: OpsgenieConfig

    async def attempt(
        self, events: list[dict[str, Any]], request_id: str, messages: Messages
    ) -> int:
        key = need(self._credential, self.config.api_key_secret, f"opsgenie {self.alias}")
        [event] = events
        response = await post_json(
            self._client,
            f"{self._api}/v2/alerts",
            opsgenie_body(self.config, event, messages),
            timeout=self.timeout,
            headers={"Authorization": f"GenieKey {key}"},
        )
        return response.status_code
