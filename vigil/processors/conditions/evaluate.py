"""Compiles a condition to closures once; evaluation walks no tree per transaction."""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from lark import Token, Tree

from vigil.errors import ConditionError, ConditionTypeError
from vigil.processors.conditions.parser import parse_tree, unescape

Env = Mapping[str, Any]
Fn = Callable[[Env], Any]


def _is_hex(value: Any) -> bool:
    return isinstance(value, str) and value[:2].lower() == "0x"


def _numeric(value: Any) -> int | Decimal:
    if isinstance(value, bool):
        raise ConditionTypeError(f"expected a number, got boolean {value}")
    if isinstance(value, int | Decimal):
        return value
    if isinstance(value, str):
        try:
            return int(value, 16) if _is_hex(value) else int(value)
        except ValueError:
            try:
                return Decimal(value)
            except ArithmeticError:
                pass
    raise ConditionTypeError(f"expected a number, got {type(value).__name__} {value!r}")


class Labelled(str):
    """A named value that also compares as its number: a status "success" is also 1, so it
    equals what users see in the transaction (``"status": "0x1"``)."""

    number: int

    def __new__(cls, label: str, number: int) -> Labelled:
        value = super().__new__(cls, label)
        value.number = number
        return value


def _equal(left: Any, right: Any) -> bool:
    for named, other in ((left, right), (right, left)):
        if isinstance(named, Labelled) and not (isinstance(other, str) and not _is_hex(other)):
            return _equal(named.number, other)
    if isinstance(left, str) and isinstance(right, str):
        # case-insensitive, as the source documents say: checksummed or lower-case
        # addresses and hashes, and "FAILED" against "failed"
        return left.lower() == right.lower()
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right if isinstance(left, bool) and isinstance(right, bool) else False
    if isinstance(left, int | Decimal) or isinstance(right, int | Decimal):
        return _numeric(left) == _numeric(right)
    return bool(left == right)


def _string_op(op: Callable[[str, str], bool]) -> Callable[[Any, Any], bool]:
    def apply(left: Any, right: Any) -> bool:
        if not isinstance(left, str) or not isinstance(right, str):
            raise ConditionTypeError(f"string operator needs strings, got {left!r} and {right!r}")
        return op(left.lower(), right.lower())

    return apply


def _ordered(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    return lambda left, right: op(_numeric(left), _numeric(right))


def _power(base: Any, exponent: Any) -> Any:
    base, exponent = _numeric(base), _numeric(exponent)
    if isinstance(exponent, int) and exponent > 1024:
        raise ConditionTypeError(f"exponent {exponent} is too large")
    return base**exponent


def _divide(left: Any, right: Any) -> Any:
    left, right = _numeric(left), _numeric(right)
    if right == 0:
        raise ConditionTypeError("division by zero")
    if isinstance(left, int) and isinstance(right, int):
        return left // right  # integer arithmetic, as in Solidity
    return Decimal(left) / Decimal(right)


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": _equal,
    "!=": lambda a, b: not _equal(a, b),
    "<": _ordered(operator.lt),
    ">": _ordered(operator.gt),
    "<=": _ordered(operator.le),
    ">=": _ordered(operator.ge),
    "contains": _string_op(lambda a, b: b in a),
    "starts_with": _string_op(str.startswith),
    "ends_with": _string_op(str.endswith),
}
_ARITH: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda a, b: _numeric(a) + _numeric(b),
    "-": lambda a, b: _numeric(a) - _numeric(b),
    "*": lambda a, b: _numeric(a) * _numeric(b),
    "%": lambda a, b: _numeric(a) % _numeric(b),
    "/": _divide,
    "^": _power,
}

COMPARISONS = tuple(_COMPARE)  # the operators, as the reference lists them
ARITHMETIC = tuple(_ARITH)


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ConditionTypeError(f"expected a boolean, got {value!r}")


