"""The block record's transaction index: choosing by it decodes exactly the transactions that
involve a watched address, and a record whose index does not fit is decoded whole."""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import USDC, recorded_block_18m
from vigil.schemas import tx_index
from vigil.schemas.codec import Codec
from vigil.schemas.registry import SchemaStore

TOPIC = "chain.blocks"
CODEC = Codec(SchemaStore())


@cache
def block() -> dict[str, Any]:
    return recorded_block_18m()


def written(record: dict[str, Any]) -> tuple[bytes, bytes]:
    """The value and index header the ingester writes for ``record``."""
    value, index, _ = tx_index.write_block(CODEC, TOPIC, record)  # type: ignore[arg-type]
    return value, index


@cache
def recorded() -> tuple[bytes, bytes]:
    return written(block())


def every_address() -> list[str]:
    return sorted({a for tx in block()["transactions"] for a in tx_index.involved(tx)})


def test_the_index_lists_what_the_matcher_looks_up() -> None:
    tx = block()["transactions"][0]
    logs = [entry["address"] for entry in tx["receipt"]["logs"]]
    assert tx_index.involved(tx) == list(dict.fromkeys([tx["from"], tx["to"], *logs]))
    creation = {**tx, "to": None}
    assert None not in tx_index.involved(creation)


@settings(max_examples=60, deadline=None)
@given(st.sets(st.sampled_from(every_address()), max_size=12), st.booleans())
def test_choosing_keeps_exactly_the_transactions_of_watched_addresses(
    watched: set[str], also_unknown: bool
) -> None:
    if also_unknown:
        watched = watched | {"0x" + "ab" * 20}
    value, index = recorded()
    chosen = CODEC.decode(tx_index.select(value, index, lambda a: not watched.isdisjoint(a)))
    whole = CODEC.decode(value)
    expected = [tx for tx in whole["transactions"] if not watched.isdisjoint(tx_index.involved(tx))]
    assert chosen["transactions"] == expected
    assert {k: v for k, v in chosen.items() if k != "transactions"} == {
        k: v for k, v in whole.items() if k != "transactions"
    }


def test_usdc_keeps_five_of_ninety_four() -> None:
    value, index = recorded()
    chosen = tx_index.select(value, index, lambda a: USDC.lower() in a)
    assert len(CODEC.decode(chosen)["transactions"]) == 5
    assert len(chosen) < len(value) / 10


def test_a_record_without_a_usable_index_is_decoded_whole() -> None:
    value, index = recorded()
    none = lambda a: False  # noqa: E731
    assert tx_index.select(value, None, none) is value
    assert tx_index.select(value, b"", none) is value
    assert tx_index.select(value, bytes([9]) + index[1:], none) is value  # a later version
    assert tx_index.select(value, index[:-7], none) is value  # cut short
    longer = value + b"\x00"
    assert tx_index.select(longer, index, none) is longer
    other = copy.deepcopy(block())
    other["transactions"][3]["input"] += "00"  # another value, so other lengths
    other_value, _ = written(other)
    assert tx_index.select(other_value, index, none) is other_value
    empty_value, empty_index = written({**block(), "transactions": []})
    assert tx_index.select(empty_value, empty_index, none) is empty_value
    nothing = CODEC.decode(tx_index.select(value, index, none))
    assert nothing["transactions"] == [] and nothing["hash"] == block()["hash"]
