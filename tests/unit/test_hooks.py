"""Hooks' rules: which tasks run on an operation, in which order, and what an answer does."""

from typing import Any

import pytest

from vigil.config.models import HookConfig
from vigil.processors.hooks import HookAnswerError, bound, replaced, replaced_changes

PAYLOAD = {"subject": "s", "message": "m", "events": [{"id": "1"}], "channel": {"alias": "ops"}}


def test_hooks_run_by_task_id_and_channel_narrows_them() -> None:
    hooks = {
        "zeta": [HookConfig(before="notify")],
        "alpha": [HookConfig(before="notify", channels=["ops"])],
        "mid": [HookConfig(after="notify")],
        "pager-only": [HookConfig(before="notify", channels=["pager"])],
    }
    assert bound(hooks, "before", "notify", "ops") == ["alpha", "zeta"]
    assert bound(hooks, "before", "notify", "pager") == ["pager-only", "zeta"]
    assert bound(hooks, "after", "notify", "ops") == ["mid"]
    with pytest.raises(ValueError, match="give either before"):
        HookConfig(before="notify", after="notify")


def test_nothing_keeps_the_payload_and_an_object_replaces_what_it_gives() -> None:
    assert replaced(PAYLOAD, None) is PAYLOAD
    assert replaced(PAYLOAD, {"message": "new"}) == {**PAYLOAD, "message": "new"}
    events = [{"id": "1", "extra": True}]
    assert replaced(PAYLOAD, {"events": events})["events"] == events


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("text", "got str"),
        ({"channel": "other"}, "channel: not a field a hook may replace"),
        ({"subject": 1}, "subject: expected a str"),
        ({"events": []}, "events: expected a non-empty list"),
        ({"message": "  "}, "message: expected some text"),
    ],
)
def test_any_other_answer_aborts(answer: Any, expected: str) -> None:
    with pytest.raises(HookAnswerError, match=expected):
        replaced(PAYLOAD, answer)


CHANGES = [
    {"kind": "monitor", "id": "m", "action": "upsert", "source": "apply", "spec": {"a": 1}},
    {"kind": "channel", "id": "c", "action": "delete", "source": "apply", "spec": None},
]


def test_an_apply_hook_may_change_specs_but_not_which_objects_change() -> None:
    assert replaced_changes(CHANGES, None) is CHANGES
    new = [{**CHANGES[0], "spec": {"a": 2}}, CHANGES[1]]
    assert replaced_changes(CHANGES, {"changes": new})[0]["spec"] == {"a": 2}
    with pytest.raises(HookAnswerError, match="not which objects change"):
        replaced_changes(CHANGES, {"changes": new[:1]})
    with pytest.raises(HookAnswerError, match=r"changes\[0\]\.spec: expected an object"):
        replaced_changes(CHANGES, {"changes": [{**CHANGES[0], "spec": None}, CHANGES[1]]})
    with pytest.raises(HookAnswerError, match="expected nothing"):
        replaced_changes(CHANGES, {"changes": new, "extra": 1})


def test_a_relay_hook_replaces_transaction_fields_and_nothing_else() -> None:
    from vigil.processors.hooks import replaced_transaction

    sent = {"to": "0x" + "11" * 20, "value": "1", "gasLimit": 21000, "speed": "fast"}
    assert replaced_transaction(sent, None) == sent
    cheaper = replaced_transaction(sent, {"value": "9", "gasPrice": "7"})
    assert cheaper == {"to": sent["to"], "value": "9", "gasLimit": 21000, "gasPrice": "7"}
    for answer, message in (([], "got list"), ({"nonce": 3}, "nonce: not a transaction field")):
        with pytest.raises(HookAnswerError, match=message):
            replaced_transaction(sent, answer)


def test_relay_hooks_are_narrowed_by_relayer_and_channels_only_on_notify() -> None:
    payouts = HookConfig.model_validate({"before": "relay", "relayers": ["payouts"]})
    every = HookConfig.model_validate({"after": "relay"})
    hooks = {"b-guard": [payouts], "a-watch": [every]}
    assert bound(hooks, "before", "relay", "payouts", "id-1") == ["b-guard"]
    assert bound(hooks, "before", "relay", "ops", "id-2") == []
    assert bound(hooks, "after", "relay", "ops", "id-2") == ["a-watch"]
    with pytest.raises(ValueError, match="channels: only a notify hook"):
        HookConfig.model_validate({"before": "relay", "channels": ["ops"]})
    with pytest.raises(ValueError, match="relayers: only a relay hook"):
        HookConfig.model_validate({"after": "notify", "relayers": ["ops"]})
