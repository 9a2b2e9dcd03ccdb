"""RPC URLs that carry an API key: written as ${NAME}, resolved from secrets or the
environment, and never shown whole in logs, errors, topics or history."""

import logging
from pathlib import Path

import pytest
from pydantic import SecretStr

from tests.helpers import MAINNET, RunningIngester, load_json, read_topic
from tests.rpc_server import JsonRpcServer
from vigil.cli.common import configure_logging
from vigil.config.models import NetworkConfig
from vigil.errors import ConfigError, RpcUnavailable
from vigil.schemas.codec import Codec
from vigil.schemas.registry import SchemaStore
from vigil.settings import Settings, load_settings
from vigil.streams.evm.ingester import Ingester
from vigil.streams.evm.rpc import RpcPool
from vigil.streams.kafka import BatchProducer, ensure_topics
from vigil.testing import wait_for

pytestmark = pytest.mark.integration
KEY = "sk-live-0123456789abcdef"


def test_a_key_in_the_url_reaches_the_node_and_nothing_else(
    settings: Settings, kafka: str, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    raw = load_json(MAINNET / "18000000.block.json")
    receipts = load_json(MAINNET / "18000000.receipts.json")
    good = JsonRpcServer(blocks={18_000_000: (raw, receipts)}).start()
    bad = JsonRpcServer(blocks={18_000_000: (raw, receipts)}, faults=[500] * 50).start()
    keyed = settings.model_copy(update={"secrets": {"RPC_KEY": SecretStr(KEY)}})
    network = NetworkConfig(
        chain_id=1,
        rpc_urls=[
            {"url": f"{bad.url}/v2/${{RPC_KEY}}?token=${{RPC_KEY}}", "weight": 2},
            {"url": f"{good.url}/v2/${{RPC_KEY}}", "weight": 1},
        ],
        start_block=18_000_000,
        poll_interval=0.1,
    )
    ensure_topics(keyed, kafka)
    codec = Codec(SchemaStore())
    configure_logging("DEBUG")  # as every vigil process does, at its most verbose
    caplog.set_level(logging.DEBUG)
    try:
        ingester = Ingester(keyed, "mainnet", network, BatchProducer(keyed, kafka), codec, kafka)
        ingester.rpc.base_delay = ingester.rpc.max_delay = 0.01
        with RunningIngester(ingester):
            wait_for(lambda: ingester.emitted == 1, 30, "block 18,000,000 through the second node")
            report = ingester.report()
        with pytest.raises(RpcUnavailable) as caught:
            RpcPool.for_network(
                "mainnet",
                network.model_copy(update={"rpc_urls": network.rpc_urls[:1]}),
                keyed,
                attempts=1,
            ).call("eth_chainId")
    finally:
        good.stop()
        bad.stop()
    assert f"/v2/{KEY}" in good.paths  # the node got the key
    assert f"/v2/{KEY}?token={KEY}" in bad.paths
    assert "failing over" in caplog.text and "HTTP 500" in caplog.text
    assert "/…" in caplog.text
    shown = [caplog.text, report, str(caught.value)]
    for name in ("chain.blocks", "chain.transactions", "chain.checkpoints"):
        schema = {"chain.blocks": "Block", "chain.transactions": "Transaction"}.get(
            name, "Checkpoint"
        )
        shown.append(repr(read_topic(keyed, codec, kafka, name, schema)))
    assert not [text for text in shown if KEY in text or "sk-live" in text]


def test_an_unset_reference_is_an_error_naming_network_and_field(tmp_path: Path) -> None:
    network = NetworkConfig(chain_id=1, rpc_urls=["https://rpc.example/v2/${NOT_SET_ANYWHERE}"])
    with pytest.raises(ConfigError) as caught:
        RpcPool.for_network("mainnet", network, load_settings(data_dir=tmp_path))
    message = str(caught.value)
    assert (
        "network 'mainnet': rpc_urls[0]: https://rpc.example/… refers to ${NOT_SET_ANYWHERE}"
        in message
    )
    assert "not set" in message
