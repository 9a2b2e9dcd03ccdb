"""The relayer's decisions, without I/O: fees from a speed, the policies checked before
signing, the fee bump of a replacement, and where a transaction stands from what the chain
says of it.

Rules:
- ``speed`` prices from ``eth_feeHistory`` over the last blocks: the priority fee is the
  median of the speed's reward percentile (safeLow 10th, average 50th, fast 75th, fastest
  95th), at least the speed's floor; ``maxFeePerGas`` is twice the next block's base fee
  plus that; a legacy ``gasPrice`` is the base fee plus it. A relayer prices legacy unless
  its ``EIP1559Pricing`` policy is true (the document's default).
- ``gasPriceCap`` caps a speed's price, and refuses an explicit price above it.
- A private transaction (``isPrivate``, else the ``privateTransactions`` policy) needs the
  network's ``private_rpc_urls``; without them it is refused, never sent publicly.
- A replacement (a bump, a cancel, a replace by the user) pays at least 12.5% more on every
  fee field, above the 10% nodes require; a bump the cap does not allow is refused.
- A transaction is ``mined`` once a receipt names its block, ``confirmed`` once
  ``confirmations`` blocks have followed, ``expired`` if ``validUntil`` passed before it
  was mined.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vigil.config.relayers import Relayer, SendTransactionRequest
from vigil.errors import VigilError

GWEI = 10**9
PERCENTILES = {"safeLow": 10, "average": 50, "fast": 75, "fastest": 95}
FLOORS = {"safeLow": GWEI // 10, "average": GWEI // 2, "fast": GWEI, "fastest": 2 * GWEI}
BUMP_NUM, BUMP_DEN = 1125, 1000  # 12.5%: nodes want 10% more on each fee field


class PolicyRefusal(VigilError):
    """A send the relayer's state or policies refuse, before anything is signed."""

    def __init__(self, policy: str, value: Any, message: str) -> None:
        super().__init__(f"{policy}: {message}")
        self.policy, self.value = policy, value


@dataclass(frozen=True)
class Fees:
    """A transaction's price: ``gas_price`` (legacy), or the two EIP-1559 fields."""

    gas_price: int | None = None
    max_fee_per_gas: int | None = None
    max_priority_fee_per_gas: int | None = None

    @property
    def eip1559(self) -> bool:
        return self.max_fee_per_gas is not None

    @property
    def cap(self) -> int:
        """The most a unit of gas may cost."""
        return (self.max_fee_per_gas if self.eip1559 else self.gas_price) or 0


def fee_percentiles() -> list[int]:
    return list(PERCENTILES.values())


def price(speed: str, history: dict[str, Any], *, eip1559: bool) -> Fees:
    """The fees for ``speed`` from an ``eth_feeHistory`` reply asked with fee_percentiles()."""
    column = list(PERCENTILES).index(speed)
    rewards = [int(row[column], 16) for row in history.get("reward") or [] if row]
    tip = max(int(statistics.median(rewards)) if rewards else 0, FLOORS[speed])
    base = int((history.get("baseFeePerGas") or ["0x0"])[-1], 16)  # the next block's
    if eip1559:
        return Fees(max_fee_per_gas=2 * base + tip, max_priority_fee_per_gas=tip)
    return Fees(gas_price=base + tip)


def requested_fees(request: SendTransactionRequest) -> Fees | None:
    """The fees a request sets itself (None: priced by speed)."""
    if request.gas_price is not None:
        return Fees(gas_price=request.gas_price)
    if request.max_fee_per_gas is not None:
        return Fees(
            max_fee_per_gas=request.max_fee_per_gas,
            max_priority_fee_per_gas=request.max_priority_fee_per_gas,
        )
    return None


def capped(fees: Fees, cap: int | None) -> Fees:
    """A speed's fees within ``gasPriceCap``."""
    if cap is None or fees.cap <= cap:
        return fees
    if fees.eip1559:
        tip = min(int(fees.max_priority_fee_per_gas or 0), cap)
        return Fees(max_fee_per_gas=cap, max_priority_fee_per_gas=tip)
    return Fees(gas_price=cap)


