"""The static-layout fast path decodes exactly as eth-abi does: the same values, and a refusal
(None) wherever eth-abi refuses; property-based over types, values and corrupted words."""

from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_abi.exceptions import DecodingError
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.processors.abi import EventDecoder, FunctionDecoder, read_words, word_reader

SIZES = [8, 16, 24, 32, 64, 96, 128, 160, 200, 248, 256]
KINDS = [
    "address",
    "bool",
    *(f"uint{n}" for n in SIZES),
    *(f"int{n}" for n in SIZES),
    *(f"bytes{n}" for n in (1, 2, 4, 8, 16, 20, 31, 32)),
]


def _value(kind: str) -> st.SearchStrategy[Any]:
    if kind == "address":
        return st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
    if kind == "bool":
        return st.booleans()
    if kind.startswith("uint"):
        return st.integers(0, 2 ** int(kind[4:]) - 1)
    if kind.startswith("int"):
        bits = int(kind[3:])
        return st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    size = int(kind[5:])
    return st.binary(min_size=size, max_size=size)


@st.composite
def encoded(draw: Any) -> tuple[list[str], bytes]:
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=0, max_size=4))
    data = abi_encode(kinds, [draw(_value(k)) for k in kinds])
    how = draw(st.sampled_from(["as is", "flip", "cut", "extend", "garbage"]))
    if how == "flip" and data:  # one byte changed: padding, sign, or the value itself
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
    elif how == "cut":
        data = data[: draw(st.integers(0, max(0, len(data) - 1)))]
    elif how == "extend":
        data += draw(st.binary(min_size=1, max_size=40))
    elif how == "garbage":
        data = draw(st.binary(max_size=32 * len(kinds) + 8))
    return kinds, data


def _eth_abi(kinds: list[str], data: bytes) -> Any:
    try:
        return list(abi_decode(kinds, data))
    except (DecodingError, ValueError, OverflowError):
        return None


def _fast(kinds: list[str], data: bytes) -> Any:
    readers = [word_reader(k) for k in kinds]
    assert all(r is not None for r in readers), kinds
    try:
        return read_words(readers, data)  # type: ignore[arg-type]
    except ValueError:
        return None


@settings(max_examples=600, deadline=None)
@given(encoded())
def test_static_words_decode_as_eth_abi_does(case: tuple[list[str], bytes]) -> None:
    kinds, data = case
    assert _fast(kinds, data) == _eth_abi(kinds, data)


@settings(max_examples=300, deadline=None)
@given(encoded(), st.sampled_from(KINDS), st.binary(min_size=0, max_size=40))
def test_events_and_calls_decode_the_same_through_either_path(
    case: tuple[list[str], bytes], indexed_kind: str, topic: bytes
) -> None:
    """An event with an indexed static value and static data, and a call with static
    arguments: the decoders' answers are eth-abi's (checked against eth-abi itself)."""
    kinds, data = case
    inputs = [{"name": "who", "type": indexed_kind, "indexed": True}] + [
        {"name": f"a{i}", "type": k, "indexed": False} for i, k in enumerate(kinds)
    ]
    event = EventDecoder({"type": "event", "name": "E", "inputs": inputs})
    topics = ["0x" + "00" * 32, "0x" + topic.hex()]
    decoded = event.decode(topics, "0x" + data.hex())
    head = _eth_abi([indexed_kind], topic)
    rest = _eth_abi(kinds, data)
    expected = None if head is None or rest is None else [*head, *rest]
    assert (None if decoded is None else list(decoded.args)) == expected

    call = FunctionDecoder({"type": "function", "name": "f", "inputs": inputs[1:]})
    called = call.decode("0x12345678" + data.hex())
    assert (None if called is None else list(called.args)) == rest


def test_dynamic_types_are_left_to_eth_abi() -> None:
    assert word_reader("string") is None and word_reader("uint256[]") is None
    assert word_reader("uint7") is None and word_reader("bytes33") is None
    event = EventDecoder(
        {
            "type": "event",
            "name": "Named",
            "inputs": [
                {"name": "who", "type": "string", "indexed": True},
                {"name": "what", "type": "string", "indexed": False},
            ],
        }
    )
    decoded = event.decode(
        ["0x" + "00" * 32, "0x" + "ab" * 32], "0x" + abi_encode(["string"], ["hi"]).hex()
    )
    assert decoded is not None and decoded.args == ("0x" + "ab" * 32, "hi")