@dataclass(frozen=True)
class Condition:
    """A compiled condition: ``names`` it reads, ``holds(env)`` to evaluate it."""

    text: str
    names: frozenset[str]
    _fn: Fn

    def holds(self, env: Env) -> bool:
        """Evaluate; raises ConditionTypeError on incompatible operands."""
        return _truthy(self._fn(env))


class _Compiler:
    def __init__(self) -> None:
        self.names: set[str] = set()

    def build(self, node: Tree[Any] | Token) -> Fn:
        if isinstance(node, Token):
            raise AssertionError(f"unexpected token {node!r}")
        rule, kids = node.data, node.children
        if rule == "number":
            digits = str(kids[0])
            literal: Any = Decimal(digits) if "." in digits else int(digits)
            return lambda env: literal
        if rule == "hex":
            text = str(kids[0])
            return lambda env: text
        if rule == "string":
            value = unescape(str(kids[0]))
            return lambda env: value
        if rule in ("true", "false"):
            flag = rule == "true"
            return lambda env: flag
        if rule == "neg":
            inner = self.build(kids[0])
            return lambda env: -_numeric(inner(env))
        if rule == "not_":
            inner = self.build(kids[1])
            return lambda env: not _truthy(inner(env))
        if rule == "or_expr":
            parts = [self.build(k) for k in kids if isinstance(k, Tree)]
            return lambda env: any(_truthy(p(env)) for p in parts)
        if rule == "and_expr":
            parts = [self.build(k) for k in kids if isinstance(k, Tree)]
            return lambda env: all(_truthy(p(env)) for p in parts)
        if rule == "comparison":
            left, op, right = (
                self.build(kids[0]),
                _COMPARE[str(kids[1]).lower()],
                self.build(kids[2]),
            )
            return lambda env: op(left(env), right(env))
        if rule in ("sum", "product", "power"):
            fn = self.build(kids[0])
            for op_token, operand in zip(kids[1::2], kids[2::2], strict=True):
                fn = self._arith(fn, _ARITH[str(op_token)], self.build(operand))
            return fn
        if rule == "name":
            return self._name(kids)
        raise AssertionError(f"unknown rule {rule}")

    @staticmethod
    def _arith(left: Fn, op: Callable[[Any, Any], Any], right: Fn) -> Fn:
        def apply(env: Env) -> Any:
            try:
                return op(left(env), right(env))
            except ArithmeticError as exc:  # x % 0, Decimal overflow: no match, never a crash
                raise ConditionTypeError(f"arithmetic error: {exc}") from None

        return apply

    def _name(self, kids: list[Any]) -> Fn:
        root = str(kids[0])
        self.names.add(root)
        steps: list[tuple[str, Any]] = []
        for accessor in kids[1:]:
            if accessor.data == "index":
                steps.append(("index", int(accessor.children[0])))
            else:
                steps.append(("member", str(accessor.children[0])))

        def lookup(env: Env) -> Any:
            try:
                value = env[root]
            except KeyError:
                raise ConditionTypeError(f"no value named {root!r}") from None
            for kind, key in steps:
                try:
                    value = (
                        value[key]
                        if kind == "index" or isinstance(value, Mapping)
                        else getattr(value, key)
                    )
                except (IndexError, KeyError, TypeError, AttributeError):
                    raise ConditionTypeError(f"{root} has no {kind} {key!r}") from None
            return value

        return lookup


def compile_condition(
    text: str, *, known: Iterable[str] | None = None, where: str = "condition"
) -> Condition:
    """Parse and compile ``text``; names outside ``known`` (when given) are load errors."""
    tree = parse_tree(text, where)
    compiler = _Compiler()
    fn = compiler.build(tree)
    if known is not None:
        unknown = sorted(compiler.names - set(known))
        if unknown:
            raise ConditionError(
                f"{where}: unknown name(s) {', '.join(unknown)} in {text!r}; "
                f"available: {', '.join(sorted(known))}"
            )
    return Condition(text, frozenset(compiler.names), fn)
