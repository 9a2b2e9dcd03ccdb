"""Secrets sealed at rest with the operator's key (AES-256-GCM, from ``cryptography``).

Each value is sealed with a fresh 96-bit nonce and its own name as associated data, so a
sealed value moved to another name does not open. The key id (the first 16 hex digits of
the key's SHA-256) is kept beside it, so a wrong key is named as such rather than as
corrupt data. The key itself is the operator's: ``VIGIL_SECRETS_KEY``, 32 bytes in
base64url, never stored by vigil.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vigil.errors import SettingsError, VigilError

NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


def check_name(name: str) -> str:
    """A secret's name: letters, digits, ``- _ .``, up to 100."""
    if not NAME.match(name):
        raise VigilError(f"NAME: expected letters, digits, - _ . (up to 100), got {name!r}")
    return name


def parse_key(text: str) -> bytes:
    """The 32-byte key from its base64url form; a SettingsError says how to make one."""
    try:
        key = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise SettingsError(
            "VIGIL_SECRETS_KEY: expected 32 bytes in base64url; `vigil secrets new-key` prints one"
        )
    return key


def new_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:16]


@dataclass(frozen=True)
class Sealed:
    """A secret as kept: its name, the sealing key's id, nonce and ciphertext, when set."""

    name: str
    key_id: str
    nonce: str
    ciphertext: str
    updated_ms: int

    def to_bytes(self) -> bytes:
        return json.dumps(self.__dict__).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Sealed:
        return cls(**json.loads(raw))


def seal(key: bytes, name: str, value: str, at_ms: int) -> Sealed:
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, value.encode(), name.encode())
    return Sealed(
        name,
        key_id(key),
        base64.b64encode(nonce).decode(),
        base64.b64encode(sealed).decode(),
        at_ms,
    )


def unseal(key: bytes, sealed: Sealed) -> str:
    """The value; a SettingsError when the key is not the one that sealed it."""
    if sealed.key_id != key_id(key):
        raise SettingsError(
            f"VIGIL_SECRETS_KEY is not the key secret {sealed.name!r} was sealed with (key id "
            f"{sealed.key_id}, this one is {key_id(key)})"
        )
    try:
        value = AESGCM(key).decrypt(
            base64.b64decode(sealed.nonce),
            base64.b64decode(sealed.ciphertext),
            sealed.name.encode(),
        )
    except (InvalidTag, binascii.Error, ValueError):
        raise SettingsError(f"secret {sealed.name!r} does not open: it was altered") from None
    return value.decode()
