"""The TypedDicts of ``vigil.schemas.records`` say what the ``.avsc`` files say, field for
field: the same names in the same order, the same types, the same optionality."""

import types
import typing
from typing import Any, Literal, get_args, get_origin, get_type_hints

import pytest

from vigil.schemas import loader, records

PRIMITIVE = {"string": str, "long": int, "int": int, "boolean": bool, "double": float}
NAMED = ["Block", "Transaction", "Log", "Receipt", "Match", "MatchBatch", "MonitorRef"]
NAMED += ["Delivery", "FortaAlert", "RelayerRequest", "RelayerTransaction"]


def _agrees(avro: Any, hint: Any, where: str) -> list[str]:
    """Where ``hint`` (a Python type) differs from ``avro`` (an expanded Avro type)."""
    if isinstance(avro, list) and "null" not in avro:  # a union of primitives: X | Y
        if get_origin(hint) not in (typing.Union, types.UnionType):
            return [f"{where}: the schema is a union {avro}, the TypedDict {hint}"]
        wanted = [PRIMITIVE.get(a) for a in avro]
        return [] if wanted == list(get_args(hint)) else [f"{where}: {avro} vs {hint}"]
    if isinstance(avro, list):  # a union: ["null", X]
        assert avro[0] == "null" and len(avro) == 2, f"{where}: unexpected union {avro}"
        if get_origin(hint) not in (typing.Union, types.UnionType) or type(None) not in get_args(
            hint
        ):
            return [f"{where}: the schema allows null, the TypedDict does not"]
        rest = [a for a in get_args(hint) if a is not type(None)]
        assert len(rest) == 1, f"{where}: a union of {rest} and None"
        return _agrees(avro[1], rest[0], where)
    if get_origin(hint) in (typing.Union, types.UnionType):
        return [f"{where}: the TypedDict allows {hint}, the schema says {avro}"]
    if isinstance(avro, str):
        return [] if PRIMITIVE.get(avro) is hint else [f"{where}: {avro} vs {hint}"]
    kind = avro["type"]
    if avro.get("logicalType") == "timestamp-millis":
        return [] if hint is int else [f"{where}: timestamp-millis vs {hint}"]
    if kind == "array":
        if get_origin(hint) is not list:
            return [f"{where}: array vs {hint}"]
        return _agrees(avro["items"], get_args(hint)[0], f"{where}[]")
    if kind == "map":
        if get_origin(hint) is not dict or get_args(hint)[0] is not str:
            return [f"{where}: map vs {hint}"]
        return _agrees(avro["values"], get_args(hint)[1], f"{where}{{}}")
    if kind == "enum":
        if get_origin(hint) is not Literal or list(get_args(hint)) != avro["symbols"]:
            return [f"{where}: enum {avro['symbols']} vs {hint}"]
        return []
    if kind == "record":
        return _record(avro, hint, where)
    return _agrees(kind, hint, where)


def _record(avro: dict[str, Any], typed: Any, where: str) -> list[str]:
    hints = get_type_hints(typed)
    names = [field["name"] for field in avro["fields"]]
    if list(hints) != names:
        return [f"{where}: fields {list(hints)} vs the schema's {names}"]
    if typed.__name__ != avro["name"].split(".")[-1]:
        return [f"{where}: named {typed.__name__}, the schema's record is {avro['name']}"]
    return [
        problem
        for field in avro["fields"]
        for problem in _agrees(field["type"], hints[field["name"]], f"{where}.{field['name']}")
    ]


@pytest.mark.parametrize("name", NAMED)
def test_typed_record_matches_its_schema(name: str) -> None:
    assert _record(loader.expanded(name), getattr(records, name), name) == []


def test_a_field_out_of_step_is_caught() -> None:
    class Log(typing.TypedDict):  # removed is missing, logIndex has the wrong type
        address: str
        topics: list[str]
        data: str
        logIndex: str

    assert _record(loader.expanded("Log"), Log, "Log") != []
