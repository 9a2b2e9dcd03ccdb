"""JSON-RPC block and receipts → vigil's Block and Transaction records."""

from __future__ import annotations

from typing import Any

from vigil.errors import RpcError
from vigil.schemas.records import Block, InternalCall, Log, Receipt, Transaction

Traces = dict[str, list[InternalCall]]  # transaction hash → its internal calls


def _int(value: Any) -> int:
    return int(value, 16) if isinstance(value, str) else int(value)


def _opt_int(value: Any) -> int | None:
    return None if value is None else _int(value)


def _wei(value: Any) -> str | None:
    """A wei amount as a decimal string; None stays None."""
    return None if value is None else str(_int(value))


def _address(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) else None


def log_record(log: dict[str, Any]) -> Log:
    return {
        "address": log["address"].lower(),
        "topics": [t.lower() for t in log.get("topics", [])],
        "data": log.get("data", "0x"),
        "logIndex": _int(log["logIndex"]),
        "removed": bool(log.get("removed", False)),
    }


def receipt_record(receipt: dict[str, Any]) -> Receipt:
    status = receipt.get("status")
    return {
        # before Byzantium receipts carry a state root and no status: keep it absent
        "status": None if status is None else _int(status),
        "gasUsed": _int(receipt["gasUsed"]),
        "cumulativeGasUsed": _int(receipt["cumulativeGasUsed"]),
        "effectiveGasPrice": _wei(receipt.get("effectiveGasPrice")),
        "contractAddress": _address(receipt.get("contractAddress")),
        "logs": [log_record(log) for log in receipt.get("logs", [])],
    }


def _call(frame: dict[str, Any], depth: int, call_type: str) -> InternalCall:
    return {
        "from": str(frame.get("from", "")).lower(),
        "to": _address(frame.get("to")),
        "input": frame.get("input") or "0x",
        "value": str(_int(frame.get("value") or 0)),
        "depth": depth,
        "callType": call_type.lower(),
    }


def call_tracer_calls(result: dict[str, Any]) -> list[InternalCall]:
    """The inner calls of one transaction's ``callTracer`` frame (``debug_trace*``), in
    execution order; calls that reverted (``error``) did not happen and are left out."""
    found: list[InternalCall] = []

    def walk(frame: dict[str, Any], depth: int) -> None:
        for inner in frame.get("calls") or ():
            if inner.get("error"):
                continue
            found.append(_call(inner, depth, str(inner.get("type", "call"))))
            walk(inner, depth + 1)

    walk(result, 1)
    return found


def debug_traces(block: dict[str, Any], results: list[dict[str, Any]]) -> Traces:
    """``debug_traceBlockByNumber(n, {"tracer": "callTracer"})`` by transaction hash (older
    nodes give no ``txHash``: the results are in the block's transaction order)."""
    hashes = [tx["hash"].lower() for tx in block.get("transactions", []) if isinstance(tx, dict)]
    traces: Traces = {}
    for index, item in enumerate(results):
        tx_hash = (item.get("txHash") or (hashes[index] if index < len(hashes) else "")).lower()
        if "result" in item and isinstance(item["result"], dict):
            traces[tx_hash] = call_tracer_calls(item["result"])
    return traces


def parity_traces(results: list[dict[str, Any]]) -> Traces:
    """``trace_block`` (erigon, nethermind, anvil) by transaction hash: each trace with a
    non-empty ``traceAddress`` is an inner call, its depth that address's length."""
    traces: Traces = {}
    for trace in results:
        tx_hash = str(trace.get("transactionHash") or "").lower()
        if not tx_hash:
            continue  # a block reward
        inner = traces.setdefault(tx_hash, [])
        if not trace.get("traceAddress") or trace.get("error"):
            continue
        action = trace.get("action") or {}
        kind = str(action.get("callType") or trace.get("type") or "call")
        inner.append(_call(action, len(trace["traceAddress"]), kind))
    return traces


def transaction_record(
    network: str,
    chain_id: int,
    block: dict[str, Any],
    tx: dict[str, Any],
    receipt: dict[str, Any] | None,
    internal: list[InternalCall] | None = None,
) -> Transaction:
    return {
        "network": network,
        "chainId": chain_id,
        "hash": tx["hash"].lower(),
        "blockNumber": _int(block["number"]),
        "blockHash": block["hash"].lower(),
        "blockTimestamp": _int(block["timestamp"]),
        "transactionIndex": _int(tx["transactionIndex"]),
        "type": _int(tx.get("type", 0)),
        "from": tx["from"].lower(),
        "to": _address(tx.get("to")),
        "value": str(_int(tx.get("value", 0))),
        "nonce": _int(tx.get("nonce", 0)),
        "input": tx.get("input", "0x"),
        "gas": _int(tx.get("gas", 0)),
        "gasPrice": _wei(tx.get("gasPrice")),
        "maxFeePerGas": _wei(tx.get("maxFeePerGas")),
        "maxPriorityFeePerGas": _wei(tx.get("maxPriorityFeePerGas")),
        "maxFeePerBlobGas": _wei(tx.get("maxFeePerBlobGas")),
        "blobVersionedHashes": list(tx.get("blobVersionedHashes") or []),
        "txChainId": _opt_int(tx.get("chainId")),
        "receipt": None if receipt is None else receipt_record(receipt),
        "internalCalls": internal or [],
    }


def block_record(
    network: str,
    chain_id: int,
    block: dict[str, Any],
    receipts: list[dict[str, Any]],
    *,
    require_receipts: bool = True,
    traces: Traces | None = None,
) -> Block:
    """The Block record; receipts are looked up by hash and, by default, all required.

    ``require_receipts=False`` (offline tests of recorded blocks) leaves a transaction
    without a receipt receipt-less: no status, no logs.
    """
    by_hash = {r["transactionHash"].lower(): r for r in receipts}
    transactions: list[Transaction] = []
    for tx in block.get("transactions", []):
        if not isinstance(tx, dict):
            raise RpcError(
                f"block {_int(block['number'])} has transaction hashes only; "
                "fetch it with full transactions"
            )
        receipt = by_hash.get(tx["hash"].lower())
        if receipt is None and require_receipts:
            raise RpcError(f"block {_int(block['number'])}: no receipt for {tx['hash']}")
        internal = traces.get(tx["hash"].lower()) if traces else None
        transactions.append(transaction_record(network, chain_id, block, tx, receipt, internal))
    return {
        "network": network,
        "chainId": chain_id,
        "number": _int(block["number"]),
        "hash": block["hash"].lower(),
        "parentHash": block["parentHash"].lower(),
        "timestamp": _int(block["timestamp"]),
        "miner": (block.get("miner") or "0x" + "0" * 40).lower(),
        "gasLimit": _int(block["gasLimit"]),
        "gasUsed": _int(block["gasUsed"]),
        "baseFeePerGas": _wei(block.get("baseFeePerGas")),
        "blobGasUsed": _opt_int(block.get("blobGasUsed")),
        "excessBlobGas": _opt_int(block.get("excessBlobGas")),
        "withdrawals": [
            {
                "index": _int(w["index"]),
                "validatorIndex": _int(w["validatorIndex"]),
                "address": w["address"].lower(),
                "amount": str(_int(w["amount"])),
            }
            for w in block.get("withdrawals") or []
        ],
        "transactions": transactions,
    }
