"""Builds the sender for a channel of any type, with its secrets and API base URL."""

from __future__ import annotations

import httpx

from vigil.clock import SYSTEM, Clock
from vigil.config.channels import (
    ChannelConfig,
    DatadogConfig,
    DiscordConfig,
    EmailConfig,
    OpsgenieConfig,
    PagerDutyConfig,
    SlackConfig,
    TelegramConfig,
    WebhookConfig,
)
from vigil.connectors.notify.chat import DiscordChannel, SlackChannel, TelegramChannel
from vigil.connectors.notify.delivery import Channel
from vigil.connectors.notify.email import EmailChannel
from vigil.connectors.notify.incidents import OPSGENIE_URLS, OpsgenieChannel, PagerDutyChannel
from vigil.connectors.notify.metrics import DatadogChannel
from vigil.connectors.notify.webhook import WebhookChannel
from vigil.settings import Settings


def _secret(settings: Settings, name: str | None) -> str | None:
    if not name:
        return None
    value = settings.secrets.get(name)
    return value.get_secret_value() if value is not None else None


def build_channel(
    config: ChannelConfig, settings: Settings, client: httpx.AsyncClient, clock: Clock = SYSTEM
) -> Channel:
    """The sender of ``config``; a missing secret fails its deliveries, naming the secret."""
    if isinstance(config, WebhookConfig):
        return WebhookChannel(config, _secret(settings, config.secret), client, clock=clock)
    if isinstance(config, SlackConfig | DiscordConfig):
        url = config.url or _secret(settings, config.url_secret)
        if isinstance(config, SlackConfig):
            return SlackChannel(config, url, "", client)
        return DiscordChannel(config, url, "", client)
    if isinstance(config, TelegramConfig):
        token = _secret(settings, config.bot_token_secret)
        return TelegramChannel(config, token, settings.telegram_api_url, client)
    if isinstance(config, EmailConfig):
        return EmailChannel(config, _secret(settings, config.password_secret))
    if isinstance(config, DatadogConfig):
        api = settings.datadog_api_url or f"https://api.{config.site}"
        return DatadogChannel(config, _secret(settings, config.api_key_secret), api, client, clock)
    if isinstance(config, PagerDutyConfig):
        key = _secret(settings, config.routing_key_secret)
        return PagerDutyChannel(config, key, settings.pagerduty_api_url, client)
    assert isinstance(config, OpsgenieConfig)
    api = settings.opsgenie_api_url or OPSGENIE_URLS[config.instance]
    return OpsgenieChannel(config, _secret(settings, config.api_key_secret), api, client)
