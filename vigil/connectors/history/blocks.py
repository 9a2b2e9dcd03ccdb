"""Block records rebuilt from history (blocks, transactions, logs), for replays: the same
shape the ingester emits, so the worker's matcher runs on them unchanged.

Every query goes through ``ask(sql) -> rows`` (ClickHouse directly, or the running API's
read-only /sql), so values are selected as JSON-safe scalars: times as Unix seconds, 256-bit
numbers as decimal strings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any

from vigil.connectors.history.queries import ID
from vigil.schemas.records import Block, Log, Receipt, Transaction

Ask = Callable[[str], list[list[Any]]]

_BLOCKS = (
    "SELECT number, hash, parent_hash, toUnixTimestamp(timestamp), miner, gas_limit, gas_used, "
    "toString(base_fee_per_gas) FROM blocks FINAL WHERE network = '{network}' "
    "AND number BETWEEN {first} AND {last} AND retracted = 0 ORDER BY number"
)
_TRANSACTIONS = (
    "SELECT hash, block_number, block_hash, transaction_index, type, `from`, `to`, "
    "toString(value), nonce, input, gas, toString(gas_price), toString(max_fee_per_gas), "
    "toString(max_priority_fee_per_gas), status, gas_used, toString(effective_gas_price), "
    "contract_address, log_count FROM transactions FINAL WHERE network = '{network}' "
    "AND block_number BETWEEN {first} AND {last} AND retracted = 0{only} "
    "ORDER BY block_number, transaction_index"
)
_LOGS = (
    "SELECT block_hash, transaction_hash, log_index, address, topic0, topic1, topic2, topic3, "
    "data FROM logs FINAL WHERE network = '{network}' AND block_number BETWEEN {first} "
    "AND {last} AND retracted = 0{only} ORDER BY block_number, log_index"
)
# the transactions that touch one of the addresses: sent from or to one, or with a log of one
_TOUCHING = (
    "(`from` IN ({addresses}) OR `to` IN ({addresses}) OR hash IN (SELECT transaction_hash "
    "FROM logs WHERE network = '{network}' AND block_number BETWEEN {first} AND {last} "
    "AND address IN ({addresses})))"
)
MAX_PUSHED = 2_000  # addresses in one query at most (ClickHouse's max_query_size is 256 KiB)
_ADDRESS = re.compile(r"^0x[0-9a-f]{40}$")


@dataclass(frozen=True)
class Span:
    """The canonical blocks history holds for one network in [first, last]."""

    count: int
    first: int | None
    last: int | None
    transactions: int


def _network(network: str) -> str:
    if not ID.match(network):
        raise ValueError(f"expected a network name such as mainnet, got {network!r}")
    return network


def span(ask: Ask, network: str, first: int, last: int) -> Span:
    """How much of [first, last] history holds for ``network`` (canonical blocks)."""
    _network(network)
    [[count, low, high, txs]] = ask(
        "SELECT count(), min(number), max(number), sum(transaction_count) FROM blocks FINAL "
        f"WHERE network = '{network}' AND number BETWEEN {int(first)} AND {int(last)} "
        "AND retracted = 0"
    )
    count = int(count)
    return Span(count, int(low) if count else None, int(high) if count else None, int(txs or 0))


def offsets(ask: Ask, network: str, first: int, last: int) -> dict[int, tuple[int, int]]:
    """vigil's block → offset index: per chain.blocks partition, the first and last offset of
    the range's canonical blocks (blocks the sink stored before the index have none)."""
    _network(network)
    found = ask(
        "SELECT kafka_partition, min(kafka_offset), max(kafka_offset) FROM blocks FINAL "
        f"WHERE network = '{network}' AND number BETWEEN {int(first)} AND {int(last)} "
        "AND retracted = 0 AND kafka_offset >= 0 GROUP BY kafka_partition"
    )
    return {int(p): (int(low), int(high)) for p, low, high in found}


def canonical_hashes(ask: Ask, network: str, first: int, last: int) -> dict[int, str]:
    """Block number → hash of the canonical block history holds, over [first, last]."""
    _network(network)
    found = ask(
        f"SELECT number, hash FROM blocks FINAL WHERE network = '{network}' "
        f"AND number BETWEEN {int(first)} AND {int(last)} AND retracted = 0"
    )
    return {int(n): str(h) for n, h in found}


