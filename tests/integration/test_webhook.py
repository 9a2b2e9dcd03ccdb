import asyncio
from typing import Any

import httpx
import pytest

from vigil.config.channels import WebhookConfig
from vigil.connectors.notify.webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookChannel,
    verify,
)
from vigil.stack.broker import free_port
from vigil.testing import WebhookReceiver

pytestmark = pytest.mark.integration


def send(receiver_url: str, attempts: int = 4) -> Any:
    channel = WebhookConfig(
        alias="hook", type="webhook", url=receiver_url, max_attempts=attempts, timeout=2
    )

    async def run() -> Any:
        async with httpx.AsyncClient() as client:
            sender = WebhookChannel(channel, "k", client, base_delay=0.01, max_delay=0.05)
            return await sender.send([{"id": "m1"}], "req-1")

    return asyncio.run(run())


def test_retries_server_errors_then_delivers_once() -> None:
    receiver = WebhookReceiver(statuses=[500, 503, 429, 200]).start()
    try:
        outcome = send(receiver.url)
    finally:
        receiver.stop()
    assert (outcome.ok, outcome.attempts, outcome.status) == (True, 4, 200)
    [post] = receiver.received
    assert post.json() == {"events": [{"id": "m1"}]}
    assert verify("k", post.headers[TIMESTAMP_HEADER], post.body, post.headers[SIGNATURE_HEADER])


def test_client_errors_fail_fast_and_exhausted_retries_fail() -> None:
    receiver = WebhookReceiver(statuses=[404]).start()
    try:
        outcome = send(receiver.url)
    finally:
        receiver.stop()
    assert (outcome.ok, outcome.attempts, outcome.status) == (False, 1, 404)
    assert "HTTP 404" in outcome.error
    receiver = WebhookReceiver(statuses=[500] * 10).start()
    try:
        outcome = send(receiver.url, attempts=3)
    finally:
        receiver.stop()
    assert (outcome.ok, outcome.attempts, outcome.status) == (False, 3, 500)
    assert receiver.received == []


def test_an_unreachable_receiver_is_a_failed_delivery() -> None:
    outcome = send(f"http://127.0.0.1:{free_port()}/hook", attempts=2)
    assert (outcome.ok, outcome.attempts, outcome.status) == (False, 2, None)
    assert "ConnectError" in outcome.error
