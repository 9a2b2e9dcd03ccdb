"""Human-readable ABI fragments, as ethers and viem accept them, turned into ABI JSON entries.

``event Transfer(address indexed from, address indexed to, uint256 value)`` and
``function transfer(address to, uint256 amount) external returns (bool)``: a monitor can
name its event or function this way and needs no ABI file. Tuples are written
``(uint256 a, address b) name`` or ``tuple(uint256 a, address b)[] name``; ``uint`` and
``int`` mean 256 bits, as in Solidity.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from eth_abi.exceptions import ABITypeError, ParseError
from eth_abi.grammar import parse as parse_type

from vigil.config.models import MonitorConfig
from vigil.errors import ConfigError

_HEAD = re.compile(r"^\s*(event|function)\s+([A-Za-z_$][A-Za-z0-9_$]*)\s*\(")
_NAME = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
_MUTABILITY = ("pure", "view", "payable", "nonpayable")
_MODIFIERS = {"external", "public", "internal", "private", "virtual", "override", "anonymous"}


def canonical_type(param: dict[str, Any]) -> str:
    """``uint256``, ``address[]``, or ``(uint256,address)[2]`` for tuples."""
    kind = str(param["type"])
    if kind.startswith("tuple"):
        inner = ",".join(canonical_type(c) for c in param.get("components", []))
        return f"({inner}){kind[len('tuple') :]}"
    return kind


def signature(item: dict[str, Any]) -> str:
    """``Name(type,…)``: what topic0 and selectors hash."""
    return f"{item['name']}({','.join(canonical_type(p) for p in item.get('inputs', []))})"


class FragmentError(ValueError):
    """A fragment that does not parse; the message says where and what was expected."""


def is_fragment(text: str) -> bool:
    """Whether ``text`` is written as a human-readable fragment (``event …`` / ``function …``)."""
    return _HEAD.match(text) is not None


def parse_fragment(text: str) -> dict[str, Any]:
    """The ABI JSON entry of one ``event …`` or ``function …`` fragment."""
    head = _HEAD.match(text)
    if head is None:
        raise FragmentError(f"expected 'event Name(…)' or 'function name(…)', got {text!r}")
    kind, name = head.group(1), head.group(2)
    inside, rest = _balanced(text, head.end() - 1)
    inputs = [_param(part, kind == "event") for part in _split(inside)]
    entry: dict[str, Any] = {"type": kind, "name": name, "inputs": inputs}
    words = rest.replace("(", " ( ").split()
    if kind == "event":
        entry["anonymous"] = "anonymous" in words
        unknown = [w for w in words if w != "anonymous"]
        if unknown:
            raise FragmentError(f"unexpected {unknown[0]!r} after the parameters of {name}")
        return entry
    mutability = next((w for w in words if w in _MUTABILITY), "nonpayable")
    outputs: list[dict[str, Any]] = []
    if "returns" in words:
        start = rest.index("returns") + len("returns")
        opening = rest.find("(", start)
        if opening < 0:
            raise FragmentError(f"expected '(' after returns in {text!r}")
        returned, _ = _balanced(rest, opening)
        outputs = [_param(part, False) for part in _split(returned)]
        rest = rest[:start]
    extra = [w for w in rest.split() if w not in _MUTABILITY and w not in _MODIFIERS]
    if [w for w in extra if w != "returns"]:
        raise FragmentError(f"unexpected {extra[0]!r} after the parameters of {name}")
    entry.update({"outputs": outputs, "stateMutability": mutability})
    return entry


def _balanced(text: str, opening: int) -> tuple[str, str]:
    """(the text inside the parenthesis at ``opening``, the text after its closing one)."""
    depth = 0
    for i in range(opening, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return text[opening + 1 : i], text[i + 1 :]
    raise FragmentError(f"unbalanced parentheses in {text!r}")


def _split(params: str) -> list[str]:
    """Top-level comma-separated parts (commas inside a tuple stay)."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in params:
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        current.append(char)
    parts.append("".join(current))
    stripped = [part.strip() for part in parts]
    if stripped == [""]:
        return []
    if "" in stripped:
        raise FragmentError(f"an empty parameter in ({params})")
    return stripped


def _param(text: str, event: bool) -> dict[str, Any]:
    """One parameter: ``type [indexed] [name]``, the type possibly a tuple."""
    param: dict[str, Any] = {}
    body = text.removeprefix("tuple").lstrip() if text.startswith("tuple(") else text
    if body.startswith("("):
        inside, rest = _balanced(body, 0)
        suffix = re.match(r"^((?:\[\d*\])*)", rest)
        arrays = suffix.group(1) if suffix else ""
        param["type"] = "tuple" + arrays
        param["components"] = [_param(part, False) for part in _split(inside)]
        words = rest[len(arrays) :].split()
    else:
        first, *words = text.split()
        param["type"] = _canonical(first)
    if words and words[0] == "indexed":
        if not event:
            raise FragmentError(f"'indexed' is for event parameters, in {text!r}")
        param["indexed"] = True
        words = words[1:]
    elif event:
        param["indexed"] = False
    if len(words) > 1 or (words and not _NAME.match(words[0])):
        raise FragmentError(f"expected 'type [indexed] [name]', got {text!r}")
    param["name"] = words[0] if words else ""
    return param


def _canonical(type_text: str) -> str:
    """The canonical spelling of an elementary (or array) type; ParseError as FragmentError."""
    spelled = re.sub(r"^(u?int)(?=$|\[)", r"\g<1>256", type_text)
    try:
        parsed = parse_type(spelled)
        parsed.validate()
    except (ParseError, ABITypeError) as exc:
        raise FragmentError(f"{type_text!r} is not a Solidity type") from exc
    return str(parsed.to_type_str())


def with_fragments(
    config: MonitorConfig, abi: list[dict[str, Any]], path: Path, obj: str
) -> tuple[MonitorConfig, list[dict[str, Any]]]:
    """Events and functions written as fragments (``event Transfer(address indexed from, …)``)
    join the ABI, and their selections name them by canonical signature."""
    conditions = config.conditions
    known = {(item.get("type"), signature(item)) for item in abi if "name" in item}
    added: list[dict[str, Any]] = []
    updates: dict[str, list[Any]] = {}
    rewrote = False
    for kind, selections in (("events", conditions.events), ("functions", conditions.functions)):
        rewritten = []
        for i, selection in enumerate(selections):
            if not is_fragment(selection.signature):
                rewritten.append(selection)
                continue
            try:
                entry = parse_fragment(selection.signature)
            except FragmentError as exc:
                raise ConfigError(
                    str(exc), file=str(path), obj=obj, field=f"conditions.{kind}[{i}].signature"
                ) from None
            if entry["type"] != kind[:-1]:
                raise ConfigError(
                    f"a {entry['type']} fragment under conditions.{kind}",
                    file=str(path),
                    obj=obj,
                    field=f"conditions.{kind}[{i}].signature",
                )
            key = (entry["type"], signature(entry))
            if key not in known:
                known.add(key)
                added.append(entry)
            rewritten.append(selection.model_copy(update={"signature": signature(entry)}))
            rewrote = True
        updates[kind] = rewritten
    if not rewrote:
        return config, abi
    changed = config.model_copy(update={"conditions": conditions.model_copy(update=updates)})
    return changed, [*abi, *added]
