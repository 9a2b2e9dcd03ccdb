"""Contract-monitor matching over whole blocks, indexed by address (SPEC C4)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Generic, TypeVar

from eth_utils.address import to_checksum_address

from vigil.config.loader import LoadedMonitor
from vigil.config.models import MonitorConfig, Selection
from vigil.errors import ConditionTypeError, ConfigError
from vigil.processors import abi
from vigil.processors.conditions import Condition, Labelled, compile_condition
from vigil.schemas.records import Block, Match, MatchBatch, MatchReason, MonitorRef, Transaction

log = logging.getLogger(__name__)
D = TypeVar("D", abi.EventDecoder, abi.FunctionDecoder)

TX_FIELDS = {
    "to": "to",
    "from": "from",
    "value": "value",
    "gasPrice": "gasPrice",
    "gas_price": "gasPrice",
    "maxFeePerGas": "maxFeePerGas",
    "max_fee_per_gas": "maxFeePerGas",
    "maxPriorityFeePerGas": "maxPriorityFeePerGas",
    "max_priority_fee_per_gas": "maxPriorityFeePerGas",
    "gasLimit": "gasLimit",
    "gas_limit": "gasLimit",
    "gasUsed": "gasUsed",
    "gas_used": "gasUsed",
    "nonce": "nonce",
    "status": "status",
    "hash": "hash",
    "input": "input",
    "transactionIndex": "transactionIndex",
    "transaction_index": "transactionIndex",
}


def transaction_env(tx: Transaction) -> dict[str, Any]:
    """The names a transaction condition can read, camelCase and snake_case."""
    receipt = tx["receipt"]
    status = receipt["status"] if receipt else None
    canonical = {
        "to": tx["to"],
        "from": tx["from"],
        "value": int(tx["value"]),
        "gasPrice": int((receipt and receipt["effectiveGasPrice"]) or tx["gasPrice"] or 0),
        "maxFeePerGas": None if tx["maxFeePerGas"] is None else int(tx["maxFeePerGas"]),
        "maxPriorityFeePerGas": None
        if tx["maxPriorityFeePerGas"] is None
        else int(tx["maxPriorityFeePerGas"]),
        "gasLimit": tx["gas"],
        "gasUsed": receipt["gasUsed"] if receipt else None,
        "nonce": tx["nonce"],
        "status": None
        if status is None
        else (Labelled("success", 1) if status == 1 else Labelled("failed", 0)),
        "hash": tx["hash"],
        "input": tx["input"],
        "transactionIndex": tx["transactionIndex"],
    }
    return {alias: canonical[name] for alias, name in TX_FIELDS.items()}


@dataclass(frozen=True)
class _Rule(Generic[D]):
    """One selected event or function with its optional condition."""

    signature: str
    decoder: D
    condition: Condition | None


@dataclass
class CompiledMonitor:
    """A monitor ready to match: rules keyed by topic0 / selector."""

    id: str
    ref: MonitorRef
    addresses: frozenset[str]
    events: dict[str, list[_Rule[abi.EventDecoder]]] = field(default_factory=dict)
    functions: dict[str, list[_Rule[abi.FunctionDecoder]]] = field(default_factory=dict)
    transaction: Condition | None = None
    paused: bool = False
    errors: int = 0

    def _holds(self, condition: Condition | None, env: dict[str, Any], tx_hash: str) -> bool:
        if condition is None:
            return True
        try:
            return condition.holds(env)
        except ConditionTypeError as exc:
            self.errors += 1
            log.warning(
                "monitor %s, tx %s: condition %r: %s; counted as no match",
                self.id,
                tx_hash,
                condition.text,
                exc,
            )
            return False

    def reasons(self, tx: Transaction) -> list[MatchReason] | None:
        """Match reasons when ``tx`` matches (SPEC C4 rules 2-4), else None."""
        reasons: list[MatchReason] = []
        if self.transaction is not None:
            if not self._holds(self.transaction, transaction_env(tx), tx["hash"]):
                return None
            reasons.append(
                {
                    "type": "transaction",
                    "address": None,
                    "signature": None,
                    "condition": self.transaction.text,
                    "args": "[]",
                    "params": "{}",
                    "value": None,
                }
            )
        if not self.events and not self.functions:
            return reasons
        selected = self._event_reasons(tx) + self._function_reasons(tx)
        return reasons + selected if selected else None

    def _event_reasons(self, tx: Transaction) -> list[MatchReason]:
        found: list[MatchReason] = []
        receipt = tx["receipt"]
        for entry in receipt["logs"] if receipt else ():
            topics = entry["topics"]
            if not topics or entry["address"] not in self.addresses:
                continue
            for rule in self.events.get(topics[0], ()):
                decoded = rule.decoder.decode(topics, entry["data"])
                if decoded is None:
                    continue
                if rule.condition is None or self._holds(
                    rule.condition, decoded.condition_env(), tx["hash"]
                ):
                    found.append(_reason("event", entry["address"], rule, decoded))
        return found

    def _function_reasons(self, tx: Transaction) -> list[MatchReason]:
        """Calls of a selected function on a monitored address: the transaction's own, and
        (networks with traces) those contracts made inside it, marked internal."""
        found = self._calls(tx["to"], tx["input"], tx["hash"])
        for call in tx.get("internalCalls") or ():
            for reason in self._calls(call["to"], call["input"], tx["hash"]):
                found.append(
                    {**reason, "internal": True, "depth": call["depth"], "caller": call["from"]}
                )
        return found

    def _calls(self, to: str | None, data: str, tx_hash: str) -> list[MatchReason]:
        if to not in self.addresses or len(data) < 10:
            return []
        found: list[MatchReason] = []
        for rule in self.functions.get(data[:10].lower(), ()):
            decoded = rule.decoder.decode(data)
            if decoded is not None and (
                rule.condition is None
                or self._holds(rule.condition, decoded.condition_env(), tx_hash)
            ):
                found.append(_reason("function", to, rule, decoded))
        return found


def _reason(kind: str, address: str, rule: _Rule[Any], decoded: abi.Decoded) -> MatchReason:
    return {
        "type": kind,
        "address": address,
        "signature": rule.signature,
        "condition": rule.condition.text if rule.condition else None,
        "args": json.dumps(abi.to_json(list(decoded.args))),
        "params": json.dumps({k: abi.to_json(v) for k, v in decoded.params().items()}),
        "value": None,
    }


def _compile_rules(monitor: LoadedMonitor, kind: str) -> dict[str, list[_Rule[Any]]]:
    assert isinstance(monitor.config, MonitorConfig)
    conditions = monitor.config.conditions
    selections: Sequence[Selection] = conditions.events if kind == "event" else conditions.functions
    rules: dict[str, list[_Rule[Any]]] = {}
    for i, selection in enumerate(selections):
        where = f"conditions.{kind}s[{i}]"
        obj = f"monitor {monitor.config.name!r}"
        try:
            item = abi.resolve(monitor.abi, kind, selection.signature)
        except LookupError as exc:
            raise ConfigError(
                str(exc), file=str(monitor.file), obj=obj, field=f"{where}.signature"
            ) from None
        decoder: abi.EventDecoder | abi.FunctionDecoder = (
            abi.EventDecoder(item) if kind == "event" else abi.FunctionDecoder(item)
        )
        names = [n for n in decoder.names if n] + [f"${j}" for j in range(len(decoder.names))]
        condition = None
        if selection.expression:
            condition = compile_condition(
                selection.expression,
                known=names,
                where=f"{monitor.file}: {obj}: {where}.expression",
            )
        key = abi.topic0(item) if kind == "event" else abi.selector(item)
        rules.setdefault(key, []).append(_Rule(abi.signature(item), decoder, condition))
    return rules


def compile_monitor(monitor: LoadedMonitor, chain_id: int) -> CompiledMonitor:
    """Resolve signatures and compile conditions; errors name file, monitor and field."""
    config = monitor.config
    if not isinstance(config, MonitorConfig):
        raise ConfigError(
            "is a Forta monitor; it matches alerts, not transactions",
            file=str(monitor.file),
            obj=f"monitor {config.name!r}",
            field="type",
        )
    for index, address in enumerate(config.addresses):
        if not address.startswith("0x"):
            raise ConfigError(
                f"{address!r} names a contract of a project's address book (vigil.yaml "
                "contracts); use the monitor within its project (by its id), or give the "
                "0x address",
                file=str(monitor.file),
                obj=f"monitor {config.name!r}",
                field=f"addresses[{index}]",
            )
    transaction = None
    if config.conditions.transaction:
        transaction = compile_condition(
            config.conditions.transaction,
            known=TX_FIELDS,
            where=f"{monitor.file}: monitor {config.name!r}: conditions.transaction",
        )
    ref: MonitorRef = {
        "id": monitor.id,
        "name": config.name,
        "network": config.network,
        "chainId": chain_id,
        "addresses": list(config.addresses),
        "confirmBlocks": config.confirm_blocks,  # blocks, or "safe" / "finalized" as written
        "severity": config.severity,
        "channels": list(config.channels),
        "type": "contract",
        "agents": [],
    }
    return CompiledMonitor(
        monitor.id,
        ref,
        frozenset(config.addresses),
        _compile_rules(monitor, "event"),
        _compile_rules(monitor, "function"),
        transaction,
        config.paused,
    )


@lru_cache(maxsize=65536)
def checksum(address: str) -> str:
    """EIP-55 form; cached, as the same monitored addresses match again and again."""
    return str(to_checksum_address(address))


def match_id(monitor_id: str, network: str, block_hash: str, tx_hash: str) -> str:
    return f"{monitor_id}:{network}:{block_hash}:{tx_hash}:-"


class Matcher:
    """Matches whole blocks against many monitors through an address index."""

    def __init__(self, monitors: Iterable[CompiledMonitor]) -> None:
        self.monitors = [m for m in monitors if not m.paused]
        self._by_address: dict[tuple[str, str], list[CompiledMonitor]] = {}
        for monitor in self.monitors:
            for address in monitor.addresses:
                self._by_address.setdefault((monitor.ref["network"], address), []).append(monitor)
        self._watched = frozenset(address for _, address in self._by_address)

    def watches(self, addresses: list[str]) -> bool:
        """Whether a transaction involving ``addresses`` (on any network) may match: one
        that does not can be left undecoded."""
        return not self._watched.isdisjoint(addresses)

    def match_transaction(self, tx: Transaction, timestamp: int) -> list[Match]:
        """Match records (one per monitor) for one Transaction record."""
        network = tx["network"]
        receipt = tx["receipt"]
        involved = [
            tx["from"],
            tx["to"],
            *(entry["address"] for entry in (receipt["logs"] if receipt else ())),
            *(call["to"] for call in tx.get("internalCalls") or ()),
        ]
        candidates: dict[str, CompiledMonitor] = {}
        for address in involved:
            for monitor in self._by_address.get((network, address), ()):  # type: ignore[arg-type]
                candidates.setdefault(monitor.id, monitor)
        matches: list[Match] = []
        for monitor in candidates.values():
            reasons = monitor.reasons(tx)
            if reasons is None:
                continue
            matched = _ordered_unique(a for a in involved if a in monitor.addresses)
            matches.append(
                {
                    "id": match_id(monitor.id, network, tx["blockHash"], tx["hash"]),
                    "monitor": {**monitor.ref, "chainId": tx["chainId"]},
                    "hash": tx["hash"],
                    "blockNumber": tx["blockNumber"],
                    "blockHash": tx["blockHash"],
                    "timestamp": timestamp,
                    "transaction": tx,
                    "matchReasons": reasons,
                    "matchedAddresses": matched,
                    "matchedChecksumAddresses": [checksum(a) for a in matched],
                    "value": tx["value"],
                    "metadata": None,
                    "alert": None,
                }
            )
        return matches

    def match_block(self, block: Block) -> list[Match]:
        """All matches of a Block record, in transaction order."""
        found: list[Match] = []
        for tx in block["transactions"]:
            found.extend(self.match_transaction(tx, block["timestamp"]))
        return found


def _ordered_unique(items: Iterable[str | None]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        if item is not None:
            seen.setdefault(item, None)
    return list(seen)


def batches(matches: Sequence[Match]) -> list[MatchBatch]:
    """Group a block's matches into MatchBatch records, one per monitor."""
    grouped: dict[str, list[Match]] = {}
    for match in matches:
        grouped.setdefault(match["monitor"]["id"], []).append(match)
    return [
        {
            "id": f"{monitor_id}:{group[0]['monitor']['network']}:{group[0]['blockHash']}",
            "monitorId": monitor_id,
            "network": group[0]["monitor"]["network"],
            "blockNumber": group[0]["blockNumber"],
            "blockHash": group[0]["blockHash"],
            "matches": group,
            "retracted": False,
            "channel": None,
            "redelivery": False,
        }
        for monitor_id, group in grouped.items()
    ]
