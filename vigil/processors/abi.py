"""ABI entries: canonical signatures, topic0/selectors, and decoding of logs and calldata."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_utils.crypto import keccak

from vigil.config.fragments import canonical_type as canonical_type  # re-exported
from vigil.config.fragments import signature as signature

AbiItem = dict[str, Any]


def entries(abi: Sequence[AbiItem], kind: str) -> list[AbiItem]:
    return [i for i in abi if i.get("type") == kind and "name" in i]


def resolve(abi: Sequence[AbiItem], kind: str, wanted: str) -> AbiItem:
    """The ``kind`` (event|function) entry named by a full signature or an unambiguous name."""
    candidates = entries(abi, kind)
    text = wanted.replace(" ", "")
    if "(" in text:
        found = [i for i in candidates if signature(i) == text]
        if not found:
            # tolerate parameter names in the signature: Transfer(address from, ...)
            found = [i for i in candidates if _strip_names(wanted) == signature(i)]
    else:
        found = [i for i in candidates if i["name"] == text]
    if len(found) == 1:
        return found[0]
    known = ", ".join(sorted({signature(i) for i in candidates})) or "none"
    problem = "is ambiguous" if found else "is not in the ABI"
    raise LookupError(f"{kind} {wanted!r} {problem}; the ABI has: {known}")


def _strip_names(text: str) -> str:
    name, _, rest = text.partition("(")
    params = rest.rstrip(")").split(",") if rest.rstrip(")") else []
    return f"{name.strip()}({','.join(p.split()[0] for p in params if p.strip())})"


def topic0(item: AbiItem) -> str:
    return "0x" + keccak(text=signature(item)).hex()


def selector(item: AbiItem) -> str:
    return "0x" + keccak(text=signature(item)).hex()[:8]


def _is_dynamic(kind: str) -> bool:
    return kind in ("string", "bytes") or kind.endswith("]") or kind.startswith("(")


class Struct(tuple[Any, ...]):
    """A decoded tuple whose members read by name (``order.amount``) as well as by index."""

    _members: dict[str, int]

    def __new__(cls, values: Sequence[Any], members: dict[str, int]) -> Struct:
        struct = super().__new__(cls, values)
        struct._members = members
        return struct

    def __getattr__(self, name: str) -> Any:
        try:
            return self[self._members[name]]
        except KeyError:
            raise AttributeError(name) from None


Shape = Callable[[Any], Any]


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def shape_of(param: dict[str, Any]) -> Shape | None:
    """How a decoded value of ``param`` becomes the value a condition compares against: the
    one ``to_json`` shows users (bytes as 0x-hex), with tuples readable by member name.
    None where eth-abi's value already is that."""
    kind = str(param["type"])
    if kind.endswith("]"):
        inner = shape_of({**param, "type": kind[: kind.rindex("[")]})
        return None if inner is None else (lambda values: [inner(v) for v in values])
    if kind == "tuple":
        components = param.get("components", [])
        shapes = [shape_of(c) for c in components]
        members = {str(c["name"]): i for i, c in enumerate(components) if c.get("name")}
        return lambda values: Struct(
            [v if f is None else f(v) for f, v in zip(shapes, values, strict=True)], members
        )
    if kind.startswith("bytes"):
        return _hex
    return None


@dataclass(frozen=True)
class Decoded:
    """Decoded arguments: all by index, and the named ones by name."""

    args: tuple[Any, ...]
    names: tuple[str, ...]
    shapes: tuple[Shape | None, ...] = field(default=(), compare=False, repr=False)

    def params(self) -> dict[str, Any]:
        return {n: v for n, v in zip(self.names, self.args, strict=True) if n}

    def condition_env(self) -> dict[str, Any]:
        """The values a condition reads, by ``$n`` and by name: what ``to_json`` displays,
        so ``role == 0x9f2d…`` matches the role users see in ``matchReasons.params``."""
        values = [
            v if shape is None else shape(v)
            for v, shape in zip(self.args, self.shapes or (None,) * len(self.args), strict=True)
        ]
        env = {f"${i}": v for i, v in enumerate(values)}
        env.update((n, v) for n, v in zip(self.names, values, strict=True) if n)
        return env


# A static ABI value is one 32-byte word; these read it as eth-abi does (same values, same
# refusals: non-zero padding, a bool not 0 or 1), without its per-call machinery. Types
# with a dynamic part, tuples and arrays go to eth-abi.
Word = Callable[[bytes], Any]
_ZERO = bytes(32)


class _Refused(ValueError):
    """A word eth-abi would refuse (its padding, or a bool that is not 0 or 1)."""


def _address(word: bytes) -> str:
    if word[:12] != _ZERO[:12]:
        raise _Refused
    return "0x" + word[12:].hex()


def _bool(word: bytes) -> bool:
    if word[:31] != _ZERO[:31] or word[31] > 1:
        raise _Refused
    return word[31] == 1


def _uint(bits: int) -> Word:
    pad = 32 - bits // 8

    def read(word: bytes) -> int:
        if word[:pad] != _ZERO[:pad]:
            raise _Refused
        return int.from_bytes(word, "big")

    return read


