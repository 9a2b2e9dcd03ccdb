"""A channel's secret kept only in the sealed store: `vigil up` checks it is there, the
worker opens it with the operator's key, and the webhook is signed with it."""

from pathlib import Path

import pytest

from tests.e2e.stack import LARGE, SECRET, Running, stack_settings, write_project
from vigil.connectors.notify.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from vigil.connectors.tasks.secrets import new_key, parse_key, seal
from vigil.demo.chain import Anvil, Token
from vigil.errors import ConfigError
from vigil.stack.supervisor import Stack
from vigil.streams.kafka import ensure_topics
from vigil.streams.secrets import write
from vigil.testing import WebhookReceiver, wait_for

pytestmark = pytest.mark.e2e


def test_a_webhook_is_signed_with_a_secret_from_the_store(
    tmp_path: Path, kafka: str, anvil: Anvil, prefix: str
) -> None:
    token = Token(anvil.url)
    start = int(anvil.rpc("eth_blockNumber"), 16) + 1
    receiver = WebhookReceiver().start()
    write_project(tmp_path / "project", anvil, token, receiver, start)
    key = new_key()
    settings = stack_settings(tmp_path, kafka, prefix, secrets_key=key)
    settings = settings.model_copy(update={"secrets": {}})  # the HMAC key is not in the env
    ensure_topics(settings, kafka)
    missing = Stack(settings, say=print)
    with pytest.raises(ConfigError, match="secret 'hook' is not set"):
        missing.start()  # checked against the store, after the broker is up
    write(settings, kafka, "hook", seal(parse_key(key), "hook", SECRET, 0))
    stack = Stack(settings, say=print)
    stack.start()
    try:
        running = Running(stack, token, receiver, anvil)
        running.mine_transfers(LARGE)
        wait_for(lambda: stack.check() or receiver.received, 60, "the signed POST")
        [post] = receiver.received
        headers = post.headers
        assert verify(SECRET, headers[TIMESTAMP_HEADER], post.body, headers[SIGNATURE_HEADER])
    finally:
        stack.stop()
        receiver.stop()
