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

    async def attempt(
        self, events: list[dict[str, Any]], request_id: str, messages: Messages
    ) -> int:
        url = need(self._credential, self.config.url_secret, f"slack {self.alias}")
        text = "\n\n".join(render(messages.body, event, "slack") for event in events)
        body = {"text": text, "mrkdwn": True}
        response = await post_json(
            self._client, url, body, timeout=self.timeout, shown_url="the Slack webhook"
        )
        return response.status_code
