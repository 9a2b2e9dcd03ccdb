"""Shared by the end-to-end tests: a running stack on anvil with a webhook receiver."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.stack import SECRET, Running, write_project
from vigil.demo.chain import Anvil, Token
from vigil.settings import load_settings
from vigil.stack.broker import free_port
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
    settings = load_settings(
        data_dir=tmp_path / "data",
        project_dir=tmp_path / "project",
        kafka_bootstrap=kafka,
        topic_prefix=prefix,
        group_prefix=prefix,
        api_bind=f"127.0.0.1:{free_port()}",
        worker_metrics_bind=f"127.0.0.1:{free_port()}",
        ingest_metrics_bind=f"127.0.0.1:{free_port()}",
        secrets={"hook": SECRET},
    )
    stack = Stack(settings, say=print)
    stack.start()
    children = list(stack.children.values())
    try:
        yield Running(stack, token, receiver, anvil)
    finally:
        stack.stop()
        receiver.stop()
    assert all(child.poll() is not None for child in children), "a child outlived the stack"
