"""The condition language's syntax tree as plain tuples, and a printer that parses back to it.

Nodes: ``("or", (x, ...))``, ``("and", (x, ...))``, ``("not", x)``, ``("cmp", op, l, r)``,
``("arith", op, l, r)`` (left-associative; ``^`` right), ``("neg", x)``, ``("int", n)``,
``("dec", "1.5")``, ``("hex", "0xab")``, ``("str", s)``, ``("bool", b)`` and
``("name", root, (("index", 0) | ("member", "x"), ...))``. Keyword spellings (``and``,
``AND``, ``&&``) and redundant parentheses leave no trace: equal trees mean equal conditions.
"""

from __future__ import annotations

from typing import Any

from lark import Token, Tree

from vigil.processors.conditions.parser import parse_tree, unescape

Node = tuple[Any, ...]


def parse(text: str) -> Node:
    """The tree of ``text``; a syntax error is a ConditionError as in compile_condition."""
    return _node(parse_tree(text))


def _node(tree: Tree[Any] | Token) -> Node:
    if isinstance(tree, Token):  # lark inlines single-token rules away only with a rule name
        raise AssertionError(f"unexpected token {tree!r}")
    rule, kids = tree.data, tree.children
    if rule in ("or_expr", "and_expr"):
        return (rule[:-5], tuple(_node(k) for k in kids if isinstance(k, Tree)))
    if rule == "not_":
        return ("not", _node(kids[1]))
    if rule == "comparison":
        return ("cmp", str(kids[1]).lower(), _node(kids[0]), _node(kids[2]))
    if rule in ("sum", "product"):
        node = _node(kids[0])
        for op, operand in zip(kids[1::2], kids[2::2], strict=True):
            node = ("arith", str(op), node, _node(operand))
        return node
    if rule == "power":
        return ("arith", "^", _node(kids[0]), _node(kids[2]))
    if rule == "neg":
        return ("neg", _node(kids[0]))
    if rule == "number":
        digits = str(kids[0])
        return ("dec", digits) if "." in digits else ("int", int(digits))
    if rule == "hex":
        return ("hex", str(kids[0]).lower())
    if rule == "string":
        return ("str", unescape(str(kids[0])))
    if rule in ("true", "false"):
        return ("bool", rule == "true")
    if rule == "name":
        steps = tuple(
            ("index", int(str(a.children[0])))
            if a.data == "index"
            else ("member", str(a.children[0]))
            for a in kids[1:]
        )
        return ("name", str(kids[0]), steps)
    raise AssertionError(f"unknown rule {rule}")


def _quote(value: str) -> str:
    out = []
    for char in value:
        if char in '"\\':
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif not (" " <= char <= "~"):
            out.append(f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def render(node: Node) -> str:
    """Canonical text of ``node``: upper-case keywords, every compound operand parenthesized."""
    kind = node[0]
    if kind in ("or", "and"):
        return f" {kind.upper()} ".join(f"({render(child)})" for child in node[1])
    if kind == "not":
        return f"NOT ({render(node[1])})"
    if kind in ("cmp", "arith"):
        return f"({render(node[2])}) {node[1]} ({render(node[3])})"
    if kind == "neg":
        return f"-({render(node[1])})"
    if kind == "int":
        return str(node[1])
    if kind in ("dec", "hex"):
        return str(node[1])
    if kind == "str":
        return _quote(node[1])
    if kind == "bool":
        return "true" if node[1] else "false"
    if kind == "name":
        steps = "".join(f"[{key}]" if step == "index" else f".{key}" for step, key in node[2])
        return f"{node[1]}{steps}"
    raise AssertionError(f"unknown node {kind}")
