"""Match records → the event schema that webhooks, templates and tasks receive (seed 001/003)."""

from __future__ import annotations

import json
from typing import Any

from vigil.schemas.forta import alert_view
from vigil.schemas.records import FortaAlert, Match, MatchReason, Transaction


def _hex(value: int | None) -> str | None:
    return None if value is None else hex(value)


def _wei_hex(value: str | None) -> str | None:
    """A decimal wei string as a hex quantity; None and zero-less absence stay None."""
    return hex(int(value)) if value else None


def transaction_view(tx: Transaction) -> dict[str, Any]:
    """The transaction in receipt shape (hex quantities), plus the transaction's own fields."""
    receipt = tx["receipt"]
    status = receipt["status"] if receipt else None
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
        "gasPrice": _wei_hex(tx["gasPrice"]),
        "maxFeePerGas": _wei_hex(tx["maxFeePerGas"]),
        "maxPriorityFeePerGas": _wei_hex(tx["maxPriorityFeePerGas"]),
        "status": None if status is None else _hex(status),
        "gasUsed": _hex(receipt["gasUsed"]) if receipt else None,
        "cumulativeGasUsed": _hex(receipt["cumulativeGasUsed"]) if receipt else None,
        "effectiveGasPrice": _wei_hex(receipt["effectiveGasPrice"]) if receipt else None,
        "contractAddress": receipt["contractAddress"] if receipt else None,
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
            for entry in (receipt["logs"] if receipt else [])
        ],
    }


def forta_event(match: Match, alert: FortaAlert) -> dict[str, Any]:
    """The event of a Forta match: the alert (current and legacy names), reasons, monitor."""
    monitor = match["monitor"]
    monitor_view = {
        "id": monitor["id"],
        "name": monitor["name"],
        "addresses": monitor["addresses"],
        "agents": monitor["agents"],
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
        "alert": alert_view(alert),
        "matchReasons": [{"type": r["type"], "value": r["value"]} for r in match["matchReasons"]],
        "matchedAddresses": match["matchedAddresses"],
        "matchedChecksumAddresses": match["matchedChecksumAddresses"],
        "monitor": monitor_view,
        "sentinel": monitor_view,
        "metadata": json.loads(match["metadata"]) if match["metadata"] else None,
    }


def _reason_view(reason: MatchReason) -> dict[str, Any]:
    view = {
        "type": reason["type"],
        "address": reason["address"],
        "signature": reason["signature"],
        "condition": reason["condition"],
        "args": json.loads(reason["args"]),
        "params": json.loads(reason["params"]),
    }
    if reason.get("internal"):  # a call a contract made inside the transaction
        view.update(internal=True, depth=reason.get("depth"), caller=reason.get("caller"))
    return view


def match_event(match: Match, abi: list[Any] | None = None) -> dict[str, Any]:
    """One element of ``{"events": [...]}``: the event schema of the source documents.

    ``abi``: the monitor's, as ``monitor.abi`` / ``sentinel.abi`` (filters, tasks and
    webhooks read it); taken from the applied monitor's version when the event is made, so
    match records do not each carry it."""
    if match["alert"] is not None:
        return forta_event(match, match["alert"])
    if match["transaction"] is None:
        raise ValueError(f"match {match['id']} has neither a transaction nor an alert")
    monitor = match["monitor"]
    monitor_view = {
        "id": monitor["id"],
        "name": monitor["name"],
        "network": monitor["network"],
        "chainId": monitor["chainId"],
        "addresses": monitor["addresses"],
        "confirmBlocks": monitor["confirmBlocks"],
        "abi": list(abi or []),
        "severity": monitor["severity"],
    }
    return {
        "id": match["id"],
        "type": "BLOCK",
        "hash": match["hash"],
        "blockHash": match["blockHash"],
        "blockNumber": hex(match["blockNumber"]),
        "timestamp": match["timestamp"],
        "matchReasons": [_reason_view(r) for r in match["matchReasons"]],
        "matchedAddresses": match["matchedAddresses"],
        "matchedChecksumAddresses": match["matchedChecksumAddresses"],
        "monitor": monitor_view,
        "sentinel": monitor_view,
        "transaction": transaction_view(match["transaction"]),
        "value": _hex(int(match["value"])) if match["value"] is not None else None,
        "metadata": json.loads(match["metadata"]) if match["metadata"] else None,
    }


# The event's shape for template checks: a dict is an object's fields, a one-element list is
# a list of that item, LEAF a value, OPEN an object whose keys vary (params, metadata).
LEAF: None = None
OPEN = "any key"
_LOG: dict[str, Any] = {
    **dict.fromkeys(
        [
            "address",
            "data",
            "logIndex",
            "blockHash",
            "blockNumber",
            "transactionHash",
            "transactionIndex",
            "removed",
        ]
    ),
    "topics": [LEAF],
}
_TRANSACTION: dict[str, Any] = {
    **dict.fromkeys(
        [
            "transactionHash",
            "hash",
            "blockHash",
            "blockNumber",
            "transactionIndex",
            "from",
            "to",
            "value",
            "input",
            "nonce",
            "type",
            "gas",
            "gasPrice",
            "maxFeePerGas",
            "maxPriorityFeePerGas",
            "status",
            "gasUsed",
            "cumulativeGasUsed",
            "effectiveGasPrice",
            "contractAddress",
            "logsBloom",
            "link",
        ]
    ),
    "logs": [_LOG],
}
_MONITOR: dict[str, Any] = {
    **dict.fromkeys(
        [
            "id",
            "name",
            "network",
            "chainId",
            "confirmBlocks",
            "severity",
        ]
    ),
    "addresses": [LEAF],
    "agents": [LEAF],
    "abi": [OPEN],
}
_BOT: dict[str, Any] = dict.fromkeys(
    [
        "id",
        "image",
        "reference",
    ]
)
_ALERT: dict[str, Any] = {
    **dict.fromkeys(
        [
            "hash",
            "alertId",
            "name",
            "description",
            "protocol",
            "findingType",
            "severity",
            "createdAt",
            "scanNodeCount",
            "chainId",
            "alert_id",
            "scanner_count",
            "type",
            "tx_hash",
            "chain_Id",
        ]
    ),
    "metadata": OPEN,
    "addresses": [LEAF],
    "agent": _BOT,
    "source": {
        "transactionHash": LEAF,
        "bot": _BOT,
        "block": dict.fromkeys(
            [
                "number",
                "hash",
                "timestamp",
                "chainId",
            ]
        ),
    },
}
EVENT_SHAPE: dict[str, Any] = {
    **dict.fromkeys(
        [
            "id",
            "type",
            "hash",
            "blockHash",
            "blockNumber",
            "timestamp",
            "value",
            "matchReasonsFormatted",
            "retracted",
        ]
    ),
    "transaction": _TRANSACTION,
    "matchReasons": [
        {
            **dict.fromkeys(
                [
                    "type",
                    "address",
                    "signature",
                    "condition",
                    "value",
                    "internal",
                    "depth",
                    "caller",
                ]
            ),
            "args": [OPEN],
        }
        | {"params": OPEN}
    ],
    "matchedAddresses": [LEAF],
    "matchedChecksumAddresses": [LEAF],
    "monitor": _MONITOR,
    "sentinel": _MONITOR,
    "metadata": OPEN,
    "alert": _ALERT,
}
