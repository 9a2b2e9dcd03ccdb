"""Hooks' rules: which tasks run on an operation, in which order, and what an answer does."""

from typing import Any

import pytest

from vigil.config.models import HookConfig
from vigil.processors.hooks import HookAnswerError, bound, replaced

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
    with pytest.raises(ValueError, match="either before: notify or after: notify"):
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
