"""Avro records in Confluent framing: magic byte 0, 4-byte schema id, Avro body."""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Mapping
from typing import Any

import fastavro

from vigil.errors import SerializationError
from vigil.schemas import loader
from vigil.schemas.registry import Registry

MAGIC = 0
_HEADER = struct.Struct(">bI")


class Codec:
    """Encodes vigil's records for one subject naming scheme and decodes any framed record."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._ids: dict[tuple[str, str], int] = {}
        self._writers: dict[int, Any] = {}

    def schema_id(self, topic: str, schema: str) -> int:
        """Register (once) the value schema of ``topic`` and return its id."""
        key = (topic, schema)
        if key not in self._ids:
            self._ids[key] = self._registry.register(f"{topic}-value", loader.schema_text(schema))
        return self._ids[key]

    def encode(self, topic: str, schema: str, record: Mapping[str, Any]) -> bytes:
        """Frame ``record`` written with ``schema`` for ``topic``."""
        schema_id = self.schema_id(topic, schema)
        buffer = io.BytesIO()
        buffer.write(_HEADER.pack(MAGIC, schema_id))
        try:
            fastavro.schemaless_writer(buffer, loader.parsed(schema), record)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise SerializationError(f"cannot encode a {schema} for {topic}: {exc}") from exc
        return buffer.getvalue()

    def decode(self, payload: bytes, reader: str | None = None, *, where: str = "") -> Any:
        """Decode a framed record; ``reader`` resolves it to one of vigil's schemas."""
        if len(payload) < _HEADER.size or payload[0] != MAGIC:
            raise SerializationError(
                f"{where or 'record'}: not Confluent-framed Avro "
                f"(first byte {payload[:1]!r}, length {len(payload)})"
            )
        _, schema_id = _HEADER.unpack_from(payload)
        writer = self._writer(schema_id)
        try:
            return fastavro.schemaless_reader(
                io.BytesIO(payload[_HEADER.size :]),
                writer,
                loader.parsed(reader) if reader else None,
            )
        except Exception as exc:  # fastavro raises many types for corrupt bodies
            raise SerializationError(
                f"{where or 'record'}: cannot decode with schema id {schema_id}: {exc}"
            ) from exc

    def _writer(self, schema_id: int) -> Any:
        if schema_id not in self._writers:
            text = self._registry.schema_by_id(schema_id)
            self._writers[schema_id] = fastavro.parse_schema(json.loads(text), _write_hint=False)
        return self._writers[schema_id]


def millis(at: Any) -> int:
    """A timestamp-millis field as ms: the decoder gives a datetime, a record built here an int."""
    return at if isinstance(at, int) else int(at.timestamp() * 1000)
