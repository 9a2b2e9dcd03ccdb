"""Forta alerts (GraphQL API or a Local Mode batch) as vigil's FortaAlert record, and back as
the alert object tasks and templates receive, with the legacy field names too (SPEC C3)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast, get_args

from vigil.errors import VigilError
from vigil.schemas.records import FortaAlert, FortaFindingType, FortaSeverity

FINDING_TYPES: tuple[str, ...] = get_args(FortaFindingType)  # as the schema lists them
SEVERITIES: tuple[str, ...] = get_args(FortaSeverity)
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}


class AlertError(VigilError):
    """An alert body does not have the shape of the Forta API; ``path`` names the field."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


def _text(value: Any, path: str, *, required: bool = False) -> str:
    if value is None:
        if required:
            raise AlertError(path, "is required")
        return ""
    if not isinstance(value, str):
        raise AlertError(path, f"expected a string, got {type(value).__name__}")
    return value


def _integer(value: Any, path: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise AlertError(path, f"expected an integer, got {type(value).__name__}")
    try:
        number = int(value, 0) if isinstance(value, str) else value
    except ValueError:
        raise AlertError(path, f"expected an integer, got {value!r}") from None
    if number < 0:
        raise AlertError(path, f"expected 0 or more, got {number}")
    return number


def _choice(value: Any, allowed: tuple[str, ...], unknown: str, path: str) -> str:
    """An enum value; one Forta adds later is kept as ``unknown`` rather than refused."""
    text = _text(value, path).upper()
    return text if text in allowed else unknown


def alert_record(
    alert: Any, *, origin: str, received_at: int, scan_node: str | None = None, where: str = "alert"
) -> FortaAlert:
    """The FortaAlert record of one alert object (API or Local Mode shape)."""
    if not isinstance(alert, Mapping):
        raise AlertError(where, f"expected an object, got {type(alert).__name__}")
    source = alert.get("source") or {}
    if not isinstance(source, Mapping):
        raise AlertError(f"{where}.source", "expected an object")
    bot = source.get("bot") or {}
    block = source.get("block") or {}
    if not isinstance(bot, Mapping) or not isinstance(block, Mapping):
        raise AlertError(f"{where}.source", "bot and block must be objects")
    metadata = alert.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        raise AlertError(f"{where}.metadata", "expected an object of strings")
    addresses = alert.get("addresses") or []
    if not isinstance(addresses, list) or not all(isinstance(a, str) for a in addresses):
        raise AlertError(f"{where}.addresses", "expected a list of strings")
    chain_id = _integer(block.get("chainId", alert.get("chainId")), f"{where}.source.block.chainId")
    return {
        "hash": _text(alert.get("hash"), f"{where}.hash", required=True).lower(),
        "alertId": _text(alert.get("alertId"), f"{where}.alertId", required=True),
        "name": _text(alert.get("name"), f"{where}.name"),
        "description": _text(alert.get("description"), f"{where}.description"),
        "protocol": _text(alert.get("protocol"), f"{where}.protocol"),
        "findingType": cast(
            FortaFindingType,
            _choice(
                alert.get("findingType"), FINDING_TYPES, "UNKNOWN_TYPE", f"{where}.findingType"
            ),
        ),
        "severity": cast(
            FortaSeverity,
            _choice(alert.get("severity"), SEVERITIES, "UNKNOWN", f"{where}.severity"),
        ),
        "metadata": {str(k): "" if v is None else str(v) for k, v in metadata.items()},
        "addresses": [a.lower() for a in addresses],
        "createdAt": _text(alert.get("createdAt"), f"{where}.createdAt"),
        "scanNodeCount": _integer(alert.get("scanNodeCount") or 1, f"{where}.scanNodeCount"),
        "source": {
            "transactionHash": _text(
                source.get("transactionHash"), f"{where}.source.transactionHash"
            ),
            "bot": {
                "id": _text(bot.get("id"), f"{where}.source.bot.id").lower(),
                "image": _text(bot.get("image"), f"{where}.source.bot.image"),
                "reference": _text(bot.get("reference"), f"{where}.source.bot.reference"),
            },
            "block": {
                "number": _integer(block.get("number"), f"{where}.source.block.number"),
                "hash": _text(block.get("hash"), f"{where}.source.block.hash"),
                "timestamp": _text(block.get("timestamp"), f"{where}.source.block.timestamp"),
                "chainId": chain_id,
            },
        },
        "chainId": chain_id,
        "origin": origin,
        "scanNode": scan_node.lower() if scan_node else None,
        "receivedAt": received_at,
    }


def alert_view(record: Mapping[str, Any]) -> dict[str, Any]:
    """The alert as tasks and templates get it: current names and the legacy ones (seed 001)."""
    source = record["source"]
    view = {
        "hash": record["hash"],
        "alertId": record["alertId"],
        "name": record["name"],
        "description": record["description"],
        "protocol": record["protocol"],
        "findingType": record["findingType"],
        "severity": record["severity"],
        "metadata": dict(record["metadata"]),
        "addresses": list(record["addresses"]),
        "createdAt": record["createdAt"],
        "scanNodeCount": record["scanNodeCount"],
        "source": {
            "transactionHash": source["transactionHash"],
            "bot": dict(source["bot"]),
            "block": dict(source["block"]),
        },
        "chainId": record["chainId"],
    }
    # legacy names, still sent by the hosted service for compatibility
    view.update(
        {
            "alert_id": record["alertId"],
            "scanner_count": record["scanNodeCount"],
            "type": record["findingType"],
            "tx_hash": source["transactionHash"],
            "chain_Id": record["chainId"],
            "agent": dict(source["bot"]),
        }
    )
    return view


_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?$")


def created_ms(text: str) -> int:
    """Milliseconds of an RFC 3339 timestamp with any fraction (Forta gives nanoseconds)."""
    match = _RFC3339.match(text or "")
    if match is None:
        return 0
    base, fraction, zone = match.groups()
    zone = "+00:00" if zone in (None, "Z") else zone
    moment = datetime.fromisoformat(f"{base}{zone}")
    return int(moment.timestamp()) * 1000 + int((fraction or "0")[:3].ljust(3, "0"))