def _opt(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def read_blocks(
    ask: Ask,
    network: str,
    chain_id: int,
    first: int,
    last: int,
    page: int = 200,
    addresses: Collection[str] | None = None,
) -> Iterator[Block]:
    """The canonical Block records of ``network`` in [first, last], ``page`` blocks per
    query (three queries a page: blocks, transactions, logs).

    With ``addresses``, a block holds only the transactions that touch one of them (from,
    to, or a log's address), with all their logs: the others cannot match a monitor of those
    addresses, so ClickHouse leaves them out (the matcher's address index, pushed down)."""
    _network(network)
    only = ""
    if addresses is not None and len(addresses) <= MAX_PUSHED:
        listed = sorted({a.lower() for a in addresses})
        bad = [a for a in listed if not _ADDRESS.match(a)]
        if bad:
            raise ValueError(f"expected 0x-prefixed 40-hex-digit addresses, got {bad[0]!r}")
        only = ", ".join(f"'{a}'" for a in listed) or "''"
    for low in range(first, last + 1, page):
        high = min(last, low + page - 1)
        where = {"network": network, "first": int(low), "last": int(high), "only": ""}
        if only:
            touching = _TOUCHING.format(addresses=only, **where)
            where["only"] = f" AND {touching}"
            logs_where = {
                **where,
                "only": " AND transaction_hash IN (SELECT hash FROM transactions WHERE "
                f"network = '{network}' AND block_number BETWEEN {int(low)} AND {int(high)} "
                f"AND {touching})",
            }
        else:
            logs_where = where
        logs: dict[str, list[Log]] = {}
        for block_hash, tx_hash, index, address, *topics, data in ask(_LOGS.format(**logs_where)):
            logs.setdefault(f"{block_hash}:{tx_hash}", []).append(
                {
                    "address": address,
                    "topics": [t for t in topics if t is not None],
                    "data": data,
                    "logIndex": int(index),
                    "removed": False,
                }
            )
        transactions: dict[int, list[Transaction]] = {}
        for row in ask(_TRANSACTIONS.format(**where)):
            transactions.setdefault(int(row[1]), []).append(
                _transaction(network, chain_id, row, logs)
            )
        for number, block_hash, parent, stamp, miner, gas_limit, gas_used, base_fee in ask(
            _BLOCKS.format(**where)
        ):
            txs = [t for t in transactions.get(int(number), []) if t["blockHash"] == block_hash]
            for tx in txs:
                tx["blockTimestamp"] = int(stamp)
            yield {
                "network": network,
                "chainId": chain_id,
                "number": int(number),
                "hash": block_hash,
                "parentHash": parent,
                "timestamp": int(stamp),
                "miner": miner,
                "gasLimit": int(gas_limit),
                "gasUsed": int(gas_used),
                "baseFeePerGas": _opt(base_fee),
                "blobGasUsed": None,
                "excessBlobGas": None,
                "withdrawals": [],
                "transactions": txs,
            }


def _transaction(
    network: str, chain_id: int, row: list[Any], logs: dict[str, list[Log]]
) -> Transaction:
    (
        tx_hash,
        number,
        block_hash,
        index,
        kind,
        sender,
        to,
        value,
        nonce,
        data,
        gas,
        gas_price,
        max_fee,
        max_priority,
        status,
        gas_used,
        effective,
        created,
        log_count,
    ) = row
    receipt: Receipt | None = None
    if status is not None or int(gas_used) or int(log_count):
        receipt = {
            "status": None if status is None else int(status),
            "gasUsed": int(gas_used),
            "cumulativeGasUsed": 0,  # not kept in history
            "effectiveGasPrice": _opt(effective),
            "contractAddress": created,
            "logs": logs.get(f"{block_hash}:{tx_hash}", []),
        }
    return {
        "network": network,
        "chainId": chain_id,
        "hash": tx_hash,
        "blockNumber": int(number),
        "blockHash": block_hash,
        "blockTimestamp": 0,
        "transactionIndex": int(index),
        "type": int(kind),
        "from": sender,
        "to": to,
        "value": str(value),
        "nonce": int(nonce),
        "input": data,
        "gas": int(gas),
        "gasPrice": _opt(gas_price),
        "maxFeePerGas": _opt(max_fee),
        "maxPriorityFeePerGas": _opt(max_priority),
        "maxFeePerBlobGas": None,
        "blobVersionedHashes": [],
        "txChainId": None,
        "receipt": receipt,
        "internalCalls": [],  # traces are not kept in history
    }
