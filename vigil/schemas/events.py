"""Match records → the event schema that webhooks, templates and tasks receive (seed 001/003)."""

from __future__ import annotations

import json
from typing import Any

from vigil.schemas.forta import alert_view


def _hex(value: int | None) -> str | None:
    return None if value is None else hex(value)


def transaction_view(tx: dict[str, Any]) -> dict[str, Any]:
    """The transaction in receipt shape (hex quantities), plus the transaction's own fields."""
    receipt = tx.get("receipt") or {}
    status = receipt.get("status")
    return {
        "transactionHash": tx["hash"],
        "hash": tx["hash"],
        "blockHash": tx["blockHash"],
        "blockNumber": _hex(tx["blockNumber"]),
        "transactionIndex": _hex(tx["transactionIndex"]),
        "from": tx["from"],
        "to": tx["to"],
        "value": _hex(int(tx["value"])),
        "input": tx["input"],
        "nonce": _hex(tx["nonce"]),
        "type": _hex(tx["type"]),
        "gas": _hex(tx["gas"]),
        "gasPrice": _hex(int(tx["gasPrice"])) if tx.get("gasPrice") else None,
        "maxFeePerGas": _hex(int(tx["maxFeePerGas"])) if tx.get("maxFeePerGas") else None,
        "maxPriorityFeePerGas": _hex(int(tx["maxPriorityFeePerGas"]))
        if tx.get("maxPriorityFeePerGas")
        else None,
        "status": None if status is None else _hex(status),
        "gasUsed": _hex(receipt.get("gasUsed")),
        "cumulativeGasUsed": _hex(receipt.get("cumulativeGasUsed")),
        "effectiveGasPrice": _hex(int(receipt["effectiveGasPrice"]))
        if receipt.get("effectiveGasPrice")
        else None,
        "contractAddress": receipt.get("contractAddress"),
        "logsBloom": "",
        "logs": [
            {
                "address": entry["address"],
                "topics": entry["topics"],
                "data": entry["data"],
                "logIndex": _hex(entry["logIndex"]),
                "blockHash": tx["blockHash"],
                "blockNumber": _hex(tx["blockNumber"]),
                "transactionHash": tx["hash"],
                "transactionIndex": _hex(tx["transactionIndex"]),
                "removed": entry["removed"],
            }
            for entry in receipt.get("logs", [])
        ],
    }


def forta_event(match: dict[str, Any]) -> dict[str, Any]:
    """The event of a Forta match: the alert (current and legacy names), reasons, monitor."""
    monitor = match["monitor"]
    monitor_view = {
        "id": monitor["id"],
        "name": monitor["name"],
        "addresses": monitor["addresses"],
        "agents": monitor.get("agents", []),
        "network": monitor["network"],
        "chainId": monitor["chainId"],
        "severity": monitor["severity"],
    }
    return {
        "id": match["id"],
        "type": "FORTA",
        "hash": match["hash"],
        "blockHash": match["blockHash"],
        "blockNumber": hex(match["blockNumber"]),
        "timestamp": match["timestamp"],
        "alert": alert_view(match["alert"]),
        "matchReasons": [
            {"type": r["type"], "value": r.get("value")} for r in match["matchReasons"]
        ],
        "matchedAddresses": match["matchedAddresses"],
        "matchedChecksumAddresses": match["matchedChecksumAddresses"],
        "monitor": monitor_view,
        "sentinel": monitor_view,
        "metadata": json.loads(match["metadata"]) if match.get("metadata") else None,
    }


def match_event(match: dict[str, Any]) -> dict[str, Any]:
    """One element of ``{"events": [...]}``: the event schema of the source documents."""
    if match.get("alert") is not None:
        return forta_event(match)
    monitor = match["monitor"]
    monitor_view = {
        "id": monitor["id"],
        "name": monitor["name"],
        "network": monitor["network"],
        "chainId": monitor["chainId"],
        "addresses": monitor["addresses"],
        "confirmBlocks": monitor["confirmBlocks"],
        "abi": [],
        "severity": monitor["severity"],
    }
    return {
        "id": match["id"],
        "type": "BLOCK",
        "hash": match["hash"],
        "blockHash": match["blockHash"],
        "blockNumber": hex(match["blockNumber"]),
        "timestamp": match["timestamp"],
        "matchReasons": [
            {
                "type": r["type"],
                "address": r["address"],
                "signature": r["signature"],
                "condition": r["condition"],
                "args": json.loads(r["args"]),
                "params": json.loads(r["params"]),
            }
            for r in match["matchReasons"]
        ],
        "matchedAddresses": match["matchedAddresses"],
        "matchedChecksumAddresses": match["matchedChecksumAddresses"],
        "monitor": monitor_view,
        "sentinel": monitor_view,
        "transaction": transaction_view(match["transaction"]),
        "value": _hex(int(match["value"])) if match.get("value") is not None else None,
        "metadata": json.loads(match["metadata"]) if match.get("metadata") else None,
    }
