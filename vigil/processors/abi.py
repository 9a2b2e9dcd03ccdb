"""ABI entries: canonical signatures, topic0/selectors, and decoding of logs and calldata."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_utils.crypto import keccak

AbiItem = dict[str, Any]


def canonical_type(param: dict[str, Any]) -> str:
    """``uint256``, ``address[]``, or ``(uint256,address)[2]`` for tuples."""
    kind = str(param["type"])
    if kind.startswith("tuple"):
        inner = ",".join(canonical_type(c) for c in param.get("components", []))
        return f"({inner}){kind[len('tuple') :]}"
    return kind


def signature(item: AbiItem) -> str:
    return f"{item['name']}({','.join(canonical_type(p) for p in item.get('inputs', []))})"


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


@dataclass(frozen=True)
class Decoded:
    """Decoded arguments: all by index, and the named ones by name."""

    args: tuple[Any, ...]
    names: tuple[str, ...]

    def params(self) -> dict[str, Any]:
        return {n: v for n, v in zip(self.names, self.args, strict=True) if n}


class EventDecoder:
    """Decodes logs of one event: indexed values from topics, the rest from data."""

    def __init__(self, item: AbiItem) -> None:
        inputs = item.get("inputs", [])
        self.names = tuple(str(p.get("name") or "") for p in inputs)
        self._indexed = [(i, canonical_type(p)) for i, p in enumerate(inputs) if p.get("indexed")]
        self._plain = [(i, canonical_type(p)) for i, p in enumerate(inputs) if not p.get("indexed")]

    def decode(self, topics: Sequence[str], data: str) -> Decoded | None:
        """None when the log does not fit the event (e.g. an ERC721 Transfer for ERC20)."""
        if len(topics) != len(self._indexed) + 1:
            return None
        values: list[Any] = [None] * len(self.names)
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
        return Decoded(tuple(values), self.names)


class FunctionDecoder:
    """Decodes the calldata of one function."""

    def __init__(self, item: AbiItem) -> None:
        inputs = item.get("inputs", [])
        self.names = tuple(str(p.get("name") or "") for p in inputs)
        self._types = [canonical_type(p) for p in inputs]

    def decode(self, calldata: str) -> Decoded | None:
        try:
            return Decoded(tuple(abi_decode(self._types, bytes.fromhex(calldata[10:]))), self.names)
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
