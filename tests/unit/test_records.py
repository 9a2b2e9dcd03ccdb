from tests.helpers import MAINNET, load_json, recorded_block_18m
from vigil.schemas.evm import block_record


def test_block_18m_matches_the_recorded_data() -> None:
    raw_block = load_json(MAINNET / "18000000.block.json")
    raw_receipts = {r["transactionHash"]: r for r in load_json(MAINNET / "18000000.receipts.json")}
    block = recorded_block_18m()
    assert block["number"] == 18_000_000
    assert block["hash"] == raw_block["hash"]
    assert len(block["transactions"]) == 94
    assert sum(len(t["receipt"]["logs"]) for t in block["transactions"]) == 291
    failed = [t["hash"] for t in block["transactions"] if t["receipt"]["status"] == 0]
    assert failed == [h for h, r in raw_receipts.items() if r["status"] == "0x0"]
    assert len(failed) == 2
    assert {t["type"] for t in block["transactions"]} == {0, 2}
    for raw, tx in zip(raw_block["transactions"], block["transactions"], strict=True):
        receipt = raw_receipts[raw["hash"]]
        assert tx["value"] == str(int(raw["value"], 16))
        assert tx["gas"] == int(raw["gas"], 16)
        assert tx["receipt"]["gasUsed"] == int(receipt["gasUsed"], 16)
        assert tx["receipt"]["effectiveGasPrice"] == str(int(receipt["effectiveGasPrice"], 16))
        assert [entry["logIndex"] for entry in tx["receipt"]["logs"]] == [
            int(entry["logIndex"], 16) for entry in receipt["logs"]
        ]


def test_pre_byzantium_receipts_keep_status_absent() -> None:
    etl = MAINNET / "etl"
    block = load_json(etl / "483920.block.rpc.json")["result"]
    receipts = [
        load_json(etl / f"web3_response.eth_getTransactionReceipt_{tx['hash']}.json")["result"]
        for tx in block["transactions"]
    ]
    record = block_record("mainnet", 1, block, receipts)
    assert len(record["transactions"]) == 4
    assert all(t["receipt"]["status"] is None for t in record["transactions"])
    assert record["baseFeePerGas"] is None
    assert all(t["maxFeePerGas"] is None for t in record["transactions"])


def test_withdrawals_and_header_fields_are_kept() -> None:
    raw_block = load_json(MAINNET / "18000000.block.json")
    block = recorded_block_18m()
    assert len(block["withdrawals"]) == 16
    for raw, withdrawal in zip(raw_block["withdrawals"], block["withdrawals"], strict=True):
        assert withdrawal == {
            "index": int(raw["index"], 16),
            "validatorIndex": int(raw["validatorIndex"], 16),
            "address": raw["address"],
            "amount": str(int(raw["amount"], 16)),
        }
    assert block["blobGasUsed"] is None  # block 18,000,000 predates Cancun


def test_unknown_l2_transaction_types_are_kept_without_crashing() -> None:
    raw_block = load_json(MAINNET / "18000000.block.json")
    receipts = load_json(MAINNET / "18000000.receipts.json")
    tx = dict(raw_block["transactions"][0])
    # an Arbitrum-style system transaction: type 0x6a, no gas price, nonce or signature
    for absent in (
        "gasPrice",
        "maxFeePerGas",
        "maxPriorityFeePerGas",
        "nonce",
        "v",
        "r",
        "s",
        "chainId",
        "accessList",
    ):
        tx.pop(absent, None)
    tx["type"] = "0x6a"
    block = block_record(
        "arbitrum",
        42161,
        {**raw_block, "transactions": [tx]},
        [r for r in receipts if r["transactionHash"] == tx["hash"]],
    )
    [record] = block["transactions"]
    assert record["type"] == 0x6A
    assert record["gasPrice"] is None and record["txChainId"] is None
    assert record["nonce"] == 0
