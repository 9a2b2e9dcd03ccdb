"""Blocks rebuilt from history match as the ingested ones did: the recorded mainnet block
18,000,000 stored through the sink's rows, read back and run through monitors."""

from pathlib import Path
from typing import Any

import pytest

from tests.helpers import FIXTURES, USDC, USDT, recorded_block_18m
from vigil.config.loader import load_monitor_file
from vigil.connectors.history import rows
from vigil.connectors.history.blocks import read_blocks, span
from vigil.connectors.history.ddl import migrate
from vigil.connectors.history.query import run_readonly
from vigil.processors.matching import Matcher, compile_monitor

pytestmark = pytest.mark.integration

ABI = FIXTURES / "abi" / "ERC20.abi.json"


def _monitor(folder: Path, name: str, address: str, conditions: str) -> Any:
    path = folder / f"{name}.yaml"
    path.write_text(
        f"name: {name}\nnetwork: mainnet\naddresses: ['{address}']\nabi: {ABI}\n{conditions}"
    )
    return compile_monitor(load_monitor_file(path), 1)


def test_a_block_read_back_from_history_gives_the_same_matches(
    clickhouse: Any, tmp_path: Path
) -> None:
    migrate(clickhouse)
    block = recorded_block_18m()
    clickhouse.insert("blocks", [rows.block_row(block)], column_names=rows.BLOCK_COLUMNS)
    tx_rows = [rows.transaction_rows(tx) for tx in block["transactions"]]
    clickhouse.insert("transactions", [r for r, _ in tx_rows], column_names=rows.TX_COLUMNS)
    logs = [log for _, logs in tx_rows for log in logs]
    clickhouse.insert("logs", logs, column_names=rows.LOG_COLUMNS)

    def ask(sql: str) -> list[list[Any]]:
        return run_readonly(clickhouse, sql).rows

    transfers = (
        "conditions:\n  events:\n    - signature: Transfer(address,address,uint256)\n"
        "      expression: value > 1000000000\n"
        "  transaction: status == 1 and gasUsed > 21000\n"
    )
    matcher = Matcher(
        [
            _monitor(tmp_path, "usdc", USDC, transfers),
            _monitor(tmp_path, "usdt", USDT, transfers),
            _monitor(tmp_path, "touched", USDT, ""),
        ]
    )
    live = matcher.match_block(block)
    assert len(live) > 4  # the test means something

    [whole] = read_blocks(ask, "mainnet", 1, 18_000_000, 18_000_000)
    assert len(whole["transactions"]) == len(block["transactions"])
    [pushed] = read_blocks(ask, "mainnet", 1, 18_000_000, 18_000_000, addresses={USDC, USDT})
    assert 0 < len(pushed["transactions"]) < len(block["transactions"])  # the others left out
    for rebuilt in (whole, pushed):
        again = matcher.match_block(rebuilt)
        assert [m["id"] for m in again] == [m["id"] for m in live]
        assert [m["matchReasons"] for m in again] == [m["matchReasons"] for m in live]
        assert [m["matchedAddresses"] for m in again] == [m["matchedAddresses"] for m in live]
    held = span(ask, "mainnet", 17_999_990, 18_000_010)
    assert (held.count, held.first, held.last, held.transactions) == (1, 18_000_000, 18_000_000, 94)
    with pytest.raises(ValueError, match="expected 0x-prefixed"):
        list(read_blocks(ask, "mainnet", 1, 18_000_000, 18_000_000, addresses={"USDC"}))
    with pytest.raises(ValueError, match="expected a network name"):
        span(ask, "mainnet' OR 1=1 --", 1, 2)