def _int(bits: int) -> Word:
    low, high = -(1 << (bits - 1)), 1 << (bits - 1)

    def read(word: bytes) -> int:
        value = int.from_bytes(word, "big", signed=True)
        if not low <= value < high:  # the padding is not the value's sign extension
            raise _Refused
        return value

    return read


def _fixed_bytes(size: int) -> Word:
    def read(word: bytes) -> bytes:
        if word[size:] != _ZERO[size:]:
            raise _Refused
        return word[:size]

    return read


def word_reader(kind: str) -> Word | None:
    """The fast reader of one static ABI type, or None (eth-abi decodes it)."""
    if kind == "address":
        return _address
    if kind == "bool":
        return _bool
    for prefix, make in (("uint", _uint), ("int", _int)):
        if kind.startswith(prefix) and kind[len(prefix) :].isdigit():
            bits = int(kind[len(prefix) :])
            return make(bits) if bits % 8 == 0 and 8 <= bits <= 256 else None
    if kind.startswith("bytes") and kind[5:].isdigit():
        size = int(kind[5:])
        return _fixed_bytes(size) if 1 <= size <= 32 else None
    return None


def read_words(readers: Sequence[Word], data: bytes) -> list[Any]:
    """Consecutive static values from ``data`` (too short: eth-abi's refusal, as _Refused)."""
    if len(data) < 32 * len(readers):
        raise _Refused
    return [read(data[32 * i : 32 * i + 32]) for i, read in enumerate(readers)]


def _readers(kinds: Sequence[str]) -> list[Word] | None:
    found = [word_reader(k) for k in kinds]
    return None if any(r is None for r in found) else found  # type: ignore[return-value]


class EventDecoder:
    """Decodes logs of one event: indexed values from topics, the rest from data."""

    def __init__(self, item: AbiItem) -> None:
        inputs = item.get("inputs", [])
        self.names = tuple(str(p.get("name") or "") for p in inputs)
        self._indexed = [(i, canonical_type(p)) for i, p in enumerate(inputs) if p.get("indexed")]
        self._plain = [(i, canonical_type(p)) for i, p in enumerate(inputs) if not p.get("indexed")]
        # static layouts are read word by word (word_reader); others by eth-abi
        self._fast_topics = _readers([k for _, k in self._indexed])
        self._fast_plain = _readers([k for _, k in self._plain])
        # an indexed dynamic value is its keccak hash, already a 0x-hex topic string
        self._shapes = tuple(
            None if p.get("indexed") and _is_dynamic(canonical_type(p)) else shape_of(p)
            for p in inputs
        )

    def decode(self, topics: Sequence[str], data: str) -> Decoded | None:
        """None when the log does not fit the event (e.g. an ERC721 Transfer for ERC20)."""
        if len(topics) != len(self._indexed) + 1:
            return None
        values: list[Any] = [None] * len(self.names)
        if self._fast_topics is not None and self._fast_plain is not None:
            try:
                for (index, _), read, topic in zip(
                    self._indexed, self._fast_topics, topics[1:], strict=True
                ):
                    word = bytes.fromhex(topic[2:])
                    if len(word) < 32:
                        return None
                    values[index] = read(word[:32])
                plain_values = read_words(self._fast_plain, bytes.fromhex(data[2:]))
            except ValueError:  # _Refused, or not hex
                return None
            for (index, _), value in zip(self._plain, plain_values, strict=True):
                values[index] = value
            return Decoded(tuple(values), self.names, self._shapes)
        try:
            for (index, kind), topic in zip(self._indexed, topics[1:], strict=True):
                # dynamic indexed values are stored as their keccak hash
                values[index] = (
                    topic if _is_dynamic(kind) else abi_decode([kind], bytes.fromhex(topic[2:]))[0]
                )
            plain = abi_decode([k for _, k in self._plain], bytes.fromhex(data[2:]))
        except (DecodingError, ValueError, OverflowError):
            return None
        for (index, _), value in zip(self._plain, plain, strict=True):
            values[index] = value
        return Decoded(tuple(values), self.names, self._shapes)


class FunctionDecoder:
    """Decodes the calldata of one function."""

    def __init__(self, item: AbiItem) -> None:
        inputs = item.get("inputs", [])
        self.names = tuple(str(p.get("name") or "") for p in inputs)
        self._types = [canonical_type(p) for p in inputs]
        self._shapes = tuple(shape_of(p) for p in inputs)
        self._fast = _readers(self._types)

    def decode(self, calldata: str) -> Decoded | None:
        if self._fast is not None:
            try:
                words = read_words(self._fast, bytes.fromhex(calldata[10:]))
            except ValueError:  # _Refused, or not hex
                return None
            return Decoded(tuple(words), self.names, self._shapes)
        try:
            values = abi_decode(self._types, bytes.fromhex(calldata[10:]))
            return Decoded(tuple(values), self.names, self._shapes)
        except (DecodingError, ValueError, OverflowError):
            return None


def to_json(value: Any) -> Any:
    """ABI values as JSON: integers as decimal strings, bytes as 0x-hex, tuples as lists."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return "0x" + value.hex()
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value
