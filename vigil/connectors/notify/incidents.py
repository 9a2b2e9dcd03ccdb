"""What the incident channels (PagerDuty, Opsgenie) share: plain fields filled from the event,
the event's time, its links."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from vigil.config.message import PLACEHOLDER, resolve
from vigil.connectors.notify.render import as_text


def fill(text: str, event: dict[str, Any]) -> str:
    """``{{ path }}`` in a plain field (dedup key, alias, entity, details)."""
    return PLACEHOLDER.sub(lambda m: as_text(resolve(event, m.group(1))), text)


def timestamp(event: dict[str, Any]) -> str:
    seconds = int(event.get("timestamp") or 0)
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def links(event: dict[str, Any]) -> list[dict[str, str]]:
    link = (event.get("transaction") or {}).get("link")
    return [{"href": link, "text": "Transaction"}] if link else []
