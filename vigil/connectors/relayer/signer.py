"""Signatures with a relayer's key (eth-account): transactions, EIP-191 messages and
EIP-712 digests given as a domain separator and a struct hash, as the Relay API takes them."""

from __future__ import annotations

from typing import Any

from eth_account.messages import SignableMessage, encode_defunct
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes

from vigil.errors import VigilError


def sign_transaction(account: LocalAccount, tx: dict[str, Any]) -> tuple[str, str]:
    """The raw signed transaction and its hash, both 0x-hex."""
    signed = account.sign_transaction(tx)
    return "0x" + bytes(signed.raw_transaction).hex(), "0x" + bytes(signed.hash).hex()


def sign_message(account: LocalAccount, message: str) -> dict[str, Any]:
    """EIP-191 (``\\x19Ethereum Signed Message:\\n``) over the bytes of hex ``message``."""
    return _shown(account.sign_message(encode_defunct(hexstr=_hex(message, "message"))))


def sign_typed_data(
    account: LocalAccount, domain_separator: str, hash_struct_message: str
) -> dict[str, Any]:
    """EIP-712: keccak256(0x1901 ‖ domainSeparator ‖ hashStruct(message)), each 32 bytes."""
    header = _word(domain_separator, "domainSeparator")
    body = _word(hash_struct_message, "hashStructMessage")
    return _shown(account.sign_message(SignableMessage(b"\x01", header, body)))


def _hex(value: str, field: str) -> str:
    try:
        HexBytes(value)
    except (ValueError, TypeError):
        raise VigilError(f"{field}: expected 0x-prefixed hex, got {value[:40]!r}") from None
    if not value.startswith("0x"):
        raise VigilError(f"{field}: expected 0x-prefixed hex, got {value[:40]!r}")
    return value


def _word(value: str, field: str) -> bytes:
    raw = bytes(HexBytes(_hex(value, field)))
    if len(raw) != 32:
        raise VigilError(f"{field}: expected 32 bytes (a hash), got {len(raw)}")
    return raw


def _shown(signed: Any) -> dict[str, Any]:
    return {
        "sig": "0x" + bytes(signed.signature).hex(),
        "r": f"0x{signed.r:064x}",
        "s": f"0x{signed.s:064x}",
        "v": int(signed.v),
    }
