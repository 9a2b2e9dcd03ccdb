"""Relayer signing keys behind a small interface, so a KMS or HSM can take the place of the
sealed store later: a key is made or imported, then only used through ``signer(address)``.

The sealed store keeps each private key sealed with the operator's key (AES-256-GCM, the
mechanism of task secrets, ``connectors.tasks.secrets``) under the name ``relayer:<address>``,
on a compacted topic of its own: never in task secrets, logs, history or API answers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from eth_account import Account
from eth_account.signers.local import LocalAccount

from vigil.connectors.tasks.secrets import Sealed, seal, unseal
from vigil.errors import SettingsError, VigilError


class KeyStore(Protocol):
    """Where relayer keys live; addresses are lower case."""

    def create(self, at_ms: int) -> str: ...

    def import_key(self, private_key: str, at_ms: int) -> str: ...

    def signer(self, address: str) -> LocalAccount: ...


class SealedKeyStore:
    """Keys sealed with the operator's key, read and written through two callables (the
    ``_relayer-keys`` topic in the stack, a dict in tests)."""

    def __init__(
        self,
        key: bytes | None,
        read: Callable[[str], Sealed | None],
        write: Callable[[str, Sealed], None],
    ) -> None:
        self._key, self._read, self._write = key, read, write

    def _operator_key(self) -> bytes:
        if self._key is None:
            raise SettingsError(
                "VIGIL_SECRETS_KEY is not set: relayer keys are sealed with it; "
                "`vigil secrets new-key` prints one"
            )
        return self._key

    def create(self, at_ms: int) -> str:
        return self._keep(Account.create(), at_ms)

    def import_key(self, private_key: str, at_ms: int) -> str:
        try:
            account = Account.from_key(private_key.strip())
        except (ValueError, TypeError):  # the key is never repeated in the message
            raise VigilError("the private key is not 32 bytes of hex") from None
        return self._keep(account, at_ms)

    def _keep(self, account: LocalAccount, at_ms: int) -> str:
        address = account.address.lower()
        name = f"relayer:{address}"
        self._write(address, seal(self._operator_key(), name, account.key.hex(), at_ms))
        return address

    def signer(self, address: str) -> LocalAccount:
        sealed = self._read(address.lower())
        if sealed is None:
            raise VigilError(f"no signing key is kept for {address}")
        account: LocalAccount = Account.from_key(unseal(self._operator_key(), sealed))
        return account
