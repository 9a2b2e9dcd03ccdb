"""Opsgenie: the Alert API (US or EU instance), one alert per match."""

from __future__ import annotations

from typing import Any

from vigil.config.channels import OpsgenieConfig
from vigil.connectors.notify.delivery import ApiChannel, ChannelEnv, Messages, need, post_json
from vigil.connectors.notify.incidents import fill
from vigil.connectors.notify.render import render

OPSGENIE_URLS = {"US": "https://api.opsgenie.com", "EU": "https://api.eu.opsgenie.com"}


def opsgenie_body(
    config: OpsgenieConfig, event: dict[str, Any], messages: Messages
) -> dict[str, Any]:
    """The create-alert body for ``event`` (field limits of the Alert API)."""

    def people(items: list[Any]) -> list[dict[str, str]]:
        return [item.model_dump(exclude_none=True) for item in items]

    alias = fill(config.alert_alias, event) if config.alert_alias else str(event.get("id", ""))
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
        "details": {k: fill(v, event)[:8000] for k, v in config.details.items()},
        "entity": fill(config.entity, event)[:512] if config.entity else None,
        "note": config.note,
    }
    body.update({k: v for k, v in optional.items() if v})
    return body


class OpsgenieChannel(ApiChannel):
    kind = "opsgenie"

    @classmethod
    def build(cls, config: OpsgenieConfig, env: ChannelEnv) -> OpsgenieChannel:
        api = env.settings.opsgenie_api_url or OPSGENIE_URLS[config.instance]
        return cls(config, env.secret(config.api_key_secret), api, env.client)

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
