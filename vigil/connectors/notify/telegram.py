"""Telegram: the Bot API's sendMessage in MarkdownV2, one message per match."""

from __future__ import annotations

import logging
from typing import Any

from vigil.config.channels import TelegramConfig
from vigil.config.message import DEFAULT_CHAT_BODY, parsed
from vigil.connectors.notify.delivery import ApiChannel, ChannelEnv, Messages, need, post_json
from vigil.connectors.notify.render import render
from vigil.errors import DeliveryError

log = logging.getLogger(__name__)


class TelegramChannel(ApiChannel):
    """Bot API sendMessage with MarkdownV2 (escaped as Telegram requires), 4,096 characters."""

    kind = "telegram"
    chat = True
    config: TelegramConfig

    @classmethod
    def build(cls, config: TelegramConfig, env: ChannelEnv) -> TelegramChannel:
        token = env.secret(config.bot_token_secret)
        return cls(config, token, env.settings.telegram_api_url, env.client)

    @classmethod
    def preview(
        cls, config: TelegramConfig, events: list[dict[str, Any]], messages: Messages
    ) -> dict[str, Any]:
        [event] = events
        text = render(messages.body, event, "telegram")
        if not text.strip():  # Telegram refuses it ("message text is empty")
            log.warning(
                "telegram %s: the message rendered empty (its values are missing); "
                "sending the default message instead",
                config.alias,
            )
            text = render(parsed(DEFAULT_CHAT_BODY), event, "telegram")
        return {
            "chat_id": config.chat_id,
            "text": text,
            "parse_mode": "MarkdownV2",
            "link_preview_options": {"is_disabled": True},  # Bot API 7.0
        }

    async def attempt(
        self, events: list[dict[str, Any]], request_id: str, messages: Messages
    ) -> int:
        token = need(self._credential, self.config.bot_token_secret, f"telegram {self.alias}")
        body = self.preview(self.config, events, messages)
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
