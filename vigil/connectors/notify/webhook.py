"""Custom webhook channel: POST {"events": [...]} signed with HMAC-SHA256, with retries."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from vigil.config.models import ChannelConfig
from vigil.errors import DeliveryError

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Vigil-Signature"
TIMESTAMP_HEADER = "X-Vigil-Timestamp"
REQUEST_HEADER = "X-Vigil-Request-Id"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256(secret, "<timestamp>." + body); receivers recompute it."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


@dataclass
class Outcome:
    """What happened to one request: attempts made, last HTTP status, error if it failed."""

    ok: bool
    attempts: int
    status: int | None
    error: str | None
    latency_ms: int


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class WebhookChannel:
    """Sends batches to one webhook; the request id lets receivers drop a repeat."""

    def __init__(
        self,
        channel: ChannelConfig,
        secret: str | None,
        client: httpx.AsyncClient,
        *,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
    ) -> None:
        self.channel, self._secret, self._client = channel, secret, client
        self._base, self._max = base_delay, max_delay

    async def _post_once(self, body: bytes, request_id: str) -> int:
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            REQUEST_HEADER: request_id,
            "User-Agent": "vigil",
        }
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = sign(self._secret, timestamp, body)
        try:
            response = await self._client.post(
                self.channel.url, content=body, headers=headers, timeout=self.channel.timeout
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code < 300:
            return response.status_code
        permanent = 400 <= response.status_code < 500 and response.status_code not in (408, 429)
        raise DeliveryError(
            f"HTTP {response.status_code}: {response.text[:200]}",
            status=response.status_code,
            permanent=permanent,
            retry_after=_retry_after(response),
        )

    async def send(self, events: list[dict[str, Any]], request_id: str) -> Outcome:
        """POST with exponential backoff and jitter; 429 honours Retry-After; 4xx fail fast."""
        body = orjson.dumps({"events": events})
        started = time.monotonic()
        error: DeliveryError | None = None
        for attempt in range(1, self.channel.max_attempts + 1):
            try:
                status = await self._post_once(body, request_id)
                return Outcome(
                    True, attempt, status, None, int((time.monotonic() - started) * 1000)
                )
            except DeliveryError as exc:
                error = exc
                log.warning(
                    "webhook %s request %s attempt %d/%d: %s",
                    self.channel.alias,
                    request_id,
                    attempt,
                    self.channel.max_attempts,
                    exc,
                )
                if exc.permanent or attempt == self.channel.max_attempts:
                    break
                delay = min(self._max, self._base * 2 ** (attempt - 1))
                delay = (
                    exc.retry_after
                    if exc.retry_after is not None
                    else delay * random.uniform(0.5, 1.0)
                )
                await asyncio.sleep(delay)
        assert error is not None
        return Outcome(
            False, attempt, error.status, str(error), int((time.monotonic() - started) * 1000)
        )
