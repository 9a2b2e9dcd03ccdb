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
FRAME_SIZE = _HEADER.size  # the magic byte and the schema id before every body


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
        return self.frame(topic, schema, self.body(schema, record, topic))

    def body(self, schema: str, record: Mapping[str, Any], topic: str = "") -> bytes:
        """``record``'s Avro body, unframed: records nested in others can be written once
        and spliced (``frame`` makes it a topic's value)."""
        buffer = io.BytesIO()
        try:
            fastavro.schemaless_writer(buffer, loader.parsed(schema), record)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            where = f" for {topic}" if topic else ""
            raise SerializationError(f"cannot encode a {schema}{where}: {exc}") from exc
        return buffer.getvalue()

    def frame(self, topic: str, schema: str, body: bytes) -> bytes:
        """A body written with ``schema``, framed for ``topic`` (magic byte, schema id)."""
        return _HEADER.pack(MAGIC, self.schema_id(topic, schema)) + body

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


def spliced_array(head: bytes, items: list[bytes]) -> bytes:
    """The body of a record whose last field is an array, from its body written with that
    array empty (``head``, ending in the empty array's 0) and the items' bodies: the bytes
    fastavro writes for the whole record, without writing the items again."""
    if not items:
        return head
    return head[:-1] + varint(len(items)) + b"".join(items) + b"\x00"


def varint(value: int) -> bytes:
    """Avro's long: zig-zag, then base-128 varint."""
    encoded = bytearray()
    zigzag = (value << 1) ^ (value >> 63)
    while zigzag & ~0x7F:
        encoded.append((zigzag & 0x7F) | 0x80)
        zigzag >>= 7
    encoded.append(zigzag)
    return bytes(encoded)
