"""Confirmation levels and blocks the node does not have yet."""

import threading
from typing import Any

import pytest

from tests.helpers import linked_chain
from tests.rpc_server import JsonRpcServer
from vigil.config.models import NetworkConfig
from vigil.schemas.codec import Codec
from vigil.schemas.registry import SchemaStore
from vigil.settings import Settings
from vigil.streams.evm.ingester import Ingester
from vigil.streams.kafka import BatchProducer, ensure_topics
from vigil.testing import wait_for

pytestmark = pytest.mark.integration


def run(settings: Settings, kafka: str, server: JsonRpcServer, **network: Any) -> Ingester:
    ensure_topics(settings, kafka)
    config = NetworkConfig(
        chain_id=1, rpc_urls=[server.url], start_block=18_000_000, poll_interval=0.05, **network
    )
    ingester = Ingester(
        settings, "mainnet", config, BatchProducer(settings, kafka), Codec(SchemaStore()), kafka
    )
    threading.Thread(target=ingester.run, daemon=True).start()
    return ingester


@pytest.mark.parametrize(
    ("level", "tags"),
    [(2, {}), ("safe", {"safe": 18_000_002}), ("finalized", {"finalized": 18_000_002})],
)
def test_only_confirmed_blocks_are_emitted(
    settings: Settings, kafka: str, level: Any, tags: dict[str, int]
) -> None:
    server = JsonRpcServer(blocks=linked_chain(5), tags=tags).start()  # head 18,000,004
    ingester = run(settings, kafka, server, confirmations=level)
    try:
        wait_for(lambda: ingester.emitted == 3, 30, "blocks up to 18,000,002")
        assert ingester.window[-1][0] == 18_000_002
        server.tags = {k: v + 2 for k, v in tags.items()}
        server.blocks.update(linked_chain(7))  # the head moves on to 18,000,006
        wait_for(lambda: ingester.emitted == 5, 30, "two more once they are confirmed")
    finally:
        ingester.stopping.set()
        server.stop()


def test_a_block_the_node_lacks_is_retried_never_skipped(settings: Settings, kafka: str) -> None:
    blocks = linked_chain(3)
    missing = blocks.pop(18_000_001)
    server = JsonRpcServer(blocks=blocks).start()  # the head says 18,000,002 exists
    ingester = run(settings, kafka, server)
    try:
        wait_for(lambda: ingester.emitted == 1, 30, "the first block")
        wait_for(lambda: server.requests.count("eth_getBlockByNumber") > 4, 30, "retries")
        assert ingester.emitted == 1  # it waited: nothing after the gap was emitted
        server.blocks[18_000_001] = missing
        wait_for(lambda: ingester.emitted == 3, 30, "the rest, in order")
        # the first block's parent anchors the window, then every block once, in order
        assert [n for n, _ in ingester.window] == [17_999_999, 18_000_000, 18_000_001, 18_000_002]
    finally:
        ingester.stopping.set()
        server.stop()
