"""Reorgs while the ingester is stopped: found on restart from the saved window, never guessed."""

import itertools
import time
from typing import Any

import pytest

from tests.helpers import RunningIngester, read_topic
from vigil.config.models import NetworkConfig
from vigil.demo.chain import ACCOUNTS, Anvil, Token
from vigil.schemas.codec import Codec
from vigil.schemas.registry import SchemaStore
from vigil.settings import Settings
from vigil.streams.evm import ingester as ingester_module
from vigil.streams.evm.ingester import Ingester
from vigil.streams.kafka import BatchProducer, ensure_topics
from vigil.testing import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def codec() -> Codec:
    return Codec(SchemaStore())


def head(anvil: Anvil) -> int:
    return int(anvil.rpc("eth_blockNumber"), 16)


def hex_hash(value: Any) -> str:
    text = value.hex()
    return text if text.startswith("0x") else "0x" + text


def reorganise(anvil: Anvil, snapshot: str, fork: int, blocks: int) -> None:
    """Revert to ``fork`` and mine a different (later-stamped) chain of ``blocks`` on it."""
    anvil.rpc("evm_revert", snapshot)
    stamp = int(anvil.rpc("eth_getBlockByNumber", hex(fork), False)["timestamp"], 16)
    anvil.rpc("evm_setNextBlockTimestamp", hex(stamp + 1000))
    anvil.rpc("anvil_mine", hex(blocks))


def ingester(
    settings: Settings, kafka: str, codec: Codec, anvil: Anvil, **network: Any
) -> Ingester:
    """A new ingester, as a restarted process makes one: it knows only the checkpoint."""
    config = NetworkConfig(chain_id=31337, rpc_urls=[anvil.url], poll_interval=0.1, **network)
    return Ingester(settings, "anvil", config, BatchProducer(settings, kafka), codec, kafka)


def assert_canonical_tail(blocks: list[dict[str, Any]], fork_hash: str, count: int) -> None:
    tail = blocks[-count:]
    assert tail[0]["parentHash"] == fork_hash
    for parent, child in itertools.pairwise(tail):
        assert child["parentHash"] == parent["hash"]


@pytest.mark.parametrize("depth", [1, 3, 10])
def test_a_reorg_while_stopped_is_retracted_on_restart(
    settings: Settings, kafka: str, anvil: Anvil, codec: Codec, depth: int
) -> None:
    ensure_topics(settings, kafka)
    token = Token(anvil.url)
    fork = head(anvil)
    snapshot = anvil.rpc("evm_snapshot")
    orphan = token.transfer(ACCOUNTS[1], 5)  # fork + 1, orphaned while vigil is stopped
    anvil.rpc("anvil_mine", hex(depth - 1))
    first = ingester(settings, kafka, codec, anvil, start_block=fork)
    with RunningIngester(first):
        wait_for(lambda: first.emitted == depth + 1, 30, f"blocks {fork}..{fork + depth}")
    reorganise(anvil, snapshot, fork, depth + 2)

    second = ingester(settings, kafka, codec, anvil, start_block=fork)
    with RunningIngester(second):
        wait_for(lambda: second.retracted == depth and second.emitted == depth + 2, 30, "repair")
    retractions = read_topic(settings, codec, kafka, "chain.reorgs", "Retraction")
    assert [r["number"] for r in retractions] == list(range(fork + depth, fork, -1))
    assert retractions[-1]["hash"] == hex_hash(orphan["blockHash"])
    blocks = read_topic(settings, codec, kafka, "chain.blocks", "Block")
    assert {r["forkNumber"] for r in retractions} == {fork}
    assert {r["forkHash"] for r in retractions} == {blocks[0]["hash"]}
    assert [b["number"] for b in blocks[depth + 1 :]] == list(range(fork + 1, fork + depth + 3))
    assert_canonical_tail(blocks, blocks[0]["hash"], depth + 2)
    for retraction in retractions:  # the node's block at that height now, for the record
        canonical = anvil.rpc("eth_getBlockByNumber", hex(retraction["number"]), False)
        assert retraction["canonicalHash"] == canonical["hash"]


def test_a_reorg_deeper_than_the_window_stops_the_network_until_repaired(
    settings: Settings,
    kafka: str,
    anvil: Anvil,
    codec: Codec,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(ingester_module, "REPAIR_POLL", 0.5)
    ensure_topics(settings, kafka)
    token = Token(anvil.url)
    fork = head(anvil)
    snapshot = anvil.rpc("evm_snapshot")
    token.transfer(ACCOUNTS[1], 5)  # fork + 1
    anvil.rpc("anvil_mine", hex(3))  # fork + 2 .. fork + 4: four blocks orphaned, window of 2
    first = ingester(settings, kafka, codec, anvil, start_block=fork, reorg_window=2)
    with RunningIngester(first):
        wait_for(lambda: first.emitted == 5, 30, f"blocks {fork}..{fork + 4}")
    reorganise(anvil, snapshot, fork, 6)

    second = ingester(settings, kafka, codec, anvil, start_block=fork, reorg_window=2)
    with RunningIngester(second):
        wait_for(lambda: second.halted, 30, "the network to stop")
        time.sleep(1)
        assert read_topic(settings, codec, kafka, "chain.reorgs", "Retraction") == []
        assert len(read_topic(settings, codec, kafka, "chain.blocks", "Block")) == 5
        [stopped] = [r.getMessage() for r in caplog.records if "remembered blocks" in r.message]
        assert f"differs from all 2 remembered blocks ({fork + 3}..{fork + 4})" in stopped
        assert "vigil backfill --network anvil --reorg FROM" in stopped
        assert "HALTED" in second.report()

        # the repair knows fork+1 and fork+2 from history, fork+3 and fork+4 from the window
        emitted = [
            (b["number"], b["hash"])
            for b in read_topic(settings, codec, kafka, "chain.blocks", "Block")
        ]
        repair = ingester(settings, kafka, codec, anvil, start_block=fork, reorg_window=2)
        with pytest.raises(Exception, match=f"block {fork + 1} that vigil emitted is not"):
            repair.repair(fork + 2, emitted)
        assert repair.repair(fork + 1, emitted) == 4
        wait_for(lambda: not second.halted and second.emitted == 6, 30, "the resumed network")
    retractions = read_topic(settings, codec, kafka, "chain.reorgs", "Retraction")
    assert sorted(r["number"] for r in retractions) == list(range(fork + 1, fork + 5))
    blocks = read_topic(settings, codec, kafka, "chain.blocks", "Block")
    assert [b["number"] for b in blocks[5:]] == list(range(fork + 1, fork + 7))
    assert_canonical_tail(blocks, blocks[0]["hash"], 6)
