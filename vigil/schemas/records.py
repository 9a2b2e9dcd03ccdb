"""Typed views of the records on vigil's topics, field for field as their ``.avsc`` files say.

``tests/unit/test_records_typed.py`` checks every TypedDict here against its schema: names,
types, optionality. Values are what the codec takes and gives: ``long`` and ``int`` are
``int``, a ``["null", X]`` union is ``X | None``, an enum is the ``Literal`` of its symbols,
and big numbers (wei, gwei) are decimal strings, as in the schemas.
"""

from __future__ import annotations

import json
from typing import Any, Literal, NotRequired, TypedDict


class Withdrawal(TypedDict):
    index: int
    validatorIndex: int
    address: str
    amount: str


class Log(TypedDict):
    address: str
    topics: list[str]
    data: str
    logIndex: int
    removed: bool


class Receipt(TypedDict):
    status: int | None
    gasUsed: int
    cumulativeGasUsed: int
    effectiveGasPrice: str | None
    contractAddress: str | None
    logs: list[Log]


# ``from`` is a keyword, so Transaction uses the functional form
InternalCall = TypedDict(
    "InternalCall",
    {"from": str, "to": str | None, "input": str, "value": str, "depth": int, "callType": str},
)
Transaction = TypedDict(
    "Transaction",
    {
        "network": str,
        "chainId": int,
        "hash": str,
        "blockNumber": int,
        "blockHash": str,
        "blockTimestamp": int,
        "transactionIndex": int,
        "type": int,
        "from": str,
        "to": str | None,
        "value": str,
        "nonce": int,
        "input": str,
        "gas": int,
        "gasPrice": str | None,
        "maxFeePerGas": str | None,
        "maxPriorityFeePerGas": str | None,
        "maxFeePerBlobGas": str | None,
        "blobVersionedHashes": list[str],
        "txChainId": int | None,
        "receipt": Receipt | None,
        "internalCalls": list[InternalCall],
    },
)


class Block(TypedDict):
    network: str
    chainId: int
    number: int
    hash: str
    parentHash: str
    timestamp: int
    miner: str
    gasLimit: int
    gasUsed: int
    baseFeePerGas: str | None
    blobGasUsed: int | None
    excessBlobGas: int | None
    withdrawals: list[Withdrawal]
    transactions: list[Transaction]


class FortaBot(TypedDict):
    id: str
    image: str
    reference: str


class FortaBlock(TypedDict):
    number: int
    hash: str
    timestamp: str
    chainId: int


class FortaSource(TypedDict):
    transactionHash: str
    bot: FortaBot
    block: FortaBlock


FortaFindingType = Literal[
    "UNKNOWN_TYPE", "EXPLOIT", "SUSPICIOUS", "DEGRADED", "INFORMATION", "SCAM"
]
FortaSeverity = Literal["UNKNOWN", "INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL"]


class FortaAlert(TypedDict):
    hash: str
    alertId: str
    name: str
    description: str
    protocol: str
    findingType: FortaFindingType
    severity: FortaSeverity
    metadata: dict[str, str]
    addresses: list[str]
    createdAt: str
    scanNodeCount: int
    source: FortaSource
    chainId: int
    origin: str
    scanNode: str | None
    receivedAt: int


class MonitorRef(TypedDict):
    id: str
    name: str
    network: str
    chainId: int
    addresses: list[str]
    confirmBlocks: int | str  # blocks, or "safe" / "finalized"
    severity: str
    channels: list[str]
    type: str
    agents: list[str]


class MatchReason(TypedDict):
    type: str
    address: str | None
    signature: str | None
    condition: str | None
    args: str
    params: str
    value: str | None
    internal: NotRequired[bool]  # function reasons of a call made inside the transaction
    depth: NotRequired[int | None]
    caller: NotRequired[str | None]


class Match(TypedDict):
    id: str
    monitor: MonitorRef
    hash: str
    blockNumber: int
    blockHash: str
    timestamp: int
    transaction: Transaction | None
    matchReasons: list[MatchReason]
    matchedAddresses: list[str]
    matchedChecksumAddresses: list[str]
    value: str | None
    metadata: str | None
    alert: FortaAlert | None


class MatchBatch(TypedDict):
    id: str
    monitorId: str
    network: str
    blockNumber: int
    blockHash: str
    matches: list[Match]
    retracted: bool
    channel: str | None
    redelivery: bool


class Delivery(TypedDict):
    id: str
    matchId: str
    monitorId: str
    channel: str
    channelType: str
    requestId: str
    status: Literal["SENT", "FAILED"]
    attempts: int
    httpStatus: int | None
    error: str | None
    at: int  # timestamp-millis: written as milliseconds since the epoch
    latencyMs: int


class TaskRequest(TypedDict):
    runId: str
    taskId: str
    trigger: str  # manual, schedule, webhook, monitor or route (filter, hook: runs only)
    body: str  # JSON
    headers: str  # JSON object
    queryParameters: str  # JSON object
    at: int  # timestamp-millis
    runAs: str | None  # a run by hand through the API: the caller's key id


def task_request(
    run_id: str,
    task_id: str,
    trigger: Literal["manual", "schedule", "webhook", "monitor", "route", "email"],
    body: Any,
    at_ms: int,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    run_as: str | None = None,
) -> TaskRequest:
    """A request to run ``task_id`` under the run key ``run_id`` (one run per key);
    ``run_as``: the key id whose scopes the run gets (a run by hand through the API)."""
    return {
        "runId": run_id,
        "taskId": task_id,
        "trigger": trigger,
        "body": json.dumps(body),
        "headers": json.dumps(headers or {}),
        "queryParameters": json.dumps(query or {}),
        "at": at_ms,
        "runAs": run_as,
    }


class RelayerRequest(TypedDict):
    requestId: str
    relayerId: str
    kind: str  # send or replace
    transactionId: str | None
    nonce: int | None
    body: str  # JSON: the SendTransactionRequest
    at: int  # timestamp-millis


# functional form: ``from`` is a Python keyword
RelayerTransaction = TypedDict(
    "RelayerTransaction",
    {
        "transactionId": str,
        "relayerId": str,
        "status": str,
        "chainId": int,
        "from": str,
        "to": str | None,
        "value": str,
        "data": str,
        "gasLimit": int,
        "nonce": int | None,
        "speed": str | None,
        "gasPrice": str | None,
        "maxFeePerGas": str | None,
        "maxPriorityFeePerGas": str | None,
        "hash": str | None,
        "hashes": list[str],
        "raw": str | None,
        "isPrivate": bool,
        "validUntil": int | None,
        "createdAt": int,
        "sentAt": int | None,
        "pricedAt": int | None,
        "minedBlock": int | None,
        "updatedAt": int,
        "error": str | None,
    },
)
