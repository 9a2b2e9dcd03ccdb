import logging

import pytest

from tests.helpers import RunningIngester, read_topic
from vigil.config.models import NetworkConfig
from vigil.demo.chain import ACCOUNTS, Anvil, Token
from vigil.errors import RpcError
from vigil.schemas.codec import Codec
from vigil.schemas.registry import SchemaStore
from vigil.settings import Settings
from vigil.streams.evm.ingester import Ingester
from vigil.streams.kafka import BatchProducer, ensure_topics
from vigil.testing import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def codec() -> Codec:
    return Codec(SchemaStore())


def make(settings: Settings, anvil: Anvil, codec: Codec, kafka: str, start: int) -> Ingester:
    network = NetworkConfig(
        chain_id=31337, rpc_urls=[anvil.url], poll_interval=0.1, start_block=start
    )
    return Ingester(settings, "anvil", network, BatchProducer(settings, kafka), codec, kafka)


def test_emits_every_block_once_in_order_across_a_restart(
    settings: Settings, anvil: Anvil, codec: Codec, kafka: str
) -> None:
    ensure_topics(settings, kafka)
    start = int(anvil.rpc("eth_blockNumber"), 16) + 1
    token = Token(anvil.url)
    token.transfer(ACCOUNTS[1], 7)
    head = int(anvil.rpc("eth_blockNumber"), 16)
    with RunningIngester(make(settings, anvil, codec, kafka, start)) as first:
        wait_for(lambda: first.emitted == head - start + 1, 30, "the first blocks")
    assert first.checkpoint().number == head  # type: ignore[union-attr]
    anvil.rpc("anvil_mine", hex(500))  # downtime: 500 blocks while nothing ingests
    with RunningIngester(make(settings, anvil, codec, kafka, start)) as second:
        wait_for(lambda: second.emitted == 500, 60, "500 blocks after the restart")
    numbers = [b["number"] for b in read_topic(settings, codec, kafka, "chain.blocks", "Block")]
    assert numbers == list(range(start, head + 501))
    transfer = next(
        b
        for b in read_topic(settings, codec, kafka, "chain.blocks", "Block")
        if b["number"] == head
    )
    [tx] = transfer["transactions"]
    assert tx["to"] == token.address.lower()
    assert tx["receipt"]["status"] == 1
    assert tx["receipt"]["logs"][0]["topics"][0].startswith("0xddf252ad")


def test_wrong_chain_and_unreachable_rpc_are_named(
    settings: Settings, anvil: Anvil, codec: Codec, kafka: str, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = NetworkConfig(chain_id=1, rpc_urls=[anvil.url], start_block=0)
    ingester = Ingester(settings, "mainnet", wrong, BatchProducer(settings, kafka), codec, kafka)
    with pytest.raises(RpcError, match=f"{anvil.url} eth_chainId: the node is on chain 31337"):
        ingester.run()
    # a node that is down is waited for (named in the log), until the ingester is stopped
    gone = NetworkConfig(
        chain_id=1, rpc_urls=["http://127.0.0.1:9"], start_block=0, poll_interval=0.05
    )
    ingester = Ingester(settings, "mainnet", gone, BatchProducer(settings, kafka), codec, kafka)
    caplog.set_level(logging.ERROR, logger="vigil.streams.evm.ingester")
    runner = RunningIngester(ingester)
    with runner:
        wait_for(
            lambda: (
                sum("127.0.0.1:9 eth_chainId: ConnectError" in r.message for r in caplog.records)
                >= 2
            ),
            30,
            "two retries named in the log",
        )
    assert not runner.thread.is_alive()  # stopped while it waited
    assert ingester.emitted == 0
