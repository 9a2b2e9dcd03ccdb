"""Records → ClickHouse rows, one function per table."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from vigil.schemas.events import match_event
from vigil.schemas.records import Block, Delivery, FortaAlert, Match, Receipt, Transaction

BLOCK_COLUMNS = [
    "network",
    "number",
    "hash",
    "parent_hash",
    "timestamp",
    "miner",
    "gas_limit",
    "gas_used",
    "base_fee_per_gas",
    "transaction_count",
]
TX_COLUMNS = [
    "network",
    "hash",
    "block_number",
    "block_hash",
    "block_timestamp",
    "transaction_index",
    "type",
    "from",
    "to",
    "value",
    "nonce",
    "input",
    "gas",
    "gas_price",
    "max_fee_per_gas",
    "max_priority_fee_per_gas",
    "status",
    "gas_used",
    "effective_gas_price",
    "contract_address",
    "log_count",
]
LOG_COLUMNS = [
    "network",
    "block_number",
    "block_hash",
    "block_timestamp",
    "transaction_hash",
    "log_index",
    "address",
    "topic0",
    "topic1",
    "topic2",
    "topic3",
    "data",
]
MATCH_COLUMNS = [
    "id",
    "monitor_id",
    "monitor_name",
    "network",
    "block_number",
    "block_hash",
    "transaction_hash",
    "timestamp",
    "reasons",
    "matched_addresses",
    "value",
    "event",
]
DELIVERY_COLUMNS = [
    "id",
    "match_id",
    "monitor_id",
    "channel",
    "channel_type",
    "request_id",
    "status",
    "attempts",
    "http_status",
    "error",
    "at",
    "latency_ms",
]

SUPPRESSED_COLUMNS = [
    "id",
    "monitor_id",
    "network",
    "block_number",
    "block_hash",
    "transaction_hash",
    "reason",
    "detail",
    "count",
    "timestamp",
    "at",
]
DEAD_LETTER_COLUMNS = [
    "id",
    "source",
    "topic",
    "partition",
    "offset",
    "error",
    "payload_schema",
    "at",
]
FORTA_COLUMNS = [
    "hash",
    "alert_id",
    "name",
    "description",
    "protocol",
    "finding_type",
    "severity",
    "metadata",
    "addresses",
    "created_at",
    "scan_node_count",
    "transaction_hash",
    "bot_id",
    "block_number",
    "block_hash",
    "chain_id",
    "origin",
    "scan_node",
    "received_at",
]
METRIC_COLUMNS = [
    "bot_id",
    "timestamp",
    "name",
    "count",
    "max",
    "average",
    "sum",
    "p95",
    "scan_node",
    "received_at",
]
CONFIG_COLUMNS = ["kind", "id", "action", "version", "source", "file", "spec", "at"]
REORG_COLUMNS = [
    "network",
    "number",
    "hash",
    "canonical_hash",
    "fork_number",
    "fork_hash",
    "at",
]


def _opt(value: str | None) -> int | None:
    return None if value is None else int(value)


def _time(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def block_row(block: Block) -> list[Any]:
    return [
        block["network"],
        block["number"],
        block["hash"],
        block["parentHash"],
        _time(block["timestamp"]),
        block["miner"],
        block["gasLimit"],
        block["gasUsed"],
        _opt(block["baseFeePerGas"]),
        len(block["transactions"]),
    ]


WITHDRAWAL_COLUMNS = [
    "network",
    "block_number",
    "block_hash",
    "block_timestamp",
    "index",
    "validator_index",
    "address",
    "amount_gwei",
]


def withdrawal_rows(block: Block) -> list[list[Any]]:
    """The block's withdrawals (EIP-4895), one row each; amounts are in gwei."""
    at = _time(block["timestamp"])
    return [
        [
            block["network"],
            block["number"],
            block["hash"],
            at,
            w["index"],
            w["validatorIndex"],
            w["address"],
            int(w["amount"]),
        ]
        for w in block["withdrawals"]
    ]


