import csv
import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    DAI,
    MAINNET,
    USDC,
    USDT,
    WETH,
    load_json,
    recorded_block_18m,
    write_monitor,
)
from vigil.config.loader import load_monitor_file, load_project
from vigil.errors import ConfigError
from vigil.processors.checks import check_monitor, check_project
from vigil.processors.matching import Matcher, batches, compile_monitor
from vigil.schemas.evm import block_record

APPROVER = "0xce8d3c1a8edaa545072d5a4dfdc202f199d67090"  # emits 4 Approvals in block 18M


def matcher_for(folder: Path, text: str) -> Matcher:
    monitor = load_monitor_file(write_monitor(folder, text))
    return Matcher([compile_monitor(monitor, chain_id=1)])


def monitor_yaml(addresses: list[str], conditions: str = "") -> str:
    return (
        "name: test\nnetwork: mainnet\n"
        f"addresses: {json.dumps(addresses)}\nabi: abis/ERC20.abi.json\n{conditions}"
    )


@pytest.fixture(scope="module")
def block() -> dict[str, Any]:
    return recorded_block_18m()


def test_event_selection_with_condition(tmp_path: Path, block: dict[str, Any]) -> None:
    events = (
        "conditions:\n  events:\n    - signature: Transfer(address,address,uint256)\n"
        "      expression: value > 1000000000\n"
    )
    matches = matcher_for(tmp_path, monitor_yaml([USDC], events)).match_block(block)
    usdc_logs = [
        (tx["hash"], json.loads(json.dumps(log)))
        for tx in block["transactions"]
        for log in tx["receipt"]["logs"]
        if log["address"] == USDC and log["topics"][0].startswith("0xddf252ad")
    ]
    large = {h for h, log in usdc_logs if int(log["data"], 16) > 10**9}
    assert {m["hash"] for m in matches} == large
    for match in matches:
        reasons = [r for r in match["matchReasons"] if r["type"] == "event"]
        assert reasons, match["hash"]
        for reason in reasons:
            params = json.loads(reason["params"])
            assert int(params["value"]) > 10**9
            assert json.loads(reason["args"])[2] == params["value"]
            assert reason["signature"] == "Transfer(address,address,uint256)"
        assert USDC in match["matchedAddresses"]
        assert "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48" in match["matchedChecksumAddresses"]
        assert match["id"] == f"{match['monitor']['id']}:mainnet:{block['hash']}:{match['hash']}:-"


def test_dai_names_its_params_src_dst_wad(tmp_path: Path, block: dict[str, Any]) -> None:
    dai_abi = [
        {
            "type": "event",
            "name": "Transfer",
            "anonymous": False,
            "inputs": [
                {"name": "src", "type": "address", "indexed": True},
                {"name": "dst", "type": "address", "indexed": True},
                {"name": "wad", "type": "uint256", "indexed": False},
            ],
        },
    ]
    path = tmp_path / "dai.yaml"
    path.write_text(
        f"name: dai\nnetwork: mainnet\naddresses: [{DAI}]\nabi: {json.dumps(dai_abi)}\n"
        "conditions:\n  events:\n    - signature: Transfer\n      expression: wad > 0\n"
    )
    matches = Matcher([compile_monitor(load_monitor_file(path), 1)]).match_block(block)
    assert len(matches) == 1
    assert set(json.loads(matches[0]["matchReasons"][0]["params"])) == {"src", "dst", "wad"}


def test_no_selection_matches_every_transaction_touching_the_address(
    tmp_path: Path, block: dict[str, Any]
) -> None:
    matches = matcher_for(tmp_path, monitor_yaml([WETH])).match_block(block)
    touching = {
        tx["hash"]
        for tx in block["transactions"]
        if WETH in (tx["to"], tx["from"])
        or any(log["address"] == WETH for log in tx["receipt"]["logs"])
    }
    assert {m["hash"] for m in matches} == touching
    assert all(m["matchReasons"] == [] for m in matches)


def test_transaction_status_is_per_transaction(tmp_path: Path, block: dict[str, Any]) -> None:
    failed = [tx for tx in block["transactions"] if tx["receipt"]["status"] == 0]
    addresses = sorted({tx["to"] for tx in failed})
    conditions = "conditions:\n  transaction: status == 'failed'\n"
    matches = matcher_for(tmp_path, monitor_yaml(addresses, conditions)).match_block(block)
    assert {m["hash"] for m in matches} == {tx["hash"] for tx in failed}
    assert matches[0]["matchReasons"][0] == {
        "type": "transaction",
        "address": None,
        "signature": None,
        "condition": "status == 'failed'",
        "args": "[]",
        "params": "{}",
        "value": None,
    }


def test_function_selection_decodes_calldata(tmp_path: Path, block: dict[str, Any]) -> None:
    functions = "conditions:\n  functions:\n    - signature: transfer\n      expression: $1 > 0\n"
    matches = matcher_for(tmp_path, monitor_yaml([USDT], functions)).match_block(block)
    direct = {
        tx["hash"]
        for tx in block["transactions"]
        if tx["to"] == USDT
        and tx["input"].startswith("0xa9059cbb")
        and int(tx["input"][74:], 16) > 0
    }
    assert {m["hash"] for m in matches} == direct
    reason = matches[0]["matchReasons"][0]
    assert reason["type"] == "function"
    assert reason["signature"] == "transfer(address,uint256)"
    assert set(json.loads(reason["params"])) == {"to", "amount"}  # OZ 4.9.6 names


