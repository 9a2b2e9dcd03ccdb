"""Alert threshold and timeout (SPEC C8): which matches of a monitor notify, as pure functions.

State per monitor (kept in a Faust table keyed by monitor id) is the recent matches with
their event time and decision, and the time of the last notification. Time is the match's
own (block) time, so a replay decides exactly as the first pass did; a match seen again (a
redelivered record) gets its first decision back and counts once.

Threshold: the matches in ``(t - window, t]`` including this one must number ``amount``;
below that the match is suppressed, and once reached every match notifies until the count
in the window falls below again. Timeout: after a notification, matches within
``timeout_seconds`` of it are suppressed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_REMEMBERED = 10_000  # matches kept per monitor to recognise a repeat


@dataclass(frozen=True)
class Gate:
    """A monitor's rate limits; the default gate lets everything through."""

    amount: int = 0
    window_seconds: int = 0
    timeout_seconds: int = 0

    @property
    def open(self) -> bool:
        return self.amount <= 1 and self.timeout_seconds == 0


@dataclass(frozen=True)
class Decision:
    notify: bool
    reason: str | None  # threshold | timeout
    detail: str
    count: int  # matches in the window, this one included


def decide(
    state: dict[str, Any] | None, gate: Gate, match_id: str, at: int
) -> tuple[dict[str, Any], Decision]:
    """The new state and the decision for the match ``match_id`` at time ``at`` (seconds)."""
    seen: list[list[Any]] = list((state or {}).get("seen", []))
    last: int | None = (state or {}).get("last")
    for _when, known, notified, reason in seen:
        if known == match_id:  # a repeat: the first decision stands
            return {"seen": seen, "last": last}, Decision(bool(notified), reason, "repeat", 0)
    in_window = 1 + sum(
        1 for when, *_ in seen if gate.window_seconds and at - gate.window_seconds < when <= at
    )
    if gate.amount > 1 and in_window < gate.amount:
        decision = Decision(
            False,
            "threshold",
            f"{in_window} of {gate.amount} matches within {gate.window_seconds} s",
            in_window,
        )
    elif gate.timeout_seconds and last is not None and 0 <= at - last < gate.timeout_seconds:
        decision = Decision(
            False,
            "timeout",
            f"{at - last} s after the last notification; timeout {gate.timeout_seconds} s",
            in_window,
        )
    else:
        decision = Decision(True, None, "", in_window)
        last = at if last is None else max(last, at)
    seen.append([at, match_id, int(decision.notify), decision.reason])
    horizon = at - max(gate.window_seconds, gate.timeout_seconds, 3600)
    seen = [entry for entry in seen if entry[0] > horizon][-MAX_REMEMBERED:]
    return {"seen": seen, "last": last}, decision
