"""Custom webhook channel: POST {"events": [...]} signed with HMAC-SHA256, with retries."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import httpx
import orjson

from vigil.clock import SYSTEM, Clock
from vigil.config.channels import WebhookConfig
from vigil.connectors.notify.delivery import (
    USER_AGENT,
    Channel,
    ChannelEnv,
    Messages,
    Outcome,
    check,
)
from vigil.errors import DeliveryError

__all__ = ["Outcome", "WebhookChannel", "sign", "verify"]

SIGNATURE_HEADER = "X-Vigil-Signature"
TIMESTAMP_HEADER = "X-Vigil-Timestamp"
REQUEST_HEADER = "X-Vigil-Request-Id"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256(secret, "<timestamp>." + body); receivers recompute it."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookChannel(Channel):
    """Sends the events of a block in one request; the request id lets receivers drop a repeat."""

    kind = "webhook"
    batched = True
    linked = False  # receivers get the event schema exactly as documented

    @classmethod
    def build(cls, config: WebhookConfig, env: ChannelEnv) -> WebhookChannel:
        return cls(config, env.secret(config.secret), env.client, clock=env.clock)

    def __init__(
        self,
        config: WebhookConfig,
        secret: str | None,
        client: httpx.AsyncClient,
        *,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
        clock: Clock = SYSTEM,
    ) -> None:
        super().__init__(
            config.alias,
            config.max_attempts,
            config.timeout,
            base_delay=base_delay,
            max_delay=max_delay,
        )
        self.config, self._secret, self._client, self.clock = config, secret, client, clock

    @classmethod
    def preview(
        cls, config: WebhookConfig, events: list[dict[str, Any]], messages: Messages
    ) -> dict[str, Any]:
        return {"events": events}  # signed with the secret when sent

    async def attempt(
        self, events: list[dict[str, Any]], request_id: str, messages: Messages
    ) -> int:
        if self.config.secret and self._secret is None:
            raise DeliveryError(
                f"secret {self.config.secret!r} is not set; add it to the worker's VIGIL_SECRETS",
                permanent=True,
            )
        body = orjson.dumps(self.preview(self.config, events, messages))
        timestamp = str(int(self.clock.time()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            REQUEST_HEADER: request_id,
            "User-Agent": USER_AGENT,
        }
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = sign(self._secret, timestamp, body)
        try:
            response = await self._client.post(
                self.config.url, content=body, headers=headers, timeout=self.timeout
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
        return check(response)
