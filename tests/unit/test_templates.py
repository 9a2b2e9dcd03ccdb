"""Monitor templates: every one makes a valid monitor; instances match what they promise."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import MAINNET, USDT, load_json, recorded_block_18m
from vigil.config.loader import load_monitor_file
from vigil.config.templates import RISK_CATEGORIES, instantiate, library, save_template
from vigil.errors import ConfigError
from vigil.processors.matching import Matcher, compile_monitor

TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
WANTED = {  # the list, by what each watches
    "ownership-transferred",
    "paused-unpaused",
    "proxy-upgraded",
    "role-changes",
    "large-erc20-transfer",
    "failed-transactions",
}


ROUTER = "0x3fc91a3afd70395cd496c647d5a6cc9d4b2b7fad"  # Uniswap's Universal Router


def make(tmp_path: Path, name: str, address: str = USDT, **params: str) -> Path:
    text, monitor_id = instantiate(library()[name], [address], "mainnet", None, params, [])
    path = tmp_path / f"{monitor_id}.yaml"
    path.write_text(text)
    return path


def test_the_library_covers_every_risk_category_and_the_promised_templates() -> None:
    templates = library()
    assert set(templates) >= WANTED
    assert {t.risk_category for t in templates.values()} == set(RISK_CATEGORIES)


@pytest.mark.parametrize("name", sorted(library()))
def test_every_template_makes_a_loadable_monitor(tmp_path: Path, name: str) -> None:
    monitor = load_monitor_file(make(tmp_path, name))
    assert monitor.config.addresses == [USDT] and monitor.config.network == "mainnet"
    assert monitor.config.risk_category == library()[name].risk_category
    compile_monitor(monitor, 1)


def test_large_transfer_threshold_matches_exactly_the_transfers_above_it(tmp_path: Path) -> None:
    threshold = 100 * 10**6  # 100 USDT (6 decimals)
    monitor = load_monitor_file(make(tmp_path, "large-erc20-transfer", threshold=str(threshold)))
    found = Matcher([compile_monitor(monitor, 1)]).match_block(recorded_block_18m())
    expected = {
        receipt["transactionHash"]
        for receipt in load_json(MAINNET / "18000000.receipts.json")
        for log in receipt["logs"]
        if log["address"].lower() == USDT
        and log["topics"][0] == TRANSFER_TOPIC
        and int(log["data"], 16) >= threshold
    }
    assert 0 < len(expected) < 45  # the block has 45 USDT transfers
    assert {m["hash"] for m in found} == expected


def test_failed_transactions_template_finds_the_reverted_ones(tmp_path: Path) -> None:
    monitor = load_monitor_file(make(tmp_path, "failed-transactions", ROUTER))
    found = Matcher([compile_monitor(monitor, 1)]).match_block(recorded_block_18m())
    expected = [
        r["transactionHash"]
        for r in load_json(MAINNET / "18000000.receipts.json")
        if r["status"] == "0x0" and ROUTER in (r["to"], r["from"])
    ]
    assert len(expected) == 2 and [m["hash"] for m in found] == expected


def test_unknown_parameters_and_placeholders_are_named() -> None:
    template = library()["large-erc20-transfer"]
    with pytest.raises(ConfigError, match=r"unknown parameter.*limit.*takes: threshold"):
        instantiate(template, [USDT], "mainnet", None, {"limit": "1"}, [])
    with pytest.raises(ConfigError, match="at least one contract address"):
        instantiate(template, [], "mainnet", None, {}, [])


def test_a_monitor_saved_as_a_template_makes_the_same_monitor(tmp_path: Path) -> None:
    original = load_monitor_file(make(tmp_path, "large-erc20-transfer", threshold="5"))
    target = save_template(original.file, "my-transfers", tmp_path / "project")
    assert target == tmp_path / "project" / "templates" / "my-transfers.yaml"
    again = library(tmp_path / "project")["my-transfers"]
    text, _ = instantiate(again, [USDT], "mainnet", "copy", {}, [])
    (tmp_path / "copy.yaml").write_text(text)
    copy = load_monitor_file(tmp_path / "copy.yaml")
    assert copy.config.conditions == original.config.conditions
    assert copy.abi == original.abi
    with pytest.raises(ConfigError, match="--name: expected lowercase"):
        save_template(original.file, "Bad Name", tmp_path / "project")


def test_monitors_new_writes_a_checked_file_into_the_project(tmp_path: Path) -> None:
    (tmp_path / "vigil.yaml").write_text(
        "networks:\n  mainnet:\n    chain_id: 1\n    rpc_urls: ['http://127.0.0.1:8545']\n"
    )
    args = ["--project", str(tmp_path), "--template", "role-changes", "--network", "mainnet"]
    command = [sys.executable, "-m", "vigil", "monitors", "new", *args, "--address", USDT]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    [written] = (tmp_path / "monitors").glob("*.yaml")
    assert load_monitor_file(written).config.risk_category == "access-control"
    again = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    assert again.returncode == 2 and "exists" in again.stderr
    bad = subprocess.run(
        [*command[:-2], "--address", USDT, "--template", "nope"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert bad.returncode == 2 and "no template 'nope'" in bad.stderr


def test_monitors_new_refuses_a_network_or_channel_the_project_lacks(tmp_path: Path) -> None:
    (tmp_path / "vigil.yaml").write_text(
        "networks:\n  mainnet:\n    chain_id: 1\n    rpc_urls: ['http://127.0.0.1:8545']\n"
    )
    (tmp_path / "channels").mkdir()
    (tmp_path / "channels" / "ops.yaml").write_text("alias: ops\ntype: webhook\nurl: http://x/\n")
    base = [sys.executable, "-m", "vigil", "monitors", "new", "--project", str(tmp_path)]
    base += ["--template", "role-changes", "--address", USDT]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *args], capture_output=True, text=True, timeout=60)

    channel = run("--network", "mainnet", "--channel", "opps")
    assert channel.returncode == 2
    assert "--channel: no channel alias 'opps'" in channel.stderr
    assert "did you mean 'ops'?" in channel.stderr
    network = run("--network", "mainet")
    assert network.returncode == 2 and "did you mean 'mainnet'?" in network.stderr
    assert not (tmp_path / "monitors").exists() or not list((tmp_path / "monitors").iterdir())
    assert run("--network", "mainnet", "--channel", "ops").returncode == 0
