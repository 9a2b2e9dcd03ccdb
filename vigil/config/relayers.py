"""Relayers and their transactions as the Relay API (source document 002) shapes them: the
JSON keeps the document's camelCase names, Python code uses the snake_case attributes.

Amounts (``value``, ``gasPrice``, ``minBalance``…) are BigUInt: a decimal string, a ``0x``
hex string or a non-negative integer; they are kept as Python ints.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from vigil.config.models import Address, AddressOrName

SPEEDS = ("safeLow", "average", "fast", "fastest")
Speed = Literal["safeLow", "average", "fast", "fastest"]
# pending → sent → submitted → inmempool → mined → confirmed; failed and expired end it too
STATUSES = ("pending", "sent", "submitted", "inmempool", "mined", "confirmed", "failed", "expired")
FINAL = frozenset({"confirmed", "failed", "expired"})
_HEX_DATA = re.compile(r"^0x([0-9a-fA-F]{2})*$")


def _big_uint(value: Any) -> int:
    """A BigUInt: a decimal or 0x-hex string, or a non-negative integer."""
    if isinstance(value, bool):
        raise ValueError(f"expected a non-negative integer or a numeric string, got {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            number = int(text, 16) if text.lower().startswith("0x") else int(text)
        except ValueError:
            raise ValueError(f"expected a decimal or 0x-hex number, got {value!r}") from None
    else:
        raise ValueError(f"expected a non-negative integer or a numeric string, got {value!r}")
    if number < 0 or number >= 2**256:
        raise ValueError(f"expected a number from 0 to 2**256 - 1, got {value!r}")
    return number


def _hex_data(value: Any) -> str:
    if not isinstance(value, str) or not _HEX_DATA.match(value):
        raise ValueError(f"expected 0x-prefixed hex bytes, got {str(value)[:40]!r}")
    return value.lower()


BigUInt = Annotated[int, BeforeValidator(_big_uint)]
HexData = Annotated[str, BeforeValidator(_hex_data)]


class _Api(BaseModel):
    """A Relay API body: camelCase in JSON, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class RelayerPolicies(_Api):
    """Checked before signing; unset means no limit (or the relayer's default)."""

    gas_price_cap: BigUInt | None = Field(default=None, alias="gasPriceCap")
    whitelist_receivers: list[AddressOrName] | None = Field(
        default=None,
        alias="whitelistReceivers",
        description="addresses, or names of contracts in the project's address book",
    )
    eip1559_pricing: bool | None = Field(default=None, alias="EIP1559Pricing")
    private_transactions: bool | None = Field(default=None, alias="privateTransactions")

    def merged(self, change: RelayerPolicies) -> RelayerPolicies:
        """These policies with the fields ``change`` sets replaced."""
        return self.model_copy(update=change.model_dump(exclude_unset=True))

    def shown(self) -> dict[str, Any]:
        shown = self.model_dump(by_alias=True, exclude_none=True)
        if "gasPriceCap" in shown:
            shown["gasPriceCap"] = str(shown["gasPriceCap"])
        return shown


class CreateRelayerRequest(_Api):
    name: str = Field(min_length=1, max_length=100)
    network: str = Field(min_length=1)
    min_balance: BigUInt = Field(default=0, alias="minBalance")
    policies: RelayerPolicies = Field(default_factory=RelayerPolicies)
    use_address_from_relayer_id: str | None = Field(default=None, alias="useAddressFromRelayerId")
    paused: bool = False
    channels: list[str] = Field(
        default_factory=list,
        alias="notificationChannels",
        description="channel aliases told when the balance falls below minBalance (vigil's)",
    )


class UpdateRelayerRequest(_Api):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    min_balance: BigUInt | None = Field(default=None, alias="minBalance")
    policies: RelayerPolicies | None = None
    paused: bool | None = None
    channels: list[str] | None = Field(default=None, alias="notificationChannels")


class Relayer(BaseModel):
    """A relayer as kept on ``_relayers``: never its key, only its address."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    relayer_id: str
    name: str
    network: str
    address: str  # lower case; the signing key is kept under it (clones share it)
    min_balance: int = 0
    paused: bool = False
    policies: RelayerPolicies = Field(default_factory=RelayerPolicies)
    created_ms: int
    deleted: bool = False
    channels: list[str] = Field(default_factory=list)  # told when below min_balance

    def model(self, pending_tx_cost: int = 0) -> dict[str, Any]:
        """The document's RelayerModel (with minBalance and policies, as the summary has)."""
        return {
            "relayerId": self.relayer_id,
            "name": self.name,
            "address": self.address,
            "network": self.network,
            "paused": self.paused,
            "createdAt": iso(self.created_ms),
            "minBalance": str(self.min_balance),
            "policies": self.policies.shown(),
            "pendingTxCost": str(pending_tx_cost),
            "notificationChannels": list(self.channels),
        }


class SendTransactionRequest(_Api):
    """A transaction to send (or a replacement): one way of pricing at most (none: the
    ``fast`` speed), ``gasLimit`` always."""

    to: Address | None = None
    value: BigUInt = 0
    data: HexData = "0x"
    gas_limit: BigUInt = Field(alias="gasLimit")
    speed: Speed | None = None
    gas_price: BigUInt | None = Field(default=None, alias="gasPrice")
    max_fee_per_gas: BigUInt | None = Field(default=None, alias="maxFeePerGas")
    max_priority_fee_per_gas: BigUInt | None = Field(default=None, alias="maxPriorityFeePerGas")
    valid_until: datetime | None = Field(default=None, alias="validUntil")
    is_private: bool | None = Field(default=None, alias="isPrivate")

    @model_validator(mode="after")
    def _one_pricing(self) -> SendTransactionRequest:
        eip1559 = (self.max_fee_per_gas, self.max_priority_fee_per_gas)
        if (eip1559[0] is None) != (eip1559[1] is None):
            raise ValueError("maxFeePerGas and maxPriorityFeePerGas go together")
        ways = [
            name
            for name, given in (
                ("speed", self.speed is not None),
                ("gasPrice", self.gas_price is not None),
                ("maxFeePerGas", eip1559[0] is not None),
            )
            if given
        ]
        if len(ways) > 1:
            raise ValueError(f"price by one of speed, gasPrice or maxFeePerGas; got {ways}")
        if eip1559[0] is not None and eip1559[1] is not None and eip1559[1] > eip1559[0]:
            raise ValueError("maxPriorityFeePerGas is above maxFeePerGas")
        if self.valid_until is not None and self.valid_until.tzinfo is None:
            raise ValueError("validUntil needs its zone, e.g. 2026-12-01T09:00:00Z")
        if self.gas_limit < 21_000:
            raise ValueError(f"gasLimit is {self.gas_limit}; a transaction needs at least 21000")
        return self

    def shown(self) -> dict[str, Any]:
        """As the Relay API writes a request: amounts in wei as decimal strings."""
        shown = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        for name in ("value", "gasPrice", "maxFeePerGas", "maxPriorityFeePerGas"):
            if name in shown:
                shown[name] = str(shown[name])
        return shown

    def pricing(self) -> str:
        """How the fee is set: speed, gasPrice or eip1559."""
        if self.gas_price is not None:
            return "gasPrice"
        if self.max_fee_per_gas is not None:
            return "eip1559"
        return "speed"


def iso(ms: int) -> str:
    """An ISO-8601 UTC time with milliseconds, as the document writes them."""
    at = datetime.fromtimestamp(ms / 1000, UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
