"""Custom filters' rules (seed 001, "autotask conditions"): which matches a filter is asked
about, and which its answer keeps.

- Only matches that passed the built-in conditions go to the filter, the block's matches in
  requests of at most ``BATCH`` (25) events, each event as webhooks get it.
- The answer is ``{"matches": [{"hash": …, "metadata": {…}?}]}``: the matches with those
  hashes stay, each with its metadata (for templates and history); an empty object keeps
  none. An answer of any other shape is an error, and an error keeps none.
"""

from __future__ import annotations

import json
from typing import Any

from vigil.schemas.events import match_event
from vigil.schemas.records import Match

BATCH = 25


class FilterAnswerError(ValueError):
    """A filter's answer does not follow ``{"matches": [{"hash", "metadata"?}]}``."""


def requests(matches: list[Match]) -> list[list[Match]]:
    """The matches in the groups the filter is called with, in order."""
    return [matches[start : start + BATCH] for start in range(0, len(matches), BATCH)]


def request_body(matches: list[Match], abi: list[Any] | None = None) -> dict[str, Any]:
    """What a filter is called with: the events, with the monitor's ``abi``."""
    return {"events": [match_event(match, abi) for match in matches]}


def kept(matches: list[Match], answer: Any) -> list[Match]:
    """The matches the answer keeps, their metadata attached; raises FilterAnswerError."""
    if answer is None or answer == {}:
        return []
    if not isinstance(answer, dict) or not isinstance(answer.get("matches"), list):
        raise FilterAnswerError(
            f'expected {{"matches": [{{"hash": …, "metadata"?: {{…}}}}]}}, got {_short(answer)}'
        )
    chosen: dict[str, Any] = {}
    for number, item in enumerate(answer["matches"]):
        if not isinstance(item, dict) or not isinstance(item.get("hash"), str):
            raise FilterAnswerError(f"matches[{number}]: expected an object with a hash string")
        metadata = item.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise FilterAnswerError(f"matches[{number}].metadata: expected an object")
        chosen[item["hash"].lower()] = metadata
    return [
        {**match, "metadata": _metadata(chosen[match["hash"].lower()])}
        for match in matches
        if match["hash"].lower() in chosen
    ]


def _metadata(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."
