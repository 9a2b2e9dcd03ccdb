"""Hold until deep enough, release, retract after a reorg: the worker's confirmation rules."""

from typing import Any

from vigil.processors import confirmation
from vigil.processors.confirmation import RECENT_BLOCKS


def batch(monitor: str, block_hash: str = "0xb1") -> Any:
    return {
        "id": f"{monitor}:mainnet:{block_hash}",
        "monitorId": monitor,
        "network": "mainnet",
        "blockNumber": 10,
        "blockHash": block_hash,
        "matches": [],
        "retracted": False,
        "channel": None,
        "redelivery": False,
    }


def test_a_monitor_without_extra_depth_sends_now_one_with_depth_waits_for_it() -> None:
    split = confirmation.split_by_depth(
        [batch("now"), batch("deep")], {"deep": 3}, number=10, block_hash="0xb1"
    )
    assert [b["monitorId"] for b in split.now] == ["now"]
    assert split.hold == [[13, "0xb1", "deep"]]


def test_a_held_batch_is_released_by_the_first_block_at_its_height() -> None:
    held = [[13, "0xb1", "deep"], [15, "0xb3", "deeper"]]
    assert confirmation.release(held, 12).due == []
    released = confirmation.release(held, 13)
    assert released.due == [[13, "0xb1", "deep"]]
    assert released.waiting == [[15, "0xb3", "deeper"]]
    assert held == [[13, "0xb1", "deep"], [15, "0xb3", "deeper"]]  # arguments are not changed
    remembered = {"0xb1": [batch("now"), batch("deep")]}
    assert confirmation.due_batches(released.due, remembered) == [batch("deep")]


def test_a_retraction_drops_held_batches_and_retracts_what_the_block_had() -> None:
    result = confirmation.orphan(
        orphans=[],
        held=[[13, "0xb1", "deep"], [14, "0xb2", "other"]],
        remembered=[batch("now"), batch("deep")],
        number=10,
        block_hash="0xb1",
    )
    assert result.orphans == [[10, "0xb1"]]
    assert result.held == [[14, "0xb2", "other"]]  # never sent, so never released
    assert [(b["monitorId"], b["retracted"]) for b in result.retract] == [
        ("now", True),
        ("deep", True),
    ]
    again = confirmation.orphan(result.orphans, result.held, [], 10, "0xb1")
    assert again.orphans == [[10, "0xb1"]] and again.retract == []
    assert confirmation.is_orphaned(again.orphans, "0xb1")
    assert not confirmation.is_orphaned(again.orphans, "0xb2")


def test_the_remembered_window_forgets_blocks_older_than_it() -> None:
    index: list[list[Any]] = []
    forgotten: list[str] = []
    for number in range(1, RECENT_BLOCKS + 3):
        result = confirmation.remember(index, number, f"0x{number:x}", found=number % 2 == 1)
        index, forgotten = result.index, forgotten + result.forgotten
    assert forgotten == ["0x1"]  # block 1 falls out when block RECENT_BLOCKS + 1 arrives
    assert index[0] == [3, "0x3"] and index[-1] == [RECENT_BLOCKS + 1, f"0x{RECENT_BLOCKS + 1:x}"]
    assert confirmation.within_window([[1, "a"], [200, "b"]], 257) == [[200, "b"]]
