"""API key scopes: what a key holds, and the per-task run scope."""

import pytest

from vigil.config.access import check_scopes, new_key
from vigil.errors import ConfigError


def test_tasks_run_holds_every_task_and_tasks_run_id_one() -> None:
    _, every = new_key("ops", ["tasks:run"], 0)
    _, one = new_key("ops", ["tasks:run:counter"], 0)
    assert every.allows("tasks:run:counter") and every.allows("tasks:run:other")
    assert one.allows("tasks:run:counter") and not one.allows("tasks:run:other")
    assert not one.allows("tasks:run") and not one.allows("tasks:write")
    _, all_of_them = new_key("ops", ["*"], 0)
    assert all_of_them.allows("tasks:run:counter")
    revoked = every.model_copy(update={"revoked_ms": 1})
    assert not revoked.allows("tasks:run:counter")


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ("tasks:runn", "did you mean tasks:run?"),
        ("tasks:run:Not An Id", "unknown scope 'tasks:run:Not An Id'"),
        ("sql:raed", "did you mean sql:read?"),
    ],
)
def test_unknown_scopes_are_refused_by_name(scope: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        check_scopes([scope])