def check_send(
    relayer: Relayer,
    request: SendTransactionRequest,
    now_ms: int,
    *,
    private: bool = False,
    book: Mapping[str, str] | None = None,
) -> None:
    """Refuse what the relayer's state and policies do not allow, naming the policy;
    ``private``: the network has an endpoint for private transactions; ``book``: the
    address book's contracts on the relayer's network (names in whitelistReceivers)."""
    if relayer.paused:
        raise PolicyRefusal("paused", True, f"relayer {relayer.name!r} is paused")
    policies = relayer.policies
    listed = policies.whitelist_receivers
    allowed = None if listed is None else {(book or {}).get(a, a) for a in listed}
    if allowed is not None and (request.to is None or request.to not in allowed):
        raise PolicyRefusal(
            "whitelistReceivers",
            request.to,
            f"{request.to or 'a contract creation'} is not among the {len(allowed)} "
            "receivers this relayer may send to",
        )
    fees = requested_fees(request)
    cap = policies.gas_price_cap
    if fees is not None and cap is not None and fees.cap > cap:
        field = "gasPrice" if not fees.eip1559 else "maxFeePerGas"
        raise PolicyRefusal(
            "gasPriceCap", fees.cap, f"{field} {fees.cap} wei is above the cap of {cap} wei"
        )
    if is_private(relayer, request) and not private:
        raise PolicyRefusal(
            "isPrivate",
            True,
            f"private transactions go to the network's private_rpc_urls, and {relayer.network} "
            "has none (vigil.yaml); send it public (isPrivate: false), or add one",
        )
    if request.valid_until is not None and request.valid_until.timestamp() * 1000 <= now_ms:
        raise PolicyRefusal(
            "validUntil", request.valid_until.isoformat(), "validUntil has already passed"
        )


def is_private(relayer: Relayer, request: SendTransactionRequest) -> bool:
    """Whether the transaction goes to a private mempool: its ``isPrivate``, else the
    relayer's ``privateTransactions`` policy."""
    if request.is_private is not None:
        return request.is_private
    return bool(relayer.policies.private_transactions)


def check_balance(relayer: Relayer, balance: int) -> None:
    if balance < relayer.min_balance:
        raise PolicyRefusal(
            "minBalance",
            balance,
            f"the relayer's balance of {balance} wei is below its minBalance of "
            f"{relayer.min_balance} wei; fund {relayer.address}",
        )


def bumped(old: Fees, market: Fees, cap: int | None) -> Fees:
    """A replacement's fees: 12.5% over ``old`` on every field, or the market's if higher;
    a PolicyRefusal when ``cap`` leaves no room for the 10% nodes require."""

    def up(value: int | None, now: int | None) -> int:
        raised = -(-int(value or 0) * BUMP_NUM // BUMP_DEN)
        return max(raised, int(now or 0))

    if old.eip1559:
        tip = up(old.max_priority_fee_per_gas, market.max_priority_fee_per_gas)
        fee = max(up(old.max_fee_per_gas, market.max_fee_per_gas), tip)
        new = Fees(max_fee_per_gas=fee, max_priority_fee_per_gas=tip)
    else:
        new = Fees(gas_price=up(old.gas_price, market.gas_price or market.max_fee_per_gas))
    if cap is not None and new.cap > cap:
        least = -(-old.cap * 11 // 10)
        if least > cap:
            raise PolicyRefusal(
                "gasPriceCap", least, f"a replacement needs {least} wei, above the cap of {cap}"
            )
        new = capped(new, cap)
        if new.eip1559 and int(new.max_priority_fee_per_gas or 0) < -(
            -int(old.max_priority_fee_per_gas or 0) * 11 // 10
        ):
            raise PolicyRefusal("gasPriceCap", cap, "the cap leaves no room to raise the tip")
    return new


def confirmation_status(mined_block: int, head: int, confirmations: int) -> str:
    """``confirmed`` once ``confirmations`` blocks follow the one that mined it."""
    return "confirmed" if head - mined_block >= confirmations else "mined"


def expired(valid_until_ms: int | None, now_ms: int) -> bool:
    return valid_until_ms is not None and now_ms > valid_until_ms


def gaps(held: Sequence[int], top: int, start: int) -> list[int]:
    """The nonces from ``start`` (the chain's count) below ``top`` (the highest one waiting)
    that no transaction holds: later ones cannot mine until something takes them."""
    taken = set(held)
    return [n for n in range(start, top) if n not in taken]
