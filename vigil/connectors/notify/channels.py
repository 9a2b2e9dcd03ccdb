"""The channel registry: each config type's channel class, and the one way to build one."""

from __future__ import annotations

import httpx

from vigil.clock import SYSTEM, Clock
from vigil.config.channels import ChannelConfig
from vigil.connectors.notify.datadog import DatadogChannel
from vigil.connectors.notify.delivery import Channel, ChannelEnv
from vigil.connectors.notify.discord import DiscordChannel
from vigil.connectors.notify.email import EmailChannel
from vigil.connectors.notify.opsgenie import OpsgenieChannel
from vigil.connectors.notify.pagerduty import PagerDutyChannel
from vigil.connectors.notify.slack import SlackChannel
from vigil.connectors.notify.telegram import TelegramChannel
from vigil.connectors.notify.webhook import WebhookChannel
from vigil.settings import Settings

CHANNELS: dict[str, type[Channel]] = {
    cls.kind: cls
    for cls in (
        WebhookChannel,
        SlackChannel,
        DiscordChannel,
        TelegramChannel,
        EmailChannel,
        DatadogChannel,
        PagerDutyChannel,
        OpsgenieChannel,
    )
}


def channel_class(kind: str) -> type[Channel]:
    """The channel class of config type ``kind``."""
    return CHANNELS[kind]


def build_channel(
    config: ChannelConfig, settings: Settings, client: httpx.AsyncClient, clock: Clock = SYSTEM
) -> Channel:
    """The sender of ``config``; a missing secret fails its deliveries, naming the secret."""
    return CHANNELS[config.type].build(config, ChannelEnv(settings, client, clock))
