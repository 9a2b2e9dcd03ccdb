"""Shared by the end-to-end tests: a running stack on anvil with a webhook receiver."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.stack import Running, stack_settings, write_project
from vigil.demo.chain import Anvil, Token
from vigil.stack.supervisor import Stack
from vigil.testing import WebhookReceiver


@pytest.fixture
def running(
    request: pytest.FixtureRequest, tmp_path: Path, kafka: str, anvil: Anvil, prefix: str
) -> Iterator[Running]:
    token = Token(anvil.url)
    start = int(anvil.rpc("eth_blockNumber"), 16) + 1
    receiver = WebhookReceiver().start()
    confirm_blocks = getattr(request, "param", 0)  # the monitor's confirm_blocks
    write_project(tmp_path / "project", anvil, token, receiver, start, confirm_blocks)
    settings = stack_settings(tmp_path, kafka, prefix)
    stack = Stack(settings, say=print)
    stack.start()
    children = list(stack.children.values())
    try:
        yield Running(stack, token, receiver, anvil)
    finally:
        stack.stop()
        receiver.stop()
    assert all(child.poll() is not None for child in children), "a child outlived the stack"