def transaction_rows(tx: Transaction) -> tuple[list[Any], list[list[Any]]]:
    receipt: Receipt = tx["receipt"] or {
        "status": None,
        "gasUsed": 0,
        "cumulativeGasUsed": 0,
        "effectiveGasPrice": None,
        "contractAddress": None,
        "logs": [],
    }
    row = [
        tx["network"],
        tx["hash"],
        tx["blockNumber"],
        tx["blockHash"],
        _time(tx["blockTimestamp"]),
        tx["transactionIndex"],
        tx["type"],
        tx["from"],
        tx["to"],
        int(tx["value"]),
        tx["nonce"],
        tx["input"],
        tx["gas"],
        _opt(tx["gasPrice"]),
        _opt(tx["maxFeePerGas"]),
        _opt(tx["maxPriorityFeePerGas"]),
        receipt["status"],
        receipt["gasUsed"],
        _opt(receipt["effectiveGasPrice"]),
        receipt["contractAddress"],
        len(receipt["logs"]),
    ]
    logs = []
    for entry in receipt["logs"]:
        topics = [*entry["topics"], None, None, None, None][:4]
        logs.append(
            [
                tx["network"],
                tx["blockNumber"],
                tx["blockHash"],
                _time(tx["blockTimestamp"]),
                tx["hash"],
                entry["logIndex"],
                entry["address"],
                *topics,
                entry["data"],
            ]
        )
    return row, logs


def match_row(match: Match) -> list[Any]:
    event = match_event(match)
    return [
        match["id"],
        match["monitor"]["id"],
        match["monitor"]["name"],
        match["monitor"]["network"],
        match["blockNumber"],
        match["blockHash"],
        match["hash"],
        _time(match["timestamp"]),
        json.dumps(event["matchReasons"]),
        match["matchedAddresses"],
        _opt(match["value"]),
        json.dumps(event),
    ]


def delivery_row(delivery: Delivery) -> list[Any]:
    return [
        delivery["id"],
        delivery["matchId"],
        delivery["monitorId"],
        delivery["channel"],
        delivery["channelType"],
        delivery["requestId"],
        delivery["status"],
        delivery["attempts"],
        delivery["httpStatus"],
        delivery["error"],
        _moment(delivery["at"]),
        delivery["latencyMs"],
    ]


def config_row(change: dict[str, Any]) -> list[Any]:
    """One applied change of a monitor or channel; its history is the audit trail."""
    return [
        change["kind"],
        change["id"],
        change["action"],
        change["version"],
        change["source"],
        change["file"],
        change["spec"],
        _moment(change["at"]),
    ]


def _moment(at: Any) -> datetime:
    return at if isinstance(at, datetime) else datetime.fromtimestamp(at / 1000, UTC)


REPLAY_COLUMNS = [
    "replay_id",
    "source",
    "id",
    "monitor_id",
    "network",
    "block_number",
    "block_hash",
    "transaction_hash",
    "timestamp",
    "reasons",
    "matched_addresses",
    "at",
]


def replay_row(record: dict[str, Any]) -> list[Any]:
    """One match a replay found."""
    match = record["match"]
    return [
        record["replayId"],
        record["source"],
        match["id"],
        match["monitor"]["id"],
        match["monitor"]["network"],
        match["blockNumber"],
        match["blockHash"],
        match["hash"],
        _time(match["timestamp"]),
        json.dumps(match_event(match)["matchReasons"]),
        match["matchedAddresses"],
        _moment(record["at"]),
    ]


def suppressed_row(record: dict[str, Any]) -> list[Any]:
    return [
        record["id"],
        record["monitorId"],
        record["network"],
        record["blockNumber"],
        record["blockHash"],
        record["hash"],
        record["reason"],
        record["detail"],
        record["count"],
        _time(record["timestamp"]),
        _moment(record["at"]),
    ]


