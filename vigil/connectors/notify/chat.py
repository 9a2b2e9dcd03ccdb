"""Chat channels: Slack incoming webhooks, Discord webhooks, Telegram Bot API sendMessage."""

from __future__ import annotations

from typing import Any

from vigil.config.channels import DiscordConfig, SlackConfig, TelegramConfig
from vigil.connectors.notify.delivery import ApiChannel, Messages, need, post_json
from vigil.connectors.notify.render import render
from vigil.errors import DeliveryError


class SlackChannel(ApiChannel):
    """One message per match, rendered as Slack mrkdwn; the credential is the webhook URL."""

    kind = "slack"
    config: SlackConfig

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


class DiscordChannel(ApiChannel):
    """One message per match, rendered as Discord markdown (2,000 characters)."""

    kind = "discord"
    config: DiscordConfig

    async def attempt(
        self, events: list[dict[str, Any]], request_id: str, messages: Messages
    ) -> int:
        url = need(self._credential, self.config.url_secret, f"discord {self.alias}")
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


class TelegramChannel(ApiChannel):
    """Bot API sendMessage with MarkdownV2 (escaped as Telegram requires), 4,096 characters."""

    kind = "telegram"
    config: TelegramConfig

    async def attempt(
        self, events: list[dict[str, Any]], request_id: str, messages: Messages
    ) -> int:
        token = need(self._credential, self.config.bot_token_secret, f"telegram {self.alias}")
        [event] = events
        body = {
            "chat_id": self.config.chat_id,
            "text": render(messages.body, event, "telegram"),
            "parse_mode": "MarkdownV2",
            "disable_web_page_preview": True,
        }
        response = await post_json(
            self._client,
            f"{self._api}/bot{token}/sendMessage",
            body,
            timeout=self.timeout,
            shown_url=f"{self._api}/bot<token>/sendMessage",
        )
        answer = response.json()
        if not answer.get("ok"):
            raise DeliveryError(f"Telegram answered not ok: {answer.get('description')}")
        return response.status_code
