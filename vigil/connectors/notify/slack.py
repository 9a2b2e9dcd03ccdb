"""Slack: an incoming webhook, one message per match in mrkdwn."""

from __future__ import annotations

from typing import Any

from vigil.config.channels import SlackConfig
from vigil.connectors.notify.delivery import ApiChannel, ChannelEnv, Messages, need, post_json
from vigil.connectors.notify.render import render


class SlackChannel(ApiChannel):
    """One message per match, rendered as Slack mrkdwn; the credential is the webhook URL."""

    kind = "slack"
    chat = True
    config: SlackConfig

    @classmethod
    def build(cls, config: SlackConfig, env: ChannelEnv) -> SlackChannel:
        return cls(config, config.url or env.secret(config.url_secret), "", env.client)

    @classmethod
    def preview(
        cls, config: SlackConfig, events: list[dict[str, Any]], messages: Messages
    ) -> dict[str, Any]:
        text = "\n\n".join(render(messages.body, event, "slack") for event in events)
        return {"text": text, "mrkdwn": True}

    async def attempt(
        self, events: list[dict[str, Any]], request_id: str, messages: Messages
    ) -> int:
        url = need(self._credential, self.config.url_secret, f"slack {self.alias}")
        body = self.preview(self.config, events, messages)
        response = await post_json(
            self._client, url, body, timeout=self.timeout, shown_url="the Slack webhook"
        )
        return response.status_code