def test_events_and_functions_are_ored(tmp_path: Path, block: dict[str, Any]) -> None:
    both = (
        "conditions:\n  events:\n    - signature: Approval\n"
        "  functions:\n    - signature: transfer\n"
    )
    only_events = "conditions:\n  events:\n    - signature: Approval\n"
    only_functions = "conditions:\n  functions:\n    - signature: transfer\n"
    result = {}
    for name, text in (("both", both), ("events", only_events), ("functions", only_functions)):
        folder = tmp_path / name
        folder.mkdir()
        # two addresses share one ABI: Approvals come from one, direct transfers go to the other
        monitor = monitor_yaml([USDT, APPROVER], text)
        result[name] = {m["hash"] for m in matcher_for(folder, monitor).match_block(block)}
    assert result["both"] == result["events"] | result["functions"]
    assert result["events"] and result["functions"]


def test_paused_monitor_produces_nothing(tmp_path: Path, block: dict[str, Any]) -> None:
    assert matcher_for(tmp_path, monitor_yaml([USDT]) + "paused: true\n").match_block(block) == []


def test_batches_group_by_monitor(tmp_path: Path, block: dict[str, Any]) -> None:
    matches = matcher_for(tmp_path, monitor_yaml([USDT])).match_block(block)
    [batch] = batches(matches)
    assert batch["id"] == f"monitor:mainnet:{block['hash']}"  # id from the file name
    assert len(batch["matches"]) == len(matches) > 1


def test_transfers_of_block_483920_agree_with_ethereum_etl(tmp_path: Path) -> None:
    etl = MAINNET / "etl"
    raw = load_json(etl / "483920.block.rpc.json")["result"]
    receipts = [
        load_json(etl / f"web3_response.eth_getTransactionReceipt_{tx['hash']}.json")["result"]
        for tx in raw["transactions"]
    ]
    expected = list(csv.DictReader((etl / "483920.expected_token_transfers.csv").open()))
    tokens = sorted({row["token_address"] for row in expected})
    events = "conditions:\n  events:\n    - signature: Transfer(address,address,uint256)\n"
    matches = matcher_for(tmp_path, monitor_yaml(tokens, events)).match_block(
        block_record("mainnet", 1, raw, receipts)
    )
    found = sorted(
        (
            json.loads(r["params"])["from"].lower(),
            json.loads(r["params"])["to"].lower(),
            json.loads(r["params"])["value"],
            m["hash"],
        )
        for m in matches
        for r in m["matchReasons"]
    )
    assert found == sorted(
        (row["from_address"], row["to_address"], row["value"], row["transaction_hash"])
        for row in expected
    )


@pytest.mark.parametrize(
    ("conditions", "field", "message"),
    [
        (
            "conditions:\n  events:\n    - signature: Transferred\n",
            "conditions.events[0].signature",
            "is not in the ABI; the ABI has: Approval",
        ),
        (
            "conditions:\n  functions:\n    - signature: transfer(address)\n",
            "conditions.functions[0].signature",
            "is not in the ABI",
        ),
        (
            "conditions:\n  events:\n    - signature: Transfer\n      expression: amount > 1\n",
            "conditions.events[0].expression",
            "unknown name(s) amount",
        ),
        (
            "conditions:\n  transaction: gasPrice >\n",
            "conditions.transaction",
            "syntax error at line 1, column 11",
        ),
    ],
)
def test_bad_monitors_name_file_monitor_and_field(
    tmp_path: Path, conditions: str, field: str, message: str
) -> None:
    path = write_monitor(tmp_path, monitor_yaml([USDT], conditions))
    monitor = load_monitor_file(path)  # the loader reads the file; the check compiles it
    with pytest.raises(ConfigError) as caught:
        check_monitor(monitor)
    text = str(caught.value)
    assert str(path) in text
    assert "monitor 'test'" in text
    assert field in text
    assert message in text


def test_check_project_compiles_every_monitor_of_a_loaded_project(tmp_path: Path) -> None:
    from tests.unit.test_config import monitor, project

    (tmp_path / "good").mkdir()
    (tmp_path / "bad").mkdir()
    good = load_project(project(tmp_path / "good", monitor()))
    assert check_project(good) is good
    bad_root = project(tmp_path / "bad", monitor("conditions:\n  transaction: gasPrice >\n"))
    loaded = load_project(bad_root)  # files and cross-references are fine
    with pytest.raises(ConfigError, match=r"conditions\.transaction: syntax error"):
        check_project(loaded)


def test_a_confirmation_level_is_carried_as_written(tmp_path: Path, block: dict[str, Any]) -> None:
    from vigil.schemas.codec import Codec
    from vigil.schemas.events import match_event
    from vigil.schemas.registry import SchemaStore

    codec = Codec(SchemaStore())
    for level, (folder, expected) in {
        "finalized": ("f", "finalized"),
        "3": ("n", 3),
    }.items():
        text = monitor_yaml([WETH]) + f"confirm_blocks: {level}\n"
        [first, *_] = matcher_for(tmp_path / folder, text).match_block(block)
        # through Avro (the topic's record) and into the event templates and tasks read
        decoded = codec.decode(codec.encode("t", "Match", first), "Match")
        assert match_event(decoded)["monitor"]["confirmBlocks"] == expected
