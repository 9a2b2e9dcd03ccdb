"""pydantic's validation errors said in plain words: which field, what was expected, what
was found, and the nearest known name when a key or value looks misspelt."""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Sequence
from typing import Any, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import ErrorDetails

_QUOTED = re.compile(r"'([^']*)'")
_PLAIN = {
    "int_parsing": "expected a whole number",
    "int_type": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_parsing": "expected a number",
    "float_type": "expected a number",
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "string_type": "expected text",
    "list_type": "expected a list",
    "dict_type": "expected a mapping of keys",
    "model_type": "expected a mapping of keys",
    "model_attributes_type": "expected a mapping of keys",
    "missing": "is required but missing",
    "url_parsing": "expected a URL",
    "url_scheme": "expected a URL",
}
_TAGS = {"int": "a whole number", "str": "text", "float": "a number", "bool": "true or false"}


def suggestion(word: str, known: Sequence[str]) -> str:
    """``; did you mean 'x'`` when one known name is close to ``word``, else ``""``."""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _unwrap(annotation: Any) -> list[Any]:
    """The model classes an annotation can hold (through Optional, unions, lists, dicts)."""
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list, tuple, set, frozenset):
        return [m for arg in get_args(annotation) for m in _unwrap(arg)]
    if origin is dict:
        return _unwrap(get_args(annotation)[1])
    if origin is typing.Annotated:
        return _unwrap(get_args(annotation)[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def fields_at(model: Any, parts: Sequence[Any]) -> list[str] | None:
    """The field names (and aliases) the mapping at ``parts`` may hold, if one model says."""
    models = [model] if isinstance(model, type) and issubclass(model, BaseModel) else []
    for part in parts:
        if not isinstance(part, str):
            continue  # a list index: the same models one level down
        owners = [m for m in models if part in m.model_fields]
        if owners:
            models = [inner for m in owners for inner in _unwrap(m.model_fields[part].annotation)]
        # otherwise a mapping's key (a network's name): its values are the same models
    if len(models) != 1:
        return None
    names: list[str] = []
    for name, info in models[0].model_fields.items():
        names.append(info.alias or name)
    return names


def _options(error: ErrorDetails) -> list[str]:
    expected = (error.get("ctx") or {}).get("expected", "")
    return _QUOTED.findall(str(expected))


def _is_tag(part: Any) -> bool:
    """A union member's tag in a location (``int``, ``literal['a','b']``, a model name)."""
    return isinstance(part, str) and (
        part in _TAGS or part.startswith(("literal[", "function-", "constrained-"))
    )


def plain(errors: Sequence[ErrorDetails], model: Any = None) -> tuple[str, str]:
    """The field and the message for the most telling of ``errors``, with how many more
    errors it does not explain (``(and N more)``)."""
    loc, message, explained = _first(errors, model)
    rest = len(errors) - explained
    return loc, message + (f" (and {rest} more)" if rest > 0 else "")


def _first(errors: Sequence[ErrorDetails], model: Any) -> tuple[str, str, int]:
    unknown = [e for e in errors if e["type"] == "extra_forbidden"]
    if unknown:  # a misspelt key also makes its right spelling "missing": report the cause
        parts = list(unknown[0]["loc"])
        key, parent = str(parts[-1]), parts[:-1]
        known = fields_at(model, parent) if model is not None else None
        close = difflib.get_close_matches(key, known or [], n=1, cutoff=0.6)
        if close:
            missing = [
                e for e in errors if e["type"] == "missing" and e["loc"] == (*parent, close[0])
            ]
            hint = f"; did you mean {close[0]!r}?"
            return _loc(parent), f"unknown field {key!r}{hint}", 1 + len(missing)
        hint = f"; known fields: {', '.join(known)}" if known else ""
        return _loc(parent), f"unknown field {key!r}{hint}", 1
    first = errors[0]
    parts = list(first["loc"])
    if parts and _is_tag(parts[-1]):  # one value tried against each member of a union
        prefix = parts[:-1]
        members = [e for e in errors if list(e["loc"])[:-1] == prefix and _is_tag(e["loc"][-1])]
        wanted: list[str] = []
        options: list[str] = []
        for member in members:
            tag = str(member["loc"][-1])
            if tag.startswith("literal["):
                options.extend(_options(member))
            elif tag in _TAGS:
                wanted.append(_TAGS[tag])
        wanted.extend(repr(option) for option in options)
        found = first.get("input")
        hint = suggestion(found, options) if isinstance(found, str) else ""
        message = f"expected {' or '.join(wanted)}; found {found!r}{hint}"
        return _loc(prefix), message, len(members)
    if first["type"] in ("literal_error", "enum"):
        options = _options(first)
        found = first.get("input")
        hint = suggestion(found, options) if isinstance(found, str) else ""
        listed = ", ".join(repr(option) for option in options)
        return _loc(parts), f"expected one of {listed}; found {found!r}{hint}", 1
    message = _PLAIN.get(first["type"]) or first["msg"].removeprefix("Value error, ")
    # value errors already say what they got; missing fields have nothing to show
    shown = first["type"] not in ("missing", "value_error")
    found_text = f"; found {first.get('input')!r}" if shown else ""
    return _loc(parts), f"{message}{found_text}", 1


def _loc(parts: Sequence[Any]) -> str:
    return ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in parts).replace(".[", "[")
