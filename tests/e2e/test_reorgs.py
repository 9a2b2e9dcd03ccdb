"""Reorgs that never lie: across a restart of the stack, and while the worker lags or stalls.

Tx A is mined, then tx B; a 3-deep reorg replaces B's block and the two above it with a
chain carrying tx C. Whatever the timing: A and C are delivered once each; B is delivered
at most once and, if it was, retracted exactly once; history marks the orphaned blocks and
B's match retracted and has every canonical block live exactly once.
"""

import os
import signal
import time
from typing import Any

import pytest

from tests.e2e.stack import LARGE, Running
from vigil.stack.supervisor import Stack
from vigil.testing import wait_for

pytestmark = pytest.mark.e2e


def events(running: Running) -> list[dict[str, Any]]:
    return [e for post in running.receiver.received for e in post.json()["events"]]


def live(running: Running, tx_hash: str) -> list[dict[str, Any]]:
    return [e for e in events(running) if e["type"] != "RETRACTION" and e["hash"] == tx_hash]


def retractions(running: Running, match_id: str) -> list[dict[str, Any]]:
    return [e for e in events(running) if e["type"] == "RETRACTION" and e["id"] == match_id]


def tx_of_block(running: Running, number: int) -> str:
    block = running.anvil.rpc("eth_getBlockByNumber", hex(number), False)
    [tx_hash] = block["transactions"]
    return str(tx_hash)


def block_hashes(running: Running, first: int, last: int) -> list[str]:
    return [
        running.anvil.rpc("eth_getBlockByNumber", hex(n), False)["hash"]
        for n in range(first, last + 1)
    ]


def reorganise(running: Running, snapshot: str, fork: int) -> str:
    """Replace the blocks above ``fork`` with a longer chain whose first block carries C."""
    anvil = running.anvil
    anvil.rpc("evm_revert", snapshot)
    stamp = int(anvil.rpc("eth_getBlockByNumber", hex(fork), False)["timestamp"], 16)
    anvil.rpc("evm_setNextBlockTimestamp", hex(stamp + 1000))
    c_block = running.mine_transfers(LARGE + 2)
    anvil.rpc("anvil_mine", hex(3))
    return tx_of_block(running, c_block)


def check_outcome(
    running: Running, a: str, b: str, c: str, orphaned: list[str], first: int
) -> None:
    """The promise of the module docstring, waited for (history settles a little later)."""
    wait_for(lambda: running.stack.check() or live(running, c), 120, "C delivered")
    b_sent = live(running, b)
    assert len(b_sent) <= 1
    if b_sent:
        wait_for(lambda: retractions(running, b_sent[0]["id"]), 60, "B's retraction")
    time.sleep(3)  # nothing more may follow
    assert len(live(running, a)) == 1 and len(live(running, c)) == 1
    assert len(b_sent) == len(live(running, b))
    assert len(retractions(running, b_sent[0]["id"]) if b_sent else []) == len(b_sent)
    head = int(running.anvil.rpc("eth_blockNumber"), 16)
    canonical = block_hashes(running, first, head)
    quoted = ", ".join(f"'{h}'" for h in orphaned)

    def history() -> list[list[Any]] | None:
        rows = running.sql(
            "SELECT transaction_hash, retracted FROM matches FINAL ORDER BY block_number, retracted"
        )
        blocks = running.sql(
            f"SELECT hash, retracted FROM blocks FINAL WHERE number >= {first} ORDER BY number"
        )
        matches = {(tx, flag) for tx, flag in rows}
        live_blocks = [h for h, flag in blocks if flag == 0]
        dead_blocks = sorted(h for h, flag in blocks if flag == 1)
        settled = (
            (a, 0) in matches
            and (c, 0) in matches
            and (b, 0) not in matches
            and live_blocks == canonical
            and dead_blocks == sorted(orphaned)
        )
        return [[1]] if settled else None

    assert wait_for(history, 120, f"history exact: live blocks {first}..{head}, {quoted} retracted")


def start_chain(running: Running) -> tuple[str, str, str, int, list[str]]:
    """Mine A, take a snapshot, mine B and two blocks on it: (A, B, snapshot, fork, orphaned)."""
    a_block = running.mine_transfers(LARGE)
    snapshot = running.anvil.rpc("evm_snapshot")
    b_block = running.mine_transfers(LARGE + 1)
    running.anvil.rpc("anvil_mine", hex(2))
    orphaned = block_hashes(running, b_block, b_block + 2)
    return tx_of_block(running, a_block), tx_of_block(running, b_block), snapshot, a_block, orphaned


def test_a_reorg_while_vigil_is_stopped_is_retracted_after_it_starts(running: Running) -> None:
    first = int(running.anvil.rpc("eth_blockNumber"), 16) + 1
    a, b, snapshot, fork, orphaned = start_chain(running)
    wait_for(lambda: running.stack.check() or live(running, b), 60, "B delivered")
    running.stack.stop()
    c = reorganise(running, snapshot, fork)
    restarted = Stack(running.stack.settings, say=print)
    running.stack = restarted
    try:
        restarted.start()
        check_outcome(running, a, b, c, orphaned, first)
        assert len(live(running, b)) == 1  # delivered before the stop, retracted after
    finally:
        restarted.stop()


@pytest.mark.parametrize("pause", [0.8, 14.0], ids=["lag", "stall-past-the-session"])
def test_a_reorg_while_the_worker_lags_or_stalls(running: Running, pause: float) -> None:
    """SIGSTOP the worker while B is mined and orphaned; a pause past the 10 s session
    timeout makes it rejoin its group and read blocks and retractions again."""
    first = int(running.anvil.rpc("eth_blockNumber"), 16) + 1
    a_block = running.mine_transfers(LARGE)
    a = tx_of_block(running, a_block)
    wait_for(lambda: running.stack.check() or live(running, a), 60, "A delivered")
    worker = running.stack.children["worker"]
    os.kill(worker.pid, signal.SIGSTOP)
    try:
        snapshot = running.anvil.rpc("evm_snapshot")
        b_block = running.mine_transfers(LARGE + 1)
        running.anvil.rpc("anvil_mine", hex(2))
        orphaned = block_hashes(running, b_block, b_block + 2)
        b = tx_of_block(running, b_block)
        time.sleep(0.6)  # the ingester emits B's blocks
        c = reorganise(running, snapshot, a_block)
        time.sleep(max(0.0, pause - 0.6))
    finally:
        os.kill(worker.pid, signal.SIGCONT)
    check_outcome(running, a, b, c, orphaned, first)
