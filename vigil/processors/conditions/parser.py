"""The condition language's parser: the grammar loaded once, string literals, syntax errors.

Syntax errors are ConditionErrors that say where (line and column), what was found and what
was expected, with lark's context and a caret under the position.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import Any

from lark import Lark, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from vigil.errors import ConditionError


@cache
def _lark() -> Lark:
    text = (resources.files("vigil.processors.conditions") / "grammar.lark").read_text()
    return Lark(text, parser="lalr", maybe_placeholders=False)


def parse_tree(text: str, where: str = "condition") -> Tree[Any]:
    """The parse tree of ``text``; a syntax error is a ConditionError prefixed with ``where``."""
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as exc:
        raise ConditionError(f"{where}: {describe(exc, text)}") from None
    return tree if isinstance(tree, Tree) else Tree("start", [tree])


_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|.)", re.DOTALL)
_ESCAPED = {"n": "\n", "t": "\t", "r": "\r", "0": "\0"}


def unescape(token: str) -> str:
    """A string literal's value: backslash escapes replaced, any other character kept as is
    (decoding the whole body as ``unicode_escape`` would mangle non-ASCII text)."""

    def replace(match: re.Match[str]) -> str:
        code = match.group(1)
        if len(code) > 1:  # \uXXXX or \xXX
            return chr(int(code[1:], 16))
        return _ESCAPED.get(code, code)

    body = token[1:-1]
    return _ESCAPE.sub(replace, body) if "\\" in body else body


def describe(exc: UnexpectedInput, text: str) -> str:
    """Where a syntax error is, what was found, what was expected, and the caret context."""
    expected: Iterable[str] = getattr(exc, "expected", None) or getattr(exc, "allowed", None) or []
    at_end = isinstance(exc, UnexpectedEOF) or (
        isinstance(exc, UnexpectedToken) and exc.token.type == "$END"
    )
    if at_end:  # lark points at the last token; the caret belongs after it
        lines = text.rstrip().splitlines() or [""]
        where = f"line {len(lines)}, column {len(lines[-1]) + 1}"
        context = f"{lines[-1]}\n{' ' * len(lines[-1])}^"
        return (
            f"syntax error at {where}: unexpected end of input; expected one of: "
            + ", ".join(sorted(getattr(exc, "expected", None) or []))
            + f"\n{context}"
        )
    where = f"line {exc.line}, column {exc.column}"
    context = exc.get_context(text).rstrip("\n")
    found = (
        "end of input"
        if isinstance(exc, UnexpectedEOF)
        else (
            repr(str(exc.token))
            if isinstance(exc, UnexpectedToken)
            else repr(text[exc.pos_in_stream or 0])
            if isinstance(exc, UnexpectedCharacters)
            else "?"
        )
    )
    names = ", ".join(sorted(expected))
    return f"syntax error at {where}: unexpected {found}; expected one of: {names}\n{context}"
