"""Human-readable ABI fragments (as ethers and viem write them) in place of an ABI file."""

import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import FIXTURES, USDT
from tests.unit.test_monitors_test import BLOCK, RECEIPTS, matches
from vigil.config.fragments import FragmentError, parse_fragment
from vigil.config.loader import load_monitor_file
from vigil.errors import ConfigError
from vigil.processors.abi import signature


def test_an_event_fragment_is_the_abi_entry_solc_writes() -> None:
    data = json.loads((FIXTURES / "abi" / "ERC20.abi.json").read_text())
    erc20 = data["abi"] if isinstance(data, dict) else data
    [transfer] = [e for e in erc20 if e.get("name") == "Transfer" and e["type"] == "event"]
    parsed = parse_fragment(
        "event Transfer(address indexed from, address indexed to, uint256 value)"
    )

    def strip(entry: dict[str, Any]) -> dict[str, Any]:
        inputs = [{k: p[k] for k in ("type", "name", "indexed")} for p in entry["inputs"]]
        return {**entry, "inputs": inputs}

    assert strip(parsed) == strip(transfer)


def test_function_fragments_with_tuples_returns_and_modifiers() -> None:
    entry = parse_fragment(
        "function submit((uint a, address[] b)[] orders, bytes32 salt) external payable "
        "returns (bool ok)"
    )
    assert signature(entry) == "submit((uint256,address[])[],bytes32)"
    assert entry["stateMutability"] == "payable"
    assert entry["outputs"] == [{"type": "bool", "name": "ok"}]
    assert signature(parse_fragment("function pause()")) == "pause()"
    spelled = parse_fragment("function f(tuple(uint8 x, int y) t) view")
    assert signature(spelled) == "f((uint8,int256))"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("event Transfer(address indexed from, uint257 value)", "'uint257' is not a Solidity type"),
        ("function f(address indexed to)", "'indexed' is for event parameters"),
        ("event E(uint256 a b)", "expected 'type [indexed] [name]'"),
        ("event E(uint256 a,)", "an empty parameter"),
        ("event E(uint256 a", "unbalanced parentheses"),
        ("function f(uint256) returns bool", "expected '(' after returns"),
    ],
)
def test_a_bad_fragment_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(FragmentError, match=message.replace("(", r"\(").replace("[", r"\[")):
        parse_fragment(text)


def test_a_monitor_without_an_abi_file_matches_like_one_with_it(tmp_path: Path) -> None:
    def write(name: str, abi_line: str, signature_text: str) -> Path:
        path = tmp_path / f"{name}.yaml"
        path.write_text(
            f"name: m\nnetwork: mainnet\naddresses: ['{USDT}']\n{abi_line}"
            f"conditions:\n  events:\n    - signature: '{signature_text}'\n"
            "      expression: value > 1000000000\n"
        )
        return path

    fragment = write(
        "fragment", "", "event Transfer(address indexed from, address indexed to, uint256 value)"
    )
    loaded = load_monitor_file(fragment)
    assert loaded.config.conditions.events[0].signature == "Transfer(address,address,uint256)"
    assert [e["name"] for e in loaded.abi] == ["Transfer"]
    with_file = write("file", f"abi: {FIXTURES / 'abi' / 'ERC20.abi.json'}\n", "Transfer")
    by_fragment = matches(fragment, "--blocks", BLOCK, "--receipts", RECEIPTS)
    by_file = matches(with_file, "--blocks", BLOCK, "--receipts", RECEIPTS)
    assert by_fragment and [m["hash"] for m in by_fragment] == [m["hash"] for m in by_file]
    assert [m["matchReasons"] for m in by_fragment] == [m["matchReasons"] for m in by_file]


def test_a_bad_fragment_in_a_monitor_names_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        f"name: m\nnetwork: mainnet\naddresses: ['{USDT}']\n"
        "conditions:\n  functions:\n    - signature: 'event Transfer(address indexed a)'\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_monitor_file(path)
    assert f"{path}: monitor 'm': conditions.functions[0].signature: a event fragment" in str(
        caught.value
    )