def dead_letter_row(record: dict[str, Any]) -> list[Any]:
    """The dead letter without its payload (kept on the topic, where `retry` reads it)."""
    return [
        record["id"],
        record["source"],
        record["topic"],
        record["partition"],
        record["offset"],
        record["error"],
        record["payloadSchema"],
        _moment(record["at"]),
    ]


def forta_row(alert: FortaAlert) -> list[Any]:
    source = alert["source"]
    return [
        alert["hash"],
        alert["alertId"],
        alert["name"],
        alert["description"],
        alert["protocol"],
        alert["findingType"],
        alert["severity"],
        dict(alert["metadata"]),
        list(alert["addresses"]),
        alert["createdAt"],
        alert["scanNodeCount"],
        source["transactionHash"],
        source["bot"]["id"],
        source["block"]["number"],
        source["block"]["hash"],
        alert["chainId"],
        alert["origin"],
        alert["scanNode"],
        _moment(alert["receivedAt"]),
    ]


def metric_row(metric: dict[str, Any]) -> list[Any]:
    return [
        metric["botId"],
        metric["timestamp"],
        metric["name"],
        metric["count"],
        metric["max"],
        metric["average"],
        metric["sum"],
        metric["p95"],
        metric["scanNode"],
        _moment(metric["receivedAt"]),
    ]


def reorg_row(retraction: dict[str, Any]) -> list[Any]:
    return [
        retraction["network"],
        retraction["number"],
        retraction["hash"],
        retraction["canonicalHash"],
        retraction["forkNumber"],
        retraction["forkHash"],
        _moment(retraction["at"]),
    ]


TASK_RUN_COLUMNS = [
    "run_id",
    "task_id",
    "task_version",
    "trigger",
    "status",
    "result",
    "logs",
    "error_type",
    "error_message",
    "duration_ms",
    "started_at",
    "finished_at",
]


def task_run_row(run: dict[str, Any]) -> list[Any]:
    finished = run["finishedAt"]
    return [
        run["runId"],
        run["taskId"],
        run["taskVersion"],
        run["trigger"],
        run["status"],
        run["result"],
        run["logs"],
        run["errorType"],
        run["errorMessage"],
        run["durationMs"],
        _moment(run["startedAt"]),
        None if finished is None else _moment(finished),
    ]


RELAYER_TX_COLUMNS = [
    "transaction_id",
    "relayer_id",
    "status",
    "chain_id",
    "from_address",
    "to_address",
    "value",
    "data",
    "gas_limit",
    "nonce",
    "speed",
    "gas_price",
    "max_fee_per_gas",
    "max_priority_fee_per_gas",
    "hash",
    "hashes",
    "is_private",
    "valid_until",
    "created_at",
    "sent_at",
    "mined_block",
    "updated_at",
    "error",
]


def relayer_tx_row(tx: dict[str, Any]) -> list[Any]:
    """A relayer transaction as it stood; the signed bytes stay on the topic."""

    def wei(value: str | None) -> int | None:
        return None if value is None else int(value)

    def moment(ms: int | None) -> Any:
        return None if ms is None else _moment(ms)

    return [
        tx["transactionId"],
        tx["relayerId"],
        tx["status"],
        tx["chainId"],
        tx["from"],
        tx["to"],
        int(tx["value"]),
        tx["data"],
        tx["gasLimit"],
        tx["nonce"],
        tx["speed"],
        wei(tx["gasPrice"]),
        wei(tx["maxFeePerGas"]),
        wei(tx["maxPriorityFeePerGas"]),
        tx["hash"],
        tx["hashes"],
        tx["isPrivate"],
        moment(tx["validUntil"]),
        _moment(tx["createdAt"]),
        moment(tx["sentAt"]),
        tx["minedBlock"],
        _moment(tx["updatedAt"]),
        tx["error"],
    ]
