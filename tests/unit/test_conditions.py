from typing import Any

import pytest

from vigil.errors import ConditionError, ConditionTypeError
from vigil.processors.conditions import compile_condition

SEED_EXAMPLES: list[tuple[str, dict[str, Any], bool]] = [
    (
        "gasPrice > 50000000000 and gasUsed > 20000",
        {"gasPrice": 6 * 10**10, "gasUsed": 21000},
        True,
    ),
    (
        "gasPrice > 50000000000 and gasUsed > 20000",
        {"gasPrice": 6 * 10**10, "gasUsed": 20000},
        False,
    ),
    ("value > 0xde0b6b3a7640000 and value < 0x56bc75e2d63100000", {"value": 2 * 10**18}, True),
    ("value > 0xde0b6b3a7640000 and value < 0x56bc75e2d63100000", {"value": 10**20}, False),
    ("vals[0] == 5", {"vals": [5, 6]}, True),
    ('$1 == "hello"', {"$1": "hello"}, True),
    ('status == "failed"', {"status": "success"}, False),
    (
        'from != "0xd5180d374b6d1961ba24d0a4dbf26d696fda4cad"',
        {"from": "0xD5180D374B6D1961BA24D0A4DBF26D696FDA4CAD"},
        False,
    ),
]


@pytest.mark.parametrize(("text", "env", "expected"), SEED_EXAMPLES)
def test_seed_examples(text: str, env: dict[str, Any], expected: bool) -> None:
    assert compile_condition(text).holds(env) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("NOT false", True),
        ("!(1 > 2) && true", True),
        ("false || true AND false", False),  # AND binds tighter than OR
        ("not false and false", False),  # NOT binds tighter than AND
        ("2 ^ 3 ^ 2 == 512", True),  # power is right-associative
        ("2 ^ 255 * 2 == 2 ^ 256", True),  # exact integers past uint256
        ("7 / 2 == 3", True),  # integer division
        ("-3 + 5 == 2", True),
        ("1.5 < 2", True),
        ("'Hello' contains 'ELL'", True),
        ("'abc' starts_with 'a' and 'abc' ends_with 'C'", True),
        ("'a\\'b' == \"a'b\"", True),
    ],
)
def test_operators(text: str, expected: bool) -> None:
    assert compile_condition(text).holds({}) is expected


def test_members_and_indexes() -> None:
    env = {"order": {"amount": 10, "items": [[1, 2], [3, 4]]}}
    assert compile_condition("order.amount == 10 and order.items[1][0] == 3").holds(env)


def test_syntax_error_has_position_caret_and_expected_tokens() -> None:
    with pytest.raises(ConditionError) as caught:
        compile_condition("value > > 3", where="monitor.yaml: monitor 'x': conditions.transaction")
    message = str(caught.value)
    assert "monitor.yaml: monitor 'x': conditions.transaction" in message
    assert "line 1, column 9" in message
    assert "value > > 3\n        ^" in message
    assert "NUMBER" in message


def test_unknown_names_are_load_errors_when_known_is_given() -> None:
    with pytest.raises(ConditionError, match=r"unknown name\(s\) amount"):
        compile_condition("amount > 1", known=["value", "$0"])
    assert compile_condition("value > 1", known=["value"]).names == {"value"}


def test_type_mismatch_raises_at_evaluation() -> None:
    with pytest.raises(ConditionTypeError):
        compile_condition("value > 1").holds({"value": "not a number"})
    with pytest.raises(ConditionTypeError):
        compile_condition("value contains 'x'").holds({"value": 5})
    for zero in ("value % 0 == 1", "value / 0 == 1", "value / (value - 5) > 0"):
        with pytest.raises(ConditionTypeError):  # found by the fuzz run: `0%0` crashed
            compile_condition(zero).holds({"value": 5})
