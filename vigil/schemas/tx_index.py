"""The transaction index of a chain.blocks record, carried in its ``vigil-tx-index`` header.

A block's record holds every transaction in full (about 700 KB for a busy mainnet block),
and decoding it all costs more than matching it. Monitors only ever match a transaction
that involves one of their addresses, so the worker reads this index first and decodes the
block with only those transactions: the head, then the chosen bodies spliced back into the
array. The record itself is unchanged for subscribers; a record without the header (older
records, other writers) or with one that does not fit its value is decoded whole.

Layout, big-endian: version (1 byte); the body's length up to the array's item count (u32);
the number of transactions (u32); then per transaction its body's length (u32), its number
of distinct involved addresses (u16) and those addresses (20 bytes each: sender, recipient,
then the emitters of its logs, as ``processors.matching`` looks them up).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence

from vigil.schemas.codec import FRAME_SIZE, Codec, spliced_array, varint
from vigil.schemas.records import Block, Transaction

HEADER = "vigil-tx-index"
VERSION = 1
_TOP = struct.Struct(">BII")
_TX = struct.Struct(">IH")


def involved(tx: Transaction) -> list[str]:
    """The distinct addresses a transaction involves, in the matcher's order."""
    logs = tx["receipt"]["logs"] if tx["receipt"] else ()
    calls = tx.get("internalCalls") or ()
    seen = dict.fromkeys(
        [tx["from"], tx["to"], *(e["address"] for e in logs), *(c["to"] for c in calls)]
    )
    return [a for a in seen if a is not None]  # a creation has no recipient


def write_block(codec: Codec, topic: str, record: Block) -> tuple[bytes, bytes, list[bytes]]:
    """A Block's value for ``topic``, its index, and its transactions' bodies: each is
    written once, and spliced into the block's array (the transaction topic's values are
    the same bodies, framed)."""
    bodies = [codec.body("Transaction", tx, topic) for tx in record["transactions"]]
    head = codec.body("Block", {**record, "transactions": []}, topic)
    value = codec.frame(topic, "Block", spliced_array(head, bodies))
    return value, build(head, bodies, record["transactions"]), bodies


def build(head: bytes, bodies: Sequence[bytes], transactions: Sequence[Transaction]) -> bytes:
    """The index of a block body made by ``spliced_array(head, bodies)``."""
    parts = [_TOP.pack(VERSION, len(head) - 1, len(bodies))]
    for body, tx in zip(bodies, transactions, strict=True):
        addresses = involved(tx)
        parts.append(_TX.pack(len(body), len(addresses)))
        parts.extend(bytes.fromhex(a[2:]) for a in addresses)
    return b"".join(parts)


def select(payload: bytes, index: bytes | None, wanted: Callable[[list[str]], bool]) -> bytes:
    """``payload`` (a framed Block) with only the transactions whose involved addresses
    ``wanted`` accepts; ``payload`` itself without a usable index."""
    if not index or len(index) < _TOP.size or index[0] != VERSION:
        return payload
    _, head_end, count = _TOP.unpack_from(index)
    if not count:
        return payload
    start = FRAME_SIZE + head_end
    position = start + len(varint(count))
    offset, chosen = _TOP.size, []
    try:
        for _ in range(count):
            length, many = _TX.unpack_from(index, offset)
            offset += _TX.size
            addresses = [
                "0x" + index[at : at + 20].hex() for at in range(offset, offset + 20 * many, 20)
            ]
            offset += 20 * many
            if wanted(addresses):
                chosen.append(payload[position : position + length])
            position += length
    except struct.error:
        return payload
    if offset != len(index) or position + 1 != len(payload) or len(chosen) == count:
        return payload  # an index that does not describe this value, or nothing to leave out
    items = varint(len(chosen)) + b"".join(chosen) if chosen else b""
    return payload[:start] + items + b"\x00"  # the array's end: the record's last field
