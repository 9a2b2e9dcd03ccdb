"""Chat channels: Slack incoming webhooks, Discord webhooks, Telegram Bot API sendMessage."""

from __future__ import annotations

from typing import Any

import httpx

from vigil.config.channels import DiscordConfig, SlackConfig, TelegramConfig
from vigil.connectors.notify.delivery import Channel, Messages, need, post_json
from vigil.connectors.notify.render import render
from vigil.errors import DeliveryError


class SlackChannel(Channel):
    """One message per match, rendered as Slack mrkdwn."""

    kind = "slack"

    def __init__(self, config: SlackConfig, url: str | None, client: httpx.AsyncClient) -> None:
        super().__init__(config.alias, config.max_attempts, config.timeout)
        self.config, self._url, self._client = config, url, client

    async def attempt(
        self, events: list[dict[str, Any]], request_id: str, messages: Messages
    ) -> int:
        url = need(self._url, self.config.url_secret, f"slack {self.alias}")
        text = "\n\n".join(render(messages.body, event, "slack") for event in events)
        body = {"text": text, "mrkdwn": True}
        response = await post_json(
            self._client, url, body, timeout=self.timeout, shown_url="the Slack webhook"
        )
        return response.status_code


class DiscordChannel(Channel):
    """One message per match, rendered as Discord markdown (2,000 characters)."""

    kind = "discord"

    def __init__(self, config: DiscordConfig, url: str | None, client: httpx.AsyncClient) -> None:
        super().__init__(config.alias, config.max_attempts, config.timeout)
        self.config, self._url, self._client = config, url, client

    async def attempt(
        self, events: list[dict[str, Any]], request_id: str, messages: Messages
    ) -> int:
        url = need(self._url, self.config.url_secret, f"discord {self.alias}")
        [event] = events
        body: dict[str, Any] = {
            "content": render(messages.body, event, "discord"),
            "allowed_mentions": {"parse": []},  # a value that reads @everyone pings no one
        }
        if self.config.username:
            body["username"] = self.config.username
        response = await post_json(
            self._client, url, body, timeout=self.timeout, shown_url="the Discord webhook"
        )
        return response.status_code


class TelegramChannel(Channel):
    """Bot API sendMessage with MarkdownV2 (escaped as Telegram requires), 4,096 characters."""

    kind = "telegram"

    def __init__(
        self, config: TelegramConfig, token: str | None, api_url: str, client: httpx.AsyncClient
    ) -> None:
        super().__init__(config.alias, config.max_attempts, config.timeout)
        self.config, self._token, self._api, self._client = config, token, api_url, client

    async def attempt(
        self, events: list[dict[str, Any]], request_id: str, messages: Messages
    ) -> int:
        token = need(self._token, self.config.bot_token_secret, f"telegram {self.alias}")
        [event] = events
        body = {
            "chat_id": self.config.chat_id,
            "text": render(messages.body, event, "telegram"),
            "parse_mode": "MarkdownV2",
            "disable_web_page_preview": True,
        }
        response = await post_json(
            self._client,
            f"{self._api.rstrip('/')}/bot{token}/sendMessage",
            body,
            timeout=self.timeout,
            shown_url=f"{self._api}/bot<token>/sendMessage",
        )
        answer = response.json()
        if not answer.get("ok"):
            raise DeliveryError(f"Telegram answered not ok: {answer.get('description')}")
        return response.status_code
