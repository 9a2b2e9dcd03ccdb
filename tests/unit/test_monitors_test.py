"""`vigil monitors test` over recorded blocks: answers computed independently from raw data."""

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.helpers import FIXTURES, MAINNET, USDT, load_json

TRANSFER = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
BLOCK = MAINNET / "18000000.block.json"
RECEIPTS = MAINNET / "18000000.receipts.json"


def monitor(tmp_path: Path, addresses: list[str], conditions: str) -> Path:
    path = tmp_path / "monitor.yaml"
    path.write_text(
        f"name: m\nnetwork: mainnet\naddresses: {json.dumps(addresses)}\n"
        f"abi: {FIXTURES / 'abi' / 'ERC20.abi.json'}\n{conditions}"
    )
    return path


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vigil", "monitors", "test", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
    )


def matches(*args: str | Path) -> list[dict[str, Any]]:
    done = run(*args, "--format", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def usdt_transfer_logs() -> list[tuple[str, int]]:
    return [
        (r["transactionHash"], int(log["data"], 16))
        for r in load_json(RECEIPTS)
        for log in r["logs"]
        if log["address"] == USDT and log["topics"][0] == TRANSFER
    ]


def test_usdt_transfer_monitor_finds_every_usdt_transfer_log(tmp_path: Path) -> None:
    path = monitor(tmp_path, [USDT], "conditions:\n  events:\n    - signature: Transfer\n")
    found = matches(path, "--blocks", BLOCK, "--receipts", RECEIPTS)
    expected = usdt_transfer_logs()
    assert len(expected) == 45
    reasons = [(m["hash"], int(r["params"]["value"])) for m in found for r in m["matchReasons"]]
    assert sorted(reasons) == sorted(expected)
    assert {m["hash"] for m in found} == {h for h, _ in expected}
    first = found[0]
    assert set(first) >= {
        "hash",
        "blockNumber",
        "blockHash",
        "matchReasons",
        "matchedAddresses",
        "matchedChecksumAddresses",
        "monitor",
    }
    assert set(first["matchReasons"][0]) == {
        "type",
        "address",
        "signature",
        "condition",
        "args",
        "params",
    }
    assert first["monitor"]["name"] == "m"


def test_an_expression_on_value_filters(tmp_path: Path) -> None:
    path = monitor(
        tmp_path,
        [USDT],
        "conditions:\n  events:\n    - signature: Transfer\n"
        "      expression: value >= 1000000000\n",
    )
    found = matches(path, "--blocks", BLOCK, "--receipts", RECEIPTS)
    expected = [(h, v) for h, v in usdt_transfer_logs() if v >= 10**9]
    reasons = [(m["hash"], int(r["params"]["value"])) for m in found for r in m["matchReasons"]]
    assert sorted(reasons) == sorted(expected) and 0 < len(expected) < 45


def test_failed_status_finds_exactly_the_failed_transactions(tmp_path: Path) -> None:
    receipts = load_json(RECEIPTS)
    failed = {r["transactionHash"]: r for r in receipts if r["status"] == "0x0"}
    addresses = sorted({r["to"] for r in failed.values()})
    path = monitor(tmp_path, addresses, 'conditions:\n  transaction: status == "failed"\n')
    found = matches(path, "--blocks", BLOCK, "--receipts", RECEIPTS)
    assert {m["hash"] for m in found} == set(failed)
    # the same addresses with success: every other transaction touching them
    touching = {
        r["transactionHash"]
        for r in receipts
        if r["to"] in addresses
        or r["from"] in addresses
        or any(log["address"] in addresses for log in r["logs"])
    }
    path.write_text(path.read_text().replace('"failed"', '"success"'))
    succeeded = matches(path, "--blocks", BLOCK, "--receipts", RECEIPTS)
    assert {m["hash"] for m in succeeded} == touching - set(failed)


def test_block_483920_agrees_with_ethereum_etl(tmp_path: Path) -> None:
    etl = MAINNET / "etl"
    raw = load_json(etl / "483920.block.rpc.json")["result"]
    receipts_file = tmp_path / "receipts.json"
    receipts_file.write_text(
        json.dumps(
            [
                load_json(etl / f"web3_response.eth_getTransactionReceipt_{tx['hash']}.json")[
                    "result"
                ]
                for tx in raw["transactions"]
            ]
        )
    )
    expected = list(csv.DictReader((etl / "483920.expected_token_transfers.csv").open()))
    tokens = sorted({row["token_address"] for row in expected})
    path = monitor(tmp_path, tokens, "conditions:\n  events:\n    - signature: Transfer\n")
    # the raw JSON-RPC response file is accepted as it is
    found = matches(path, "--blocks", etl / "483920.block.rpc.json", "--receipts", receipts_file)
    transfers = sorted(
        (r["params"]["from"].lower(), r["params"]["to"].lower(), r["params"]["value"], m["hash"])
        for m in found
        for r in m["matchReasons"]
    )
    assert transfers == sorted(
        (row["from_address"], row["to_address"], row["value"], row["transaction_hash"])
        for row in expected
    )


def test_table_output_and_bad_input(tmp_path: Path) -> None:
    path = monitor(tmp_path, [USDT], "conditions:\n  events:\n    - signature: Transfer\n")
    table = run(path, "--blocks", BLOCK, "--receipts", RECEIPTS)
    assert table.returncode == 0 and "m:" in table.stdout and "match(es)" in table.stdout
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    done = run(path, "--blocks", bad)
    assert done.returncode == 2 and str(bad) in done.stderr and "not JSON" in done.stderr
    done = run(path)
    assert done.returncode == 2 and "give either --blocks" in done.stderr
    path.write_text(path.read_text().replace("Transfer\n", "Transfered\n"))
    done = run(path, "--blocks", BLOCK)
    assert done.returncode == 2 and "conditions.events[0].signature" in done.stderr


def test_an_event_monitor_over_blocks_without_receipts_is_refused_not_silently_empty(
    tmp_path: Path,
) -> None:
    events = monitor(tmp_path, [USDT], "conditions:\n  events:\n    - signature: Transfer\n")
    refused = run(events, "--blocks", BLOCK)
    assert refused.returncode == 2 and refused.stdout == ""
    assert "selects events, which are in receipts" in refused.stderr
    assert "--receipts FILE" in refused.stderr and "Traceback" not in refused.stderr
    status = tmp_path / "status"
    status.mkdir()
    failed = monitor(status, [USDT], "conditions:\n  transaction: status == 'failed'\n")
    warned = run(failed, "--blocks", BLOCK, "--format", "json")
    assert warned.returncode == 0 and json.loads(warned.stdout) == []
    assert "warning:" in warned.stderr and "reads the receipt" in warned.stderr


def test_preview_shows_each_channels_message_for_a_real_match(tmp_path: Path) -> None:
    import os

    from tests.markdown_v2 import parse

    (tmp_path / "monitors").mkdir()
    (tmp_path / "channels").mkdir()
    (tmp_path / "vigil.yaml").write_text(
        "networks:\n  mainnet:\n    chain_id: 1\n    rpc_urls: ['http://127.0.0.1:9']\n"
    )
    (tmp_path / "monitors" / "usdt.yaml").write_text(
        f"name: USDT (big)\nnetwork: mainnet\naddresses: ['{USDT}']\nchannels: [tg, mail]\n"
        f"abi: {FIXTURES / 'abi' / 'ERC20.abi.json'}\n"
        "conditions:\n  events:\n    - signature: Transfer\n"
        "message:\n  subject: 'moved {{ matchReasons.0.params.value }}'\n"
        "  body: '**{{ monitor.name }}** _moved_ {{ matchReasons.0.params.value }}'\n"
    )
    (tmp_path / "channels" / "tg.yaml").write_text(
        "alias: tg\ntype: telegram\nbot_token_secret: t\nchat_id: 1\n"
    )
    (tmp_path / "channels" / "mail.yaml").write_text(
        "alias: mail\ntype: email\nhost: h\nsender: a@b.co\nrecipients: c@d.co\n"
    )

    def preview(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "vigil", "monitors", "preview", "usdt", *args],
            env={**os.environ, "VIGIL_PROJECT_DIR": str(tmp_path)},
            capture_output=True,
            text=True,
            check=False,
        )

    files = ["--blocks", str(BLOCK), "--receipts", str(RECEIPTS)]
    done = preview(*files, "--match", "2", "--format", "json")
    assert done.returncode == 0, done.stderr
    logs = usdt_transfer_logs()  # from the raw receipts: the second transaction's first log
    second_tx = list(dict.fromkeys(h for h, _ in logs))[1]
    second = next(value for h, value in logs if h == second_tx)
    tg, mail = json.loads(done.stdout)
    assert (tg["channel"], mail["channel"]) == ("tg", "mail")
    text, _ = parse(tg["sends"]["text"])  # parses as Telegram would
    assert text == f"USDT (big) moved {second}"
    assert tg["sends"]["text"].startswith("*USDT \\(big\\)* _moved_")
    assert mail["sends"]["subject"] == f"moved {second}"
    assert f"<b>USDT (big)</b> <i>moved</i> {second}" in mail["sends"]["html"]
    shown = preview(*files, "--channel", "tg")
    assert shown.returncode == 0 and "── tg (telegram) ──" in shown.stdout
    for wrong, says in [
        (["--channel", "nope"], "--channel: no channel 'nope'"),
        (["--match", "99"], f"--match 99: monitor 'usdt' matched {len(set(h for h, _ in logs))} "),
        (["--format", "xml"], "--format: expected text or json"),
    ]:
        failed = preview(*files, *wrong)
        assert failed.returncode == 2 and says in failed.stderr, failed.stderr
        assert "Traceback" not in failed.stderr


def test_events_carry_the_monitors_abi(tmp_path: Path) -> None:
    path = monitor(tmp_path, [USDT], "conditions:\n  events:\n    - signature: Transfer\n")
    [first, *_] = matches(path, "--blocks", BLOCK, "--receipts", RECEIPTS)
    erc20 = load_json(FIXTURES / "abi" / "ERC20.abi.json")
    abi = erc20["abi"] if isinstance(erc20, dict) else erc20
    assert first["monitor"]["abi"] == abi and first["sentinel"]["abi"] == abi
