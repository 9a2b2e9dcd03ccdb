"""Property tests and a fuzz run of the condition language."""

import contextlib
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.errors import ConditionError, ConditionTypeError
from vigil.processors.conditions import compile_condition
from vigil.processors.conditions.ast import parse
from vigil.processors.conditions.ast import render as print_tree

KEYWORDS = {
    "and": ["and", "AND", "And", "&&"],
    "or": ["or", "OR", "||"],
    "not": ["not", "NOT", "!"],
}
ENV = {"a": 7, "b": 2**200, "c": 0, "s": "Hello", "t": True, "f": False}


def numbers() -> st.SearchStrategy[tuple[str, int]]:
    """(text, value) of integer expressions over literals, names and + - * ^."""
    leaf = st.one_of(
        st.integers(0, 10**30).map(lambda n: (str(n), n)),
        st.integers(0, 10**30).map(lambda n: (hex(n), n)),
        st.sampled_from([("a", 7), ("b", 2**200), ("c", 0)]),
    )

    def combine(children: st.SearchStrategy[tuple[str, int]]) -> st.SearchStrategy[tuple[str, int]]:
        return st.one_of(
            st.tuples(children, st.sampled_from(["+", "-", "*"]), children).map(
                lambda x: (
                    f"({x[0][0]} {x[1]} {x[2][0]})",
                    {"+": x[0][1] + x[2][1], "-": x[0][1] - x[2][1], "*": x[0][1] * x[2][1]}[x[1]],
                )
            ),
            st.tuples(children, st.integers(0, 3)).map(
                lambda x: (f"({x[0][0]} ^ {x[1]})", x[0][1] ** x[1])
            ),
            children.map(lambda x: (f"-({x[0]})", -x[1])),
        )

    return st.recursive(leaf, combine, max_leaves=6)


def booleans() -> st.SearchStrategy[tuple[Any, bool]]:
    """(parts, value); parts are rendered later with random keyword spellings."""
    comparison = st.tuples(
        numbers(), st.sampled_from(["==", "!=", "<", ">", "<=", ">="]), numbers()
    ).map(
        lambda x: (
            f"{x[0][0]} {x[1]} {x[2][0]}",
            {
                "==": x[0][1] == x[2][1],
                "!=": x[0][1] != x[2][1],
                "<": x[0][1] < x[2][1],
                ">": x[0][1] > x[2][1],
                "<=": x[0][1] <= x[2][1],
                ">=": x[0][1] >= x[2][1],
            }[x[1]],
        )
    )
    leaf = st.one_of(
        comparison,
        st.sampled_from(
            [
                ("t", True),
                ("f", False),
                ("true", True),
                ("FALSE", False),
                ("s contains 'ell'", True),
            ]
        ),
    )

    def combine(children: st.SearchStrategy[tuple[Any, bool]]) -> st.SearchStrategy[Any]:
        return st.one_of(
            st.tuples(children, st.sampled_from(["and", "or"]), children).map(
                lambda x: (
                    (x[1], x[0][0], x[2][0]),
                    (x[0][1] and x[2][1]) if x[1] == "and" else (x[0][1] or x[2][1]),
                )
            ),
            children.map(lambda x: (("not", x[0]), not x[1])),
        )

    return st.recursive(leaf, combine, max_leaves=8)


def render(parts: Any, draw: Any) -> str:
    if isinstance(parts, str):
        return parts
    if parts[0] == "not":
        return f"{draw(st.sampled_from(KEYWORDS['not']))} ({render(parts[1], draw)})"
    keyword = draw(st.sampled_from(KEYWORDS[parts[0]]))
    space = draw(st.sampled_from([" ", "  ", "\n"]))
    return f"({render(parts[1], draw)}){space}{keyword}{space}({render(parts[2], draw)})"


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_compiled_conditions_agree_with_python(data: st.DataObject) -> None:
    parts, expected = data.draw(booleans())
    text = render(parts, data.draw)
    assert compile_condition(text).holds(ENV) is expected, text


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_not_not_is_identity(data: st.DataObject) -> None:
    parts, expected = data.draw(booleans())
    text = render(parts, data.draw)
    assert compile_condition(f"NOT (not ({text}))").holds(ENV) is expected


EXTRA_LEAVES = [
    "vals[0] == 5",
    "order.amount >= 1.5",
    '$1 == "hel\\"lo"',
    "to == '0xD5180D374B6D1961BA24D0A4DBF26D696FDA4CAD'",
    "s starts_with 'H\\u00e9'",
    'name ends_with "\\n"',
    "(a == 7) == true",
    "-a ^ 2 % 3 / 4 > 0x0",
]


@settings(max_examples=300, deadline=None)
@given(st.data(), st.lists(st.sampled_from(EXTRA_LEAVES), max_size=3))
def test_printing_a_tree_parses_back_to_the_same_tree(
    data: st.DataObject, extra: list[str]
) -> None:
    parts, expected = data.draw(booleans())
    text = " OR ".join([f"({render(parts, data.draw)})", *extra])
    tree = parse(text)
    printed = print_tree(tree)
    assert parse(printed) == tree, (text, printed)
    if not extra:  # the printed text also means the same
        assert compile_condition(printed).holds(ENV) is expected


ALPHABET = "abst$0129xX_ .()[]\"'=!<>&|+-*/^%#@,\n" + "andornotcontainsstarts_with"


@settings(max_examples=1500, deadline=None)
@given(st.text(alphabet=ALPHABET, max_size=40))
def test_fuzzed_input_raises_only_condition_errors(text: str) -> None:
    try:
        condition = compile_condition(text)
    except ConditionError:
        return
    assert parse(print_tree(parse(text))) == parse(text)  # whatever parses, prints back
    with contextlib.suppress(ConditionTypeError):  # a mismatch at evaluation is no match
        condition.holds(ENV)
