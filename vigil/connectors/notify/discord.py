"""Discord: a webhook, one message per match in Discord markdown (2,000 characters)."""

from __future__ import annotations

from typing import Any

from vigil.config.channels import DiscordConfig
from vigil.connectors.notify.delivery import ApiChannel, ChannelEnv, Messages, need, post_json
from vigil.connectors.notify.render import render


class DiscordChannel(ApiChannel):
    """One message per match, rendered as Discord markdown (2,000 characters)."""

    kind = "discord"
    chat = True
    config: DiscordConfig

    @classmethod
    def build(cls, config: DiscordConfig, env: ChannelEnv) -> DiscordChannel:
        return cls(config, config.url or env.secret(config.url_secret), "", env.client)

    @classmethod
    def preview(
        cls, config: DiscordConfig, events: list[dict[str, Any]], messages: Messages
    ) -> dict[str, Any]:
        [event] = events
        body: dict[str, Any] = {
            "content": render(messages.body, event, "discord"),
            "allowed_mentions": {"parse": []},  # a value that reads @everyone pings no one
        }
        if config.username:
            body["username"] = config.username
        return body

    async def attempt(
        self, events: list[dict[str, Any]], request_id: str, messages: Messages
    ) -> int:
        url = need(self._credential, self.config.url_secret, f"discord {self.alias}")
        body = self.preview(self.config, events, messages)
        response = await post_json(
            self._client, url, body, timeout=self.timeout, shown_url="the Discord webhook"
        )
        return response.status_code
