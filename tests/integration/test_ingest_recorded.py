"""Recorded mainnet blocks served by a local JSON-RPC server, through the ingester and Kafka."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    FIXTURES,
    MAINNET,
    USDT,
    RunningIngester,
    load_json,
    raw_records,
    read_topic,
)
from tests.rpc_server import JsonRpcServer
from vigil.config.models import NetworkConfig
from vigil.schemas import tx_index
from vigil.schemas.codec import Codec
from vigil.schemas.evm import block_record
from vigil.schemas.registry import SchemaStore
from vigil.settings import Settings
from vigil.streams.evm.ingester import Ingester
from vigil.streams.kafka import BatchProducer, ensure_topics
from vigil.testing import wait_for

pytestmark = pytest.mark.integration


def ingest_one(
    settings: Settings, kafka: str, server: JsonRpcServer, number: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run the ingester until it emitted ``number``; the Block and Transaction records."""
    ensure_topics(settings, kafka)
    codec = Codec(SchemaStore())
    network = NetworkConfig(
        chain_id=1, rpc_urls=[server.url], start_block=number, poll_interval=0.1
    )
    ingester = Ingester(settings, "mainnet", network, BatchProducer(settings, kafka), codec, kafka)
    with RunningIngester(ingester):
        wait_for(lambda: ingester.emitted == 1, 30, f"block {number}")

    [record] = raw_records(settings, kafka, "chain.blocks")
    block = codec.decode(record.value, "Block")
    # the index header chooses the transactions of watched addresses, as the worker reads it
    index = dict(record.headers)[tx_index.HEADER]
    for watched in ({USDT}, {block["miner"], "0x" + "00" * 20}, set()):
        chosen = codec.decode(tx_index.select(record.value, index, watched.intersection))
        assert chosen["transactions"] == [
            tx for tx in block["transactions"] if watched.intersection(tx_index.involved(tx))
        ]
    transactions = read_topic(settings, codec, kafka, "chain.transactions", "Transaction")
    return block, sorted(transactions, key=lambda t: t["transactionIndex"])


def test_block_18m_is_emitted_field_for_field(settings: Settings, kafka: str) -> None:
    raw = load_json(MAINNET / "18000000.block.json")
    receipts = load_json(MAINNET / "18000000.receipts.json")
    server = JsonRpcServer(blocks={18_000_000: (raw, receipts)}).start()
    try:
        block, transactions = ingest_one(settings, kafka, server, 18_000_000)
    finally:
        server.stop()
    assert block == block_record("mainnet", 1, raw, receipts)
    assert transactions == block["transactions"]
    assert len(transactions) == 94
    assert sum(len(t["receipt"]["logs"]) for t in transactions) == 291
    by_hash = {r["transactionHash"]: r for r in receipts}
    for raw_tx, tx in zip(raw["transactions"], transactions, strict=True):
        receipt = by_hash[raw_tx["hash"]]
        assert tx["hash"] == raw_tx["hash"]
        assert tx["from"] == raw_tx["from"].lower()
        assert tx["to"] == (raw_tx["to"] or "").lower() or tx["to"] is None
        assert tx["type"] == int(raw_tx["type"], 16)
        assert tx["nonce"] == int(raw_tx["nonce"], 16)
        assert tx["input"] == raw_tx["input"]
        assert tx["value"] == str(int(raw_tx["value"], 16))
        assert tx["receipt"]["status"] == int(receipt["status"], 16)
        assert tx["receipt"]["cumulativeGasUsed"] == int(receipt["cumulativeGasUsed"], 16)
        for log, raw_log in zip(tx["receipt"]["logs"], receipt["logs"], strict=True):
            assert log["topics"] == raw_log["topics"]
            assert log["data"] == raw_log["data"]
            assert log["address"] == raw_log["address"].lower()
    assert [t["hash"] for t in transactions if t["receipt"]["status"] == 0] == [
        r["transactionHash"] for r in receipts if r["status"] == "0x0"
    ]
    assert block["baseFeePerGas"] == str(int(raw["baseFeePerGas"], 16))


def test_pre_byzantium_block_falls_back_to_transaction_receipts(
    settings: Settings, kafka: str
) -> None:
    etl = MAINNET / "etl"
    raw = load_json(etl / "483920.block.rpc.json")["result"]
    server = JsonRpcServer(blocks={483_920: (raw, None)})  # no eth_getBlockReceipts
    server.add_receipts(
        [
            load_json(etl / f"web3_response.eth_getTransactionReceipt_{tx['hash']}.json")["result"]
            for tx in raw["transactions"]
        ]
    )
    server.start()
    try:
        block, transactions = ingest_one(settings, kafka, server, 483_920)
    finally:
        server.stop()
    assert "eth_getTransactionReceipt" in server.requests
    assert server.requests.count("eth_getBlockReceipts") == 1  # asked once, then remembered
    assert len(transactions) == 4
    assert all(t["receipt"]["status"] is None for t in transactions)  # absent, not "success"
    assert block["baseFeePerGas"] is None


def test_monitors_test_against_a_live_rpc(tmp_path: Path) -> None:
    raw = load_json(MAINNET / "18000000.block.json")
    receipts = load_json(MAINNET / "18000000.receipts.json")
    server = JsonRpcServer(blocks={18_000_000: (raw, receipts)}).start()
    (tmp_path / "vigil.yaml").write_text(
        f"networks:\n  mainnet:\n    chain_id: 1\n    rpc_urls: ['{server.url}']\n"
    )
    (tmp_path / "usdt.yaml").write_text(
        f"name: usdt\nnetwork: mainnet\naddresses: ['{USDT}']\n"
        f"abi: {FIXTURES / 'abi' / 'ERC20.abi.json'}\n"
        "conditions:\n  events:\n    - signature: Transfer\n"
    )
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "vigil",
                "monitors",
                "test",
                str(tmp_path / "usdt.yaml"),
                "--network",
                "mainnet",
                "--block",
                "18000000",
                "--format",
                "json",
            ],
            env={**os.environ, "VIGIL_PROJECT_DIR": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        server.stop()
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert sum(len(m["matchReasons"]) for m in found) == 45  # every USDT Transfer log
    assert {int(m["blockNumber"], 16) for m in found} == {18_000_000}
