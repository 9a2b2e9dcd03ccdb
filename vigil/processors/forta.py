"""Forta monitor matching (SPEC C6): which monitors an alert matches, and why."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from vigil.config.models import FortaMonitorConfig
from vigil.processors.matching import checksum
from vigil.schemas.forta import SEVERITY_RANK, created_ms
from vigil.schemas.records import FortaAlert, Match, MatchBatch, MatchReason, MonitorRef


@dataclass(frozen=True)
class FortaMonitor:
    """A Forta monitor ready to match, with the monitor reference its matches carry."""

    id: str
    config: FortaMonitorConfig
    chain_id: int

    @property
    def ref(self) -> MonitorRef:
        config = self.config
        return {
            "id": self.id,
            "name": config.name,
            "network": config.network or "forta",
            "chainId": self.chain_id,
            "addresses": list(config.addresses),
            "confirmBlocks": 0,
            "severity": config.severity,
            "channels": list(config.channels),
            "type": "forta",
            "agents": list(config.bot_ids),
        }

    def reasons(self, alert: FortaAlert) -> list[MatchReason] | None:
        """Match reasons when ``alert`` matches, else None."""
        config = self.config
        source = alert["source"]
        from_source = (
            (bool(config.bot_ids) and source["bot"]["id"] in config.bot_ids)
            or (bool(config.addresses) and any(a in config.addresses for a in alert["addresses"]))
            or (config.scan_node is not None and alert["scanNode"] == config.scan_node)
        )
        if not from_source:
            return None
        if config.network is not None and alert["chainId"] not in (0, self.chain_id):
            return None  # a named network takes its own chain's alerts; no network, every chain
        if alert["scanNodeCount"] < config.min_scanner_count:
            return None
        if not config.alert_ids and config.min_severity is None:
            return []
        reasons: list[MatchReason] = []
        if alert["alertId"] in config.alert_ids:
            reasons.append(_reason("alert-id", alert["alertId"]))
        if (
            config.min_severity is not None
            and SEVERITY_RANK.get(alert["severity"], 0) >= SEVERITY_RANK[config.min_severity]
        ):
            reasons.append(_reason("severity", alert["severity"]))
        return reasons or None  # alert id OR severity, when either is set


def _reason(kind: str, value: str) -> MatchReason:
    return {
        "type": kind,
        "address": None,
        "signature": None,
        "condition": None,
        "args": "[]",
        "params": "{}",
        "value": value,
    }


class FortaMatcher:
    """Matches alerts against every active Forta monitor."""

    def __init__(self, monitors: Iterable[FortaMonitor]) -> None:
        self.monitors = [m for m in monitors if not m.config.paused]

    def match(self, alert: FortaAlert) -> list[Match]:
        """Match records (one per matching monitor) for a FortaAlert record."""
        found: list[Match] = []
        seconds = created_ms(alert["createdAt"]) // 1000 or alert["receivedAt"] // 1000
        for monitor in self.monitors:
            reasons = monitor.reasons(alert)
            if reasons is None:
                continue
            matched = [a for a in alert["addresses"] if a in monitor.config.addresses]
            found.append(
                {
                    "id": f"{monitor.id}:forta:{alert['hash']}",
                    "monitor": {**monitor.ref, "chainId": alert["chainId"] or monitor.chain_id},
                    "hash": alert["hash"],
                    "blockNumber": alert["source"]["block"]["number"],
                    "blockHash": alert["source"]["block"]["hash"],
                    "timestamp": seconds,
                    "transaction": None,
                    "alert": alert,
                    "matchReasons": reasons,
                    "matchedAddresses": matched,
                    "matchedChecksumAddresses": [_checksum(a) for a in matched],
                    "value": None,
                    "metadata": None,
                }
            )
        return found


def _checksum(address: str) -> str:
    return checksum(address) if len(address) == 42 else address


def alert_batch(match: Match) -> MatchBatch:
    """The MatchBatch of one Forta match: one alert, one monitor (its own request id)."""
    return {
        "id": match["id"],
        "monitorId": match["monitor"]["id"],
        "network": match["monitor"]["network"],
        "blockNumber": match["blockNumber"],
        "blockHash": match["blockHash"],
        "matches": [match],
        "retracted": False,
        "channel": None,
        "redelivery": False,
    }
