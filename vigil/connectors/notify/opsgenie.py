"""Opsgenie: the Alert API (US or EU instance), one alert per match.

Opsgenie answers a create with 202, "Request will be processed": the alert may still be
refused (an unknown responder, a bad field). A delivery is SENT only when the request's
status (``GET /v2/alerts/requests/{id}``) says the alert was made; a refusal is a failed
delivery with Opsgenie's reason. A request still unprocessed after the checks is retried:
the alias (the match id) makes Opsgenie count a repeat on the same alert, not open another.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from vigil.config.channels import OPSGENIE_DETAILS_LIMIT, OpsgenieConfig
from vigil.connectors.notify.delivery import (
    USER_AGENT,
    ApiChannel,
    ChannelEnv,
    Messages,
    need,
    post_json,
)
from vigil.connectors.notify.incidents import fill
from vigil.connectors.notify.render import render
from vigil.errors import DeliveryError

OPSGENIE_URLS = {"US": "https://api.opsgenie.com", "EU": "https://api.eu.opsgenie.com"}
CHECKS = (0.2, 0.4, 0.8, 1.6, 3.2)  # seconds before each look at a request's status


def within_limit(details: dict[str, str], limit: int = OPSGENIE_DETAILS_LIMIT) -> dict[str, str]:
    """``details`` cut to ``limit`` characters in all (keys and values, as Opsgenie counts):
    keys are kept whole, in order; the value that crosses the limit is cut, later ones go."""
    kept: dict[str, str] = {}
    room = limit
    for key, value in details.items():
        if len(key) >= room:
            break
        kept[key] = value[: room - len(key)]
        room -= len(key) + len(kept[key])
    return kept


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
        "details": within_limit({k: fill(v, event) for k, v in config.details.items()}),
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

    @classmethod
    def preview(
        cls, config: OpsgenieConfig, events: list[dict[str, Any]], messages: Messages
    ) -> dict[str, Any]:
        [event] = events
        return opsgenie_body(config, event, messages)

    async def attempt(
        self, events: list[dict[str, Any]], request_id: str, messages: Messages
    ) -> int:
        key = need(self._credential, self.config.api_key_secret, f"opsgenie {self.alias}")
        [event] = events
        auth = {"Authorization": f"GenieKey {key}"}
        response = await post_json(
            self._client,
            f"{self._api}/v2/alerts",
            opsgenie_body(self.config, event, messages),
            timeout=self.timeout,
            headers=auth,
        )
        try:
            answer = response.json()
        except ValueError:
            answer = None  # no request to follow: the answer's status is all there is
        queued = answer.get("requestId") if isinstance(answer, dict) else None
        if queued:
            await self._confirm(str(queued), auth)
        return response.status_code

    async def _confirm(self, queued: str, auth: dict[str, str]) -> None:
        """Wait until Opsgenie has made the alert of request ``queued``; a DeliveryError
        says it refused (permanent) or had not got to it (retried)."""
        url = f"{self._api}/v2/alerts/requests/{queued}"
        for delay in CHECKS:
            await asyncio.sleep(delay)
            try:
                response = await self._client.get(
                    url, headers={"User-Agent": USER_AGENT, **auth}, timeout=self.timeout
                )
            except httpx.HTTPError:
                continue  # the alert may be made; look again
            if response.status_code in (401, 403):
                raise DeliveryError(
                    f"Opsgenie refused the status check of request {queued}: "
                    f"HTTP {response.status_code}",
                    status=response.status_code,
                    permanent=True,
                )
            if response.status_code != 200:
                continue  # 404: not processed yet; 429 or 5xx: look again
            data = response.json().get("data") or {}
            if data.get("isSuccess", data.get("success")):
                return
            raise DeliveryError(
                f"Opsgenie did not make the alert (request {queued}): "
                f"{data.get('status') or 'no reason given'}",
                status=202,
                permanent=True,
            )
        raise DeliveryError(
            f"Opsgenie had not processed request {queued} after {sum(CHECKS):.0f} s", status=202
        )
