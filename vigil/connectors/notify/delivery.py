"""What every channel shares: the outcome of a delivery, retries with backoff, HTTP calls.

A channel implements ``attempt`` (one try, raising DeliveryError); ``send`` retries it with
exponential backoff and jitter on network errors, 408/429 (honouring Retry-After) and 5xx,
and fails fast on other 4xx and on errors marked permanent (a missing secret, bad auth).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import httpx

from vigil.clock import SYSTEM, Clock
from vigil.config.channels import MessageTemplate
from vigil.config.message import (
    DEFAULT_BODY,
    DEFAULT_CHAT_BODY,
    DEFAULT_SUBJECT,
    Template,
    parsed,
)
from vigil.errors import DeliveryError
from vigil.settings import Settings

log = logging.getLogger(__name__)
USER_AGENT = "vigil"


@dataclass
class Outcome:
    """What happened to one request: attempts made, last HTTP status, error if it failed."""

    ok: bool
    attempts: int
    status: int | None
    error: str | None
    latency_ms: int


def retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def check(response: httpx.Response) -> int:
    """The status of a 2xx response; a DeliveryError saying whether to retry otherwise."""
    if response.status_code < 300:
        return response.status_code
    permanent = 400 <= response.status_code < 500 and response.status_code not in (408, 429)
    raise DeliveryError(
        f"HTTP {response.status_code}: {response.text[:200]}",
        status=response.status_code,
        permanent=permanent,
        retry_after=retry_after(response),
    )


async def post_json(
    client: httpx.AsyncClient,
    url: str,
    body: Any,
    *,
    timeout: float,
    headers: dict[str, str] | None = None,
    shown_url: str | None = None,
) -> httpx.Response:
    """POST JSON; transport errors become retryable DeliveryErrors that never print ``url``
    when it holds a credential (``shown_url`` is what errors say instead)."""
    try:
        response = await client.post(
            url,
            json=body,
            headers={"User-Agent": USER_AGENT, **(headers or {})},
            timeout=timeout,
        )
    except httpx.HTTPError as exc:
        where = shown_url or url
        raise DeliveryError(f"{type(exc).__name__} calling {where}") from None
    check(response)
    return response


@dataclass(frozen=True)
class Messages:
    """The subject and body templates in force for one delivery."""

    subject: Template
    body: Template

    @classmethod
    def choose(
        cls, monitor: MessageTemplate | None, channel: MessageTemplate | None, chat: bool
    ) -> Messages:
        """The monitor's message wins over the channel's template, which wins over the default."""
        subject = (monitor and monitor.subject) or (channel and channel.subject) or DEFAULT_SUBJECT
        default = DEFAULT_CHAT_BODY if chat else DEFAULT_BODY
        body = (monitor and monitor.body) or (channel and channel.body) or default
        return cls(parsed(subject), parsed(body))


@dataclass(frozen=True)
class ChannelEnv:
    """What a channel is built with besides its config: secrets and API bases (settings),
    the HTTP client (a transport seam for tests) and the clock."""

    settings: Settings
    client: httpx.AsyncClient
    clock: Clock = SYSTEM

    def secret(self, name: str | None) -> str | None:
        """The value of the secret ``name``; None when unnamed or not set."""
        if not name:
            return None
        value = self.settings.secrets.get(name)
        return value.get_secret_value() if value is not None else None


class Channel:
    """Base of every channel: ``attempt`` once, ``send`` with retries.

    A channel declares what it can do, so the notifier needs no channel-type names:
    ``batched`` (one request carries all events of a block), ``chat`` (a chat message: the
    short default body), ``retractable`` (a follow-up can take a match back; a count
    cannot) and ``linked`` (its events carry explorer links).
    """

    kind = "channel"
    batched = False
    chat = False
    retractable = True
    linked = True

    @classmethod
    def build(cls, config: Any, env: ChannelEnv) -> Channel:
        """The channel of ``config``; a missing secret fails its deliveries, naming it."""
        raise NotImplementedError

    @classmethod
    def preview(cls, config: Any, events: list[dict[str, Any]], messages: Messages) -> Any:
        """What this channel would send for ``events`` (credentials left out), for
        ``vigil monitors preview``: the same code as a delivery's."""
        raise NotImplementedError

    def __init__(
        self,
        alias: str,
        max_attempts: int,
        timeout: float,
        *,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
    ) -> None:
        self.alias, self.max_attempts, self.timeout = alias, max_attempts, timeout
        self._base, self._max = base_delay, max_delay

    async def attempt(
        self, events: list[dict[str, Any]], request_id: str, messages: Messages
    ) -> int | None:
        """One try; returns the HTTP status (None where there is none, as for SMTP)."""
        raise NotImplementedError

    async def send(
        self,
        events: list[dict[str, Any]],
        request_id: str,
        messages: Messages | None = None,
    ) -> Outcome:
        """Deliver with retries; never raises: the outcome says what happened."""
        chosen = messages or Messages.choose(None, None, chat=True)
        started = time.monotonic()
        error: DeliveryError | None = None
        attempt = 0
        for attempt in range(1, self.max_attempts + 1):
            try:
                status = await self.attempt(events, request_id, chosen)
                return Outcome(True, attempt, status, None, _ms(started))
            except DeliveryError as exc:
                error = exc
            except Exception as exc:  # a channel bug must not stop the worker
                error = DeliveryError(f"{type(exc).__name__}: {exc}", permanent=True)
            log.warning(
                "%s %s request %s attempt %d/%d: %s",
                self.kind,
                self.alias,
                request_id,
                attempt,
                self.max_attempts,
                error,
            )
            if error.permanent or attempt == self.max_attempts:
                break
            delay = min(self._max, self._base * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
            if error.retry_after is not None:
                delay = min(error.retry_after, 300.0)
            await asyncio.sleep(delay)
        assert error is not None
        return Outcome(False, attempt, error.status, str(error), _ms(started))


class ApiChannel(Channel):
    """A channel that calls one HTTP API with one credential (a URL, token or key)."""

    def __init__(
        self,
        config: Any,
        credential: str | None,
        api_url: str,
        client: httpx.AsyncClient,
        clock: Clock = SYSTEM,
    ) -> None:
        super().__init__(config.alias, config.max_attempts, config.timeout)
        self.config, self._credential, self._api, self._client = (
            config,
            credential,
            api_url.rstrip("/"),
            client,
        )
        self.clock = clock


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def need(secret: str | None, name: str | None, what: str) -> str:
    """The value of a channel's secret, or a permanent error naming the missing secret."""
    if secret is None:
        raise DeliveryError(
            f"{what}: secret {name!r} is not set; add it to the worker's VIGIL_SECRETS",
            permanent=True,
        )
    return secret
