"""Hooks on vigil's own operations (seed 004): which tasks run before or after one, in
which order, and what a ``before`` hook's answer does to the operation.

- A task binds itself with ``hooks: [{before: notify, channels: [ops]}]`` (or ``after``);
  no ``channels`` binds it to every channel; ``{before: relay, relayers: [payouts]}`` to a
  relayer's transactions.
- Order: the hooks of one operation run one after another, by task id; a ``before`` hook
  gets the payload as the hooks before it left it.
- A ``before`` hook that returns nothing (``None``) keeps the payload; one that returns an
  object replaces the fields it gives (``subject``, ``message``, ``events`` for a
  notification; the request's fields for a relayer transaction), and the result is
  checked again before the operation goes on; one that raises, or answers something
  else, aborts the operation with that reason.
- ``after`` hooks run from the operation's record, later, and change nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vigil.config.models import HookConfig

REPLACEABLE = {"subject": str, "message": str, "events": list}


class HookAnswerError(ValueError):
    """A ``before`` hook's answer is not a payload the operation can go on with."""


def bound(
    hooks: Mapping[str, list[HookConfig]], when: str, operation: str, *names: str
) -> list[str]:
    """The ids of the tasks bound ``when`` (before, after) ``operation`` on the object
    ``names`` name (a channel's alias; a relayer's name and id), in the order they run."""

    def narrowed(hook: HookConfig) -> bool:
        targets = hook.relayers if operation == "relay" else hook.channels
        return not targets or any(name in targets for name in names)

    return sorted(
        task_id
        for task_id, configs in hooks.items()
        if any(getattr(hook, when) == operation and narrowed(hook) for hook in configs)
    )


def replaced(payload: dict[str, Any], answer: Any) -> dict[str, Any]:
    """The payload after a ``before`` hook answered ``answer``; raises HookAnswerError."""
    if answer is None:
        return payload
    if not isinstance(answer, dict):
        raise HookAnswerError(
            f"expected nothing (keep the notification) or an object with "
            f"{', '.join(REPLACEABLE)}; got {type(answer).__name__}"
        )
    unknown = sorted(set(answer) - set(REPLACEABLE))
    if unknown:
        raise HookAnswerError(
            f"{unknown[0]}: not a field a hook may replace (only {', '.join(REPLACEABLE)})"
        )
    for name, kind in REPLACEABLE.items():
        if name in answer and not isinstance(answer[name], kind):
            raise HookAnswerError(f"{name}: expected a {kind.__name__}")
    events = answer.get("events", payload["events"])
    if not events or not all(isinstance(event, dict) for event in events):
        raise HookAnswerError("events: expected a non-empty list of event objects")
    if not answer.get("message", payload["message"]).strip():
        raise HookAnswerError("message: expected some text")
    return {**payload, **answer}


HOOKED_KINDS = ("monitor", "channel")  # the config changes apply hooks see


def replaced_changes(changes: list[dict[str, Any]], answer: Any) -> list[dict[str, Any]]:
    """The changes after a ``before: apply`` hook answered ``answer``: the same objects and
    actions, in the same order, their specs as the hook gives them (checked again by the
    caller); raises HookAnswerError."""
    if answer is None:
        return changes
    given = answer.get("changes") if isinstance(answer, dict) else None
    if not isinstance(given, list) or set(answer) != {"changes"}:
        raise HookAnswerError(
            'expected nothing (keep the changes) or {"changes": [...]}, the changes given'
        )
    keys = [(c["kind"], c["id"], c["action"]) for c in changes]
    got = [
        (c.get("kind"), c.get("id"), c.get("action")) if isinstance(c, dict) else None
        for c in given
    ]
    if got != keys:
        raise HookAnswerError(
            "changes: a hook may change specs, not which objects change or how "
            f"(expected {len(keys)} change(s): {', '.join(f'{k} {i} {a}' for k, i, a in keys)})"
        )
    for number, change in enumerate(given):
        if change["action"] == "upsert" and not isinstance(change.get("spec"), dict):
            raise HookAnswerError(f"changes[{number}].spec: expected an object")
    return [{**old, "spec": new.get("spec")} for old, new in zip(changes, given, strict=True)]


# what a before-relay hook may set: the Relay API's SendTransactionRequest fields
TRANSACTION_FIELDS = frozenset(
    {
        "to",
        "value",
        "data",
        "gasLimit",
        "speed",
        "gasPrice",
        "maxFeePerGas",
        "maxPriorityFeePerGas",
        "validUntil",
        "isPrivate",
    }
)


def replaced_transaction(payload: dict[str, Any], answer: Any) -> dict[str, Any]:
    """The transaction request after a ``before: relay`` hook answered ``answer`` (checked
    again by the caller, as a request and against the policies); raises HookAnswerError."""
    if answer is None:
        return payload
    if not isinstance(answer, dict):
        raise HookAnswerError(
            "expected nothing (send the transaction as it is) or an object of transaction "
            f"fields; got {type(answer).__name__}"
        )
    unknown = sorted(set(answer) - TRANSACTION_FIELDS)
    if unknown:
        raise HookAnswerError(
            f"{unknown[0]}: not a transaction field (only {', '.join(sorted(TRANSACTION_FIELDS))})"
        )
    pricing = {"speed", "gasPrice", "maxFeePerGas", "maxPriorityFeePerGas"}
    if pricing & set(answer):  # a new price replaces the old one whole
        payload = {k: v for k, v in payload.items() if k not in pricing}
    return {**payload, **answer}
