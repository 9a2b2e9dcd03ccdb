"""Replay throughput from history: 10,000 blocks through 100 monitors, read from ClickHouse
(chDB, the embedded engine) the way `vigil replay --source history` reads them.

The history is built from the recorded mainnet block 18,000,000 (94 transactions, 291
logs): stored once through the sink's own rows, then copied 9,999 times inside ClickHouse
with new block numbers and hashes (re-numbered copies: every block holds the same
transactions). The baseline, measured in the same run, is in-process matching of the same
block records already in memory: what a replay would do if reading cost nothing. Prints
blocks/s and tx/s for two monitor sets, and their ratio to the baseline; the last line is
JSON. Run with ``make bench`` (or ``python benchmarks/replay.py [BLOCKS]``).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.matching import hundred_monitors  # noqa: E402
from tests.helpers import recorded_block_18m  # noqa: E402
from vigil.connectors.history import rows  # noqa: E402
from vigil.connectors.history.blocks import read_blocks, span  # noqa: E402
from vigil.connectors.history.ddl import migrate  # noqa: E402
from vigil.connectors.history.query import connect, run_readonly  # noqa: E402
from vigil.processors.matching import Matcher  # noqa: E402

FIRST = 18_000_000


def build_history(client: Any, blocks: int) -> dict[str, Any]:
    """``blocks`` re-numbered copies of block 18,000,000, made inside ClickHouse."""
    block = recorded_block_18m()
    client.insert("blocks", [rows.block_row(block)], column_names=rows.BLOCK_COLUMNS)
    tx_rows = [rows.transaction_rows(tx) for tx in block["transactions"]]
    client.insert("transactions", [r for r, _ in tx_rows], column_names=rows.TX_COLUMNS)
    client.insert(
        "logs", [log for _, logs in tx_rows for log in logs], column_names=rows.LOG_COLUMNS
    )
    client.command(_copy_blocks(blocks))
    client.command(_copy("transactions", blocks))
    client.command(_copy("logs", blocks))
    return block


def _copy_blocks(blocks: int) -> str:
    return (
        "INSERT INTO blocks (network, number, hash, parent_hash, timestamp, miner, gas_limit, "
        "gas_used, base_fee_per_gas, transaction_count) SELECT network, b.number + c.number, "
        "concat(substring(hash, 1, 58), lower(leftPad(hex(c.number), 8, '0'))), parent_hash, "
        "timestamp + 12 * c.number, miner, gas_limit, gas_used, base_fee_per_gas, "
        f"transaction_count FROM blocks AS b CROSS JOIN numbers(1, {blocks - 1}) AS c "
        f"WHERE b.number = {FIRST}"
    )


def _copy(table: str, blocks: int) -> str:
    suffix = "lower(leftPad(hex(c.number), 8, '0'))"
    block_hash = f"concat(substring(block_hash, 1, 58), {suffix})"
    if table == "transactions":
        return (
            "INSERT INTO transactions (network, hash, block_number, block_hash, block_timestamp, "
            "transaction_index, type, `from`, `to`, value, nonce, input, gas, gas_price, "
            "max_fee_per_gas, max_priority_fee_per_gas, status, gas_used, effective_gas_price, "
            "contract_address, log_count) SELECT network, "
            f"concat(substring(hash, 1, 58), {suffix}), block_number + c.number, {block_hash}, "
            "block_timestamp + 12 * c.number, transaction_index, type, `from`, `to`, value, "
            "nonce, input, gas, gas_price, max_fee_per_gas, max_priority_fee_per_gas, status, "
            "gas_used, effective_gas_price, contract_address, log_count FROM transactions "
            f"CROSS JOIN numbers(1, {blocks - 1}) AS c WHERE block_number = {FIRST}"
        )
    return (
        "INSERT INTO logs (network, block_number, block_hash, block_timestamp, "
        "transaction_hash, log_index, address, topic0, topic1, topic2, topic3, data) SELECT "
        f"network, block_number + c.number, {block_hash}, block_timestamp + 12 * c.number, "
        f"concat(substring(transaction_hash, 1, 58), {suffix}), log_index, address, topic0, "
        f"topic1, topic2, topic3, data FROM logs CROSS JOIN numbers(1, {blocks - 1}) AS c "
        f"WHERE block_number = {FIRST}"
    )


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with tempfile.TemporaryDirectory() as tmp:
        client = connect(f"chdb://{tmp}/clickhouse", "bench")
        migrate(client)
        started = time.perf_counter()
        block = build_history(client, count)
        built = time.perf_counter() - started
        txs = run_readonly(client, "SELECT count() FROM transactions").rows[0][0]
        print(f"history: {count:,} blocks, {txs:,} transactions built in {built:.1f} s (chDB)")

        def ask(sql: str) -> list[list[Any]]:
            return run_readonly(client, sql).rows

        folder = Path(tmp) / "monitors"
        folder.mkdir()
        cases = list(hundred_monitors(folder, block).items())[::-1]  # with events first
        figures: dict[str, dict[str, float]] = {}
        print(f"\n{'case':38} {'blocks/s':>9} {'tx/s':>9} {'in-process tx/s':>16} {'ratio':>6}")
        for name, matcher in cases:
            replayed = _replay(matcher, ask, count)
            in_memory = _in_process(matcher, ask, min(count, 500))
            ratio = replayed["tx_s"] / in_memory
            figures[name] = {**replayed, "in_process_tx_s": in_memory, "ratio": ratio}
            print(
                f"{name:38} {replayed['blocks_s']:>9,.0f} {replayed['tx_s']:>9,.0f} "
                f"{in_memory:>16,.0f} {ratio:>5.2f}x"
            )
    main_case = figures["100 monitors, Transfer + condition"]
    address = figures["100 monitors, address only"]
    print(
        json.dumps(
            {
                "blocks": count,
                "blocks_s": round(main_case["blocks_s"]),
                "tx_s": round(main_case["tx_s"]),
                "in_process_tx_s": round(main_case["in_process_tx_s"]),
                "ratio": round(main_case["ratio"], 2),
                "address_only_tx_s": round(address["tx_s"]),
                "address_only_ratio": round(address["ratio"], 2),
                "monitors": 100,
            }
        )
    )


def _replay(matcher: Matcher, ask: Any, count: int) -> dict[str, float]:
    """Blocks read from history and matched, as `vigil replay --source history` does: only
    the transactions that touch a monitor's address come out of ClickHouse."""
    addresses = {a for m in matcher.monitors for a in m.addresses}
    started = time.perf_counter()
    txs = span(ask, "mainnet", FIRST, FIRST + count - 1).transactions
    blocks = matched = 0
    for record in read_blocks(ask, "mainnet", 1, FIRST, FIRST + count - 1, addresses=addresses):
        matched += len(matcher.match_block(record))
        blocks += 1
    seconds = time.perf_counter() - started
    assert blocks == count, f"read {blocks} of {count} blocks"
    return {"blocks_s": blocks / seconds, "tx_s": txs / seconds, "matches": matched}


def _in_process(matcher: Matcher, ask: Any, count: int) -> float:
    """Matching alone over the same block records, already in memory."""
    records = list(read_blocks(ask, "mainnet", 1, FIRST, FIRST + count - 1))
    started = time.perf_counter()
    txs = 0
    for record in records:
        matcher.match_block(record)
        txs += len(record["transactions"])
    return txs / (time.perf_counter() - started)


if __name__ == "__main__":
    main()
