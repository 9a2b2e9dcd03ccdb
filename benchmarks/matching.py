"""Matcher throughput on the recorded mainnet block 18,000,000 (94 transactions, 291 logs).

Prints transactions/s for 1, 10 and 100 monitors, and the ratio to a naive baseline measured
in the same run: web3's per-receipt ``process_receipt`` decoding of the same event for the
one-monitor case. Run with ``make bench``.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import FIXTURES, MAINNET, USDC, load_json, recorded_block_18m  # noqa: E402
from vigil.config.loader import load_monitor_file  # noqa: E402
from vigil.processors.matching import Matcher, compile_monitor  # noqa: E402

ABI = FIXTURES / "abi" / "ERC20.abi.json"


def rate(work: Callable[[], Any], items: int, seconds: float = 2.0) -> float:
    """Items per second of ``work`` over about ``seconds``."""
    work()  # warm caches
    runs, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        work()
        runs += 1
    return runs * items / (time.perf_counter() - started)


def monitors(folder: Path, addresses: list[str], conditions: str) -> Matcher:
    folder.mkdir(parents=True, exist_ok=True)
    compiled = []
    for i, address in enumerate(addresses):
        path = folder / f"m{i}.yaml"
        path.write_text(
            f"name: m{i}\nnetwork: mainnet\naddresses: ['{address}']\nabi: {ABI}\n{conditions}"
        )
        compiled.append(compile_monitor(load_monitor_file(path), 1))
    return Matcher(compiled)


TRANSFER = (
    "conditions:\n  events:\n    - signature: Transfer(address,address,uint256)\n"
    "      expression: value > 1000000000\n"
)


def hundred_monitors(folder: Path, block: dict[str, Any]) -> dict[str, Matcher]:
    """100 monitors over the block's active contracts (then quiet addresses): address only,
    and with the Transfer event and a condition."""
    active = sorted(
        {log["address"] for tx in block["transactions"] for log in tx["receipt"]["logs"]}
    )
    addresses = (active + [f"0x{i:040x}" for i in range(1, 101)])[:100]
    return {
        "100 monitors, address only": monitors(folder, addresses, ""),
        "100 monitors, Transfer + condition": monitors(folder, addresses, TRANSFER),
    }


def baseline(receipts: list[dict[str, Any]]) -> Callable[[], int]:
    """What a script would do with web3 alone: decode every receipt for the USDC Transfer."""
    from web3 import Web3
    from web3.logs import DISCARD

    w3 = Web3()
    artifact = json.loads(ABI.read_text())
    abi = artifact["abi"] if isinstance(artifact, dict) else artifact
    event = w3.eth.contract(address=Web3.to_checksum_address(USDC), abi=abi).events.Transfer()

    def work() -> int:
        found = 0
        for receipt in receipts:
            for decoded in event.process_receipt(receipt, errors=DISCARD):
                if decoded["address"].lower() == USDC and decoded["args"]["value"] > 10**9:
                    found += 1
        return found

    return work


def main() -> None:
    block = recorded_block_18m()
    count = len(block["transactions"])
    raw_receipts = load_json(MAINNET / "18000000.receipts.json")
    from web3 import Web3

    # web3 wants formatted receipts (ints, HexBytes); format once, outside the timing
    from web3._utils.method_formatters import get_result_formatters
    from web3._utils.rpc_abi import RPC

    fmt = get_result_formatters(RPC.eth_getTransactionReceipt, Web3().manager)
    receipts = [fmt(r) for r in raw_receipts]

    active = sorted(
        {log["address"] for tx in block["transactions"] for log in tx["receipt"]["logs"]}
    )
    base = rate(baseline(receipts), count)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cases = [
            ("1 monitor, USDC Transfer + condition", monitors(folder, [USDC], TRANSFER)),
            (
                "10 monitors, active tokens, Transfer + condition",
                monitors(folder, active[:10], TRANSFER),
            ),
            *hundred_monitors(folder, block).items(),
        ]
        print(
            f"block 18,000,000: {count} transactions, "
            f"{sum(len(t['receipt']['logs']) for t in block['transactions'])} logs; one core\n"
        )
        print(f"{'case':52} {'tx/s':>10} {'vs baseline':>12}")
        print(
            f"{'baseline: web3 process_receipt, 1 event, same filter':52} {base:>10,.0f} "
            f"{1.0:>11.1f}x"
        )
        figures = {}
        for name, matcher in cases:
            tps = rate(lambda m=matcher: m.match_block(block), count)
            figures[name] = tps
            print(f"{name:52} {tps:>10,.0f} {tps / base:>11.1f}x")
        # growth: many monitors over 10,000 distinct addresses (the block's active
        # contracts among them), address only; the process's memory once they are loaded
        distinct = (active + [f"0x{i:040x}" for i in range(1, 10_001)])[:10_000]
        for many in (1_000, 10_000):
            matcher = monitors(folder / str(many), distinct[:: 10_000 // many][:many], "")
            name = f"{many:,} monitors, address only"
            tps = rate(lambda m=matcher: m.match_block(block), count)
            figures[name] = tps
            print(f"{name:52} {tps:>10,.0f} {tps / base:>11.1f}x")
        rss_mb = _rss_mb()
        print(f"\nmemory with 10,000 monitors loaded: {rss_mb:,.0f} MB resident")
    # the last line is machine-readable: 100 monitors, one core
    decode = figures["100 monitors, Transfer + condition"]
    print(
        json.dumps(
            {
                "address_only_tx_s": round(figures["100 monitors, address only"]),
                "decode_conditions_tx_s": round(decode),
                "baseline_tx_s": round(base),
                "ratio_to_baseline": round(decode / base, 2),
                "monitors": 100,
                "cores": 1,
                "address_only_1k_tx_s": round(figures["1,000 monitors, address only"]),
                "address_only_10k_tx_s": round(figures["10,000 monitors, address only"]),
                "rss_10k_mb": round(rss_mb),
            }
        )
    )


def _rss_mb() -> float:
    """This process's resident memory now (Linux)."""
    import os

    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


if __name__ == "__main__":
    main()
