"""Internal calls on anvil: a contract (Caller) calls the monitored token's transfer. With
``traces: true`` the ingester records the call from the node's traces (the callTracer, or
``trace_block`` on a node without it), and a function condition matches it, saying it was
internal, at which depth and from which caller; without traces it does not match."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import RunningIngester, read_topic
from tests.rpc_server import JsonRpcServer
from vigil.config.loader import load_monitor_file
from vigil.config.models import NetworkConfig
from vigil.demo.chain import ACCOUNTS, Anvil, Token
from vigil.processors.matching import Matcher, compile_monitor
from vigil.schemas.codec import Codec
from vigil.schemas.registry import SchemaStore
from vigil.settings import REPO_ROOT, Settings
from vigil.streams.evm.ingester import Ingester
from vigil.streams.kafka import BatchProducer, ensure_topics
from vigil.testing import wait_for

pytestmark = pytest.mark.integration
MODULES = REPO_ROOT / ".tools" / "node_modules"


def deploy_caller(anvil: Anvil, out: Path) -> Any:
    from web3 import Web3

    done = subprocess.run(
        [
            "node",
            str(REPO_ROOT / "vigil" / "demo" / "compile.js"),
            str(MODULES),
            str(out),
            str(REPO_ROOT / "tests" / "fixtures" / "contracts" / "Caller.sol"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    artifact = json.loads(out.read_text())["Caller"]
    w3 = Web3(Web3.HTTPProvider(anvil.url))
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    receipt = w3.eth.wait_for_transaction_receipt(
        factory.constructor().transact({"from": ACCOUNTS[0]})
    )
    return w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])


CODEC = Codec(SchemaStore())


def ingest(
    settings: Settings, kafka: str, url: str, start: int, last: int, traces: bool
) -> list[Any]:
    codec, name = CODEC, "traced" if traces else "plain"
    network = NetworkConfig(
        chain_id=31337, rpc_urls=[url], poll_interval=0.1, start_block=start, traces=traces
    )
    ingester = Ingester(settings, name, network, BatchProducer(settings, kafka), codec, kafka)
    with RunningIngester(ingester):
        wait_for(lambda: ingester.emitted == last - start + 1, 60, "the blocks")
    return [
        b
        for b in read_topic(settings, codec, kafka, "chain.blocks", "Block")
        if b["network"] == name and start <= b["number"] <= last
    ]


@pytest.mark.parametrize("node", ["callTracer", "trace_block"])
def test_a_call_from_a_contract_matches_a_function_condition(
    settings: Settings, kafka: str, anvil: Anvil, tmp_path: Path, node: str
) -> None:
    ensure_topics(settings, kafka)
    token = Token(anvil.url)
    caller = deploy_caller(anvil, tmp_path / "caller.json")
    token.transfer(caller.address, 10**18)
    start = int(anvil.rpc("eth_blockNumber"), 16) + 1
    tx = caller.functions.forward(token.address, ACCOUNTS[1], 12_345).transact(
        {"from": ACCOUNTS[0]}
    )
    caller.w3.eth.wait_for_transaction_receipt(tx)
    tx_hash = "0x" + bytes(tx).hex()
    token.transfer(ACCOUNTS[1], 99)  # a direct call: not internal
    last = int(anvil.rpc("eth_blockNumber"), 16)
    # a node without debug_traceBlockByNumber: the ingester falls back to trace_block
    refuse = {"debug_traceBlockByNumber"} if node == "trace_block" else set()
    proxy = JsonRpcServer(chain_id=31337, upstream=anvil.url, refuse=refuse).start()
    try:
        blocks = ingest(settings, kafka, proxy.url, start, last, traces=True)
    finally:
        proxy.stop()
    if node == "trace_block":
        assert "trace_block" in proxy.requests
    [forwarded] = [t for b in blocks for t in b["transactions"] if t["hash"] == tx_hash]
    [call] = forwarded["internalCalls"]
    assert (call["from"], call["to"], call["depth"], call["callType"]) == (
        caller.address.lower(),
        token.address.lower(),
        1,
        "call",
    )

    def monitor(network: str) -> Matcher:
        path = tmp_path / f"{network}.yaml"
        path.write_text(
            f"name: transfers\nnetwork: {network}\naddresses: ['{token.address}']\n"
            f"abi: {REPO_ROOT / 'examples' / 'abis' / 'ERC20.json'}\n"
            "conditions:\n  functions:\n    - signature: transfer(address,uint256)\n"
            "      expression: value < 1000000\n"
        )
        return Matcher([compile_monitor(load_monitor_file(path), 31337)])

    matcher = monitor("traced")
    found = [m for b in blocks for m in matcher.match_block(b)]
    # the internal transfer of 12,345 matches; the direct one of 99 too, and is not internal
    by_hash = {m["hash"]: m["matchReasons"] for m in found}
    [internal] = by_hash[tx_hash]
    assert internal.get("internal") is True and internal.get("depth") == 1
    assert internal.get("caller") == caller.address.lower()
    assert json.loads(internal["params"])["value"] == "12345"
    assert [r.get("internal", False) for m in found for r in m["matchReasons"]].count(False) == 1
    # without traces the internal call is not seen
    plain = ingest(settings, kafka, anvil.url, start, last, traces=False)
    unseen = [m for b in plain for m in monitor("plain").match_block(b)]
    assert [m["matchReasons"][0].get("internal", False) for m in unseen] == [False]  # 99 only
    assert tx_hash not in {m["hash"] for m in unseen}
