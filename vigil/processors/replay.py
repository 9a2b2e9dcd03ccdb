"""Monitors over recorded or fetched blocks, without Kafka: `vigil monitors test`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from vigil.config.loader import LoadedMonitor
from vigil.errors import ConfigError
from vigil.processors.matching import Matcher, compile_monitor
from vigil.schemas.events import match_event
from vigil.schemas.evm import block_record
from vigil.schemas.records import Block, Match

REPLAYED = ":replay"  # the suffix of a replayed batch's id (`vigil replay --notify`)


def _read_json(path: Path, what: str) -> Any:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} file: {exc.strerror}", file=str(path)) from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"the {what} file is not JSON: {exc}", file=str(path)) from exc
    # a raw JSON-RPC response is accepted as it is
    return data["result"] if isinstance(data, dict) and "result" in data else data


def load_blocks(
    blocks_file: Path, receipts_file: Path | None
) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Blocks in ``eth_getBlockByNumber(…, true)`` shape with the receipts that belong to them."""
    blocks = _read_json(blocks_file, "blocks")
    blocks = blocks if isinstance(blocks, list) else [blocks]
    receipts: list[dict[str, Any]] = []
    if receipts_file is not None:
        loaded = _read_json(receipts_file, "receipts")
        receipts = loaded if isinstance(loaded, list) else [loaded]
    for i, block in enumerate(blocks):
        if not isinstance(block, dict) or "transactions" not in block or "hash" not in block:
            raise ConfigError(
                "expected a block in eth_getBlockByNumber(…, true) shape",
                file=str(blocks_file),
                obj=f"block {i}",
            )
    return [(block, receipts) for block in blocks]


def chain_id_of(pairs: list[tuple[dict[str, Any], list[dict[str, Any]]]]) -> int:
    """The chain id the blocks' transactions carry (0 when none says)."""
    for block, _ in pairs:
        for tx in block["transactions"]:
            if isinstance(tx, dict) and tx.get("chainId"):
                return int(tx["chainId"], 16)
    return 0


def run_monitor(
    monitor: LoadedMonitor,
    pairs: list[tuple[dict[str, Any], list[dict[str, Any]]]],
    *,
    require_receipts: bool = False,
    keep: Callable[[list[Match]], list[Match]] | None = None,
) -> list[dict[str, Any]]:
    """The match events (the body webhooks and tasks receive) of ``monitor`` over the blocks;
    ``keep`` (the monitor's custom filter) picks from each block's matches."""
    chain_id = chain_id_of(pairs)
    network = monitor.config.network or ""
    records = [
        block_record(network, chain_id, block, receipts, require_receipts=require_receipts)
        for block, receipts in pairs
    ]
    return run_monitor_on(monitor, records, chain_id, keep=keep)


def run_monitor_on(
    monitor: LoadedMonitor,
    records: Iterable[Block],
    chain_id: int,
    *,
    keep: Callable[[list[Match]], list[Match]] | None = None,
    only_tx: str | None = None,
) -> list[dict[str, Any]]:
    """The match events of ``monitor`` over Block records (fetched, or read from history);
    ``only_tx``: just that transaction's."""
    compiled = compile_monitor(monitor, chain_id)
    compiled.paused = False  # testing a paused monitor before resuming it is the point
    matcher = Matcher([compiled])
    events: list[dict[str, Any]] = []
    for record in records:
        found = matcher.match_block(record)
        if only_tx is not None:
            found = [m for m in found if m["hash"] == only_tx]
        if keep is not None and found:
            found = keep(found)
        events.extend(match_event(match, monitor.abi) for match in found)
    return events
