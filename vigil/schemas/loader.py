"""Loads the packaged ``.avsc`` files into fully expanded, parsed schemas."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import fastavro
from fastavro.schema import load_schema

from vigil.errors import SchemaError

NAMESPACE = "vigil"


def schema_names() -> list[str]:
    """Short names of every packaged schema (``Block``, ``Transaction``, ...)."""
    folder = resources.files("vigil.schemas") / "avro"
    return sorted(
        entry.name.removeprefix(f"{NAMESPACE}.").removesuffix(".avsc")
        for entry in folder.iterdir()
        if entry.name.endswith(".avsc")
    )


@cache
def expanded(name: str) -> dict[str, Any]:
    """The schema ``name`` with every named type it uses written out inline (JSON dict)."""
    folder = resources.files("vigil.schemas") / "avro"
    with resources.as_file(folder / f"{NAMESPACE}.{name}.avsc") as path:
        if not path.exists():
            raise SchemaError(f"no schema named {name!r}; packaged: {', '.join(schema_names())}")
        try:
            parsed = load_schema(str(path), _write_hint=False)
        except Exception as exc:  # fastavro raises several types for bad schemas
            raise SchemaError(f"schema {path.name} is invalid: {exc}") from exc
    # load_schema returns a parsed schema; expand_schema gives the plain JSON form
    schema = fastavro.schema.expand_schema(parsed)
    if not isinstance(schema, dict):
        raise SchemaError(f"schema {name} must be a record, found {type(schema).__name__}")
    return schema


def schema_text(name: str) -> str:
    """The expanded schema as compact JSON, as registered in a schema registry."""
    return json.dumps(expanded(name), separators=(",", ":"), sort_keys=True)


@cache
def parsed(name: str) -> Any:
    """The parsed (fastavro) form of ``name``, ready for readers and writers."""
    return fastavro.parse_schema(expanded(name), _write_hint=False)


def snapshot(folder: str) -> list[str]:
    """Write every schema, expanded (self-contained), to ``folder``: the schemas of a
    release, which every later version must read (tests/unit/test_schemas.py checks)."""
    from pathlib import Path

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for name in schema_names():
        text = json.dumps(expanded(name), indent=1, sort_keys=True)
        (out / f"{NAMESPACE}.{name}.avsc").write_text(text + "\n")
    return schema_names()
