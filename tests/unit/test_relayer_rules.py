"""The relayer's decisions: requests read as the Relay API writes them, fees from a speed,
policies, bumps, confirmations and nonce gaps."""

import re
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from vigil.config.relayers import Relayer, RelayerPolicies, SendTransactionRequest, iso
from vigil.processors import relayer as rules

GWEI = 10**9
TO = "0x179810822f56b0e79469189741a3fa5f2f9a7631"


def relayer(**policies: object) -> Relayer:
    return Relayer(
        relayer_id="r1",
        name="ops",
        network="mainnet",
        address="0x" + "ab" * 20,
        policies=RelayerPolicies.model_validate(policies),
        created_ms=0,
    )


def send(**fields: object) -> SendTransactionRequest:
    return SendTransactionRequest.model_validate({"to": TO, "gasLimit": "21000"} | fields)


def test_requests_read_the_documents_shapes() -> None:
    speed = send(value="1", speed="fast")
    assert (speed.value, speed.gas_limit, speed.pricing()) == (1, 21000, "speed")
    assert send(gasPrice="0x3b9aca00").gas_price == GWEI  # BigUInt: hex strings too
    eip = send(maxFeePerGas=2 * GWEI, maxPriorityFeePerGas=GWEI)
    assert eip.pricing() == "eip1559"
    assert send().pricing() == "speed"  # no price given: priced by speed


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"speed": "fast", "gasPrice": "1"}, "one of speed, gasPrice or maxFeePerGas"),
        ({"maxFeePerGas": "5"}, "go together"),
        ({"maxFeePerGas": "5", "maxPriorityFeePerGas": "6"}, "above maxFeePerGas"),
        ({"value": "-1"}, "0 to 2**256"),
        ({"value": "ten"}, "decimal or 0x-hex"),
        ({"gasLimit": "20000"}, "at least 21000"),
        ({"validUntil": "2026-12-01T09:00:00"}, "its zone"),
        ({"data": "0xabc"}, "hex bytes"),
        ({"to": "0x1234"}, "40-hex-digit"),
        ({"speed": "slow"}, "safeLow"),
    ],
)
def test_bad_requests_say_what_is_wrong(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        send(**fields)


def test_a_speed_is_priced_from_fee_history() -> None:
    history = {
        "baseFeePerGas": [hex(10 * GWEI), hex(12 * GWEI)],  # the last: the next block's
        "reward": [[hex(GWEI), hex(2 * GWEI), hex(3 * GWEI), hex(9 * GWEI)]] * 3,
    }
    fast = rules.price("fast", history, eip1559=True)
    assert (fast.max_fee_per_gas, fast.max_priority_fee_per_gas) == (27 * GWEI, 3 * GWEI)
    assert rules.price("average", history, eip1559=False).gas_price == 14 * GWEI
    empty = {"baseFeePerGas": ["0x0"], "reward": [[hex(0)] * 4]}
    assert rules.price("fastest", empty, eip1559=False).gas_price == 2 * GWEI  # the floor
    capped = rules.capped(fast, 20 * GWEI)
    assert (capped.max_fee_per_gas, capped.max_priority_fee_per_gas) == (20 * GWEI, 3 * GWEI)


def test_policies_name_themselves_and_the_value() -> None:
    checks = [
        (relayer(whitelistReceivers=["0x" + "11" * 20]), send(), "whitelistReceivers", TO),
        (relayer(gasPriceCap=str(GWEI)), send(gasPrice=2 * GWEI), "gasPriceCap", 2 * GWEI),
        (relayer(privateTransactions=True), send(), "isPrivate", True),
        (relayer(), send(validUntil="2020-01-01T00:00:00Z"), "validUntil", None),
    ]
    for owner, request, policy, value in checks:
        with pytest.raises(rules.PolicyRefusal) as refused:
            rules.check_send(owner, request, 1_800_000_000_000)
        assert refused.value.policy == policy
        if value is not None:
            assert refused.value.value == value
    # with a private endpoint on the network, private ones go (the policy's default, or asked)
    rules.check_send(relayer(privateTransactions=True), send(), 0, private=True)
    assert rules.is_private(relayer(privateTransactions=True), send())
    assert not rules.is_private(relayer(privateTransactions=True), send(isPrivate=False))
    paused = relayer().model_copy(update={"paused": True})
    with pytest.raises(rules.PolicyRefusal, match="paused"):
        rules.check_send(paused, send(), 0)
    rules.check_send(relayer(whitelistReceivers=[TO], gasPriceCap="5"), send(speed="fast"), 0)
    low = relayer().model_copy(update={"min_balance": 10})
    with pytest.raises(rules.PolicyRefusal, match="below its minBalance of 10 wei"):
        rules.check_balance(low, 9)


def test_a_bump_raises_every_fee_by_an_eighth_within_the_cap() -> None:
    old = rules.Fees(max_fee_per_gas=100, max_priority_fee_per_gas=10)
    market = rules.Fees(max_fee_per_gas=50, max_priority_fee_per_gas=5)
    new = rules.bumped(old, market, None)
    assert (new.max_fee_per_gas, new.max_priority_fee_per_gas) == (113, 12)  # ceil(12.5%)
    higher = rules.bumped(old, rules.Fees(max_fee_per_gas=300, max_priority_fee_per_gas=30), None)
    assert (higher.max_fee_per_gas, higher.max_priority_fee_per_gas) == (300, 30)
    assert rules.bumped(rules.Fees(gas_price=100), rules.Fees(gas_price=1), 111).gas_price == 111
    with pytest.raises(rules.PolicyRefusal, match="needs 110 wei, above the cap of 105"):
        rules.bumped(rules.Fees(gas_price=100), rules.Fees(gas_price=1), 105)


def test_confirmations_expiry_and_gaps() -> None:
    assert rules.confirmation_status(100, 101, 2) == "mined"
    assert rules.confirmation_status(100, 102, 2) == "confirmed"
    assert rules.confirmation_status(100, 100, 0) == "confirmed"
    assert rules.expired(1000, 1001) and not rules.expired(1000, 1000)
    assert not rules.expired(None, 10**15)
    assert rules.gaps([5, 7, 8], top=8, start=5) == [6]
    assert rules.gaps([3], top=3, start=0) == [0, 1, 2]
    assert rules.gaps([], top=0, start=0) == []


def test_times_are_written_as_the_document_writes_them() -> None:
    ms = int(datetime(2022, 10, 26, 19, 22, 10, 67_000, tzinfo=UTC).timestamp() * 1000)
    assert iso(ms) == "2022-10-26T19:22:10.067Z"


def test_whitelisted_receivers_may_be_address_book_names() -> None:
    other = "0x" + "22" * 20
    named = relayer(whitelistReceivers=["token", other])
    rules.check_send(named, send(), 0, book={"token": TO})  # the name is TO on this network
    rules.check_send(named, send(to=other), 0, book={"token": TO})
    with pytest.raises(rules.PolicyRefusal, match="whitelistReceivers"):
        rules.check_send(named, send(), 0, book={})  # a name the book lacks allows nothing
    with pytest.raises(ValidationError):
        relayer(whitelistReceivers=["Not A Name"])
