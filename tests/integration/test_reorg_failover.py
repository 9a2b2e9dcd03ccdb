"""Reorgs on anvil and failing RPC endpoints: nothing missed, nothing duplicated, nothing lies."""

import itertools
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import RunningIngester, read_topic
from tests.rpc_server import JsonRpcServer
from vigil.config.loader import LoadedMonitor
from vigil.config.models import MonitorConfig, NetworkConfig, RpcEndpoint
from vigil.connectors.history.ddl import migrate
from vigil.connectors.history.query import run_readonly
from vigil.connectors.history.sink import HistorySink
from vigil.demo.chain import ACCOUNTS, Anvil, Token
from vigil.processors.matching import Matcher, compile_monitor
from vigil.schemas.codec import Codec
from vigil.schemas.registry import SchemaStore
from vigil.settings import Settings
from vigil.streams.evm.ingester import Ingester
from vigil.streams.evm.rpc import RpcPool
from vigil.streams.kafka import BatchProducer, ensure_topics, producer
from vigil.testing import wait_for

pytestmark = pytest.mark.integration


def head(anvil: Anvil) -> int:
    return int(anvil.rpc("eth_blockNumber"), 16)


def test_reorg_retracts_orphaned_blocks_and_reemits_the_canonical_chain(
    settings: Settings, kafka: str, anvil: Anvil, clickhouse: Any
) -> None:
    ensure_topics(settings, kafka)
    codec = Codec(SchemaStore())
    token = Token(anvil.url)
    fork = head(anvil)
    snapshot = anvil.rpc("evm_snapshot")
    orphan_receipt = token.transfer(ACCOUNTS[1], 5)  # fork + 1, soon orphaned
    anvil.rpc("anvil_mine", hex(2))
    network = NetworkConfig(
        chain_id=31337, rpc_urls=[anvil.url], start_block=fork, poll_interval=0.1
    )
    ingester = Ingester(settings, "anvil", network, BatchProducer(settings, kafka), codec, kafka)
    with RunningIngester(ingester):
        wait_for(lambda: ingester.emitted == 4, 30, "fork .. fork+3")
        anvil.rpc("evm_revert", snapshot)
        next_time = int(anvil.rpc("eth_getBlockByNumber", hex(fork), False)["timestamp"], 16)
        anvil.rpc("evm_setNextBlockTimestamp", hex(next_time + 1000))  # a different chain
        anvil.rpc("anvil_mine", hex(4))
        wait_for(lambda: ingester.retracted == 3 and ingester.emitted == 8, 30, "the reorg")
    retractions = read_topic(settings, codec, kafka, "chain.reorgs", "Retraction")
    assert [r["number"] for r in retractions] == [fork + 3, fork + 2, fork + 1]
    assert {r["forkNumber"] for r in retractions} == {fork}
    orphan_hash = orphan_receipt["blockHash"].hex()
    orphan_hash = orphan_hash if orphan_hash.startswith("0x") else "0x" + orphan_hash
    assert retractions[-1]["hash"] == orphan_hash
    blocks = read_topic(settings, codec, kafka, "chain.blocks", "Block")
    numbers = [b["number"] for b in blocks]
    assert numbers == [fork, fork + 1, fork + 2, fork + 3, fork + 1, fork + 2, fork + 3, fork + 4]
    canonical = blocks[4:]
    assert canonical[0]["parentHash"] == blocks[0]["hash"]
    for parent, child in itertools.pairwise(canonical):
        assert child["parentHash"] == parent["hash"]

    # the history marks the orphaned block and its match retracted; nothing is deleted
    config = MonitorConfig(name="t", network="anvil", addresses=[token.address])
    matcher = Matcher([compile_monitor(LoadedMonitor("t", config, [], Path("t.yaml")), 31337)])
    matches = [m for b in blocks[1:4] for m in matcher.match_block(b)]  # the orphaned ones
    assert [m["blockHash"] for m in matches] == [orphan_hash]
    sink_producer = producer(settings, kafka)
    topic = settings.topic("monitor.matches")
    sink_producer.send(topic, key=b"t", value=codec.encode(topic, "Match", matches[0]))
    sink_producer.flush()
    migrate(clickhouse)
    sink = HistorySink(settings, kafka, clickhouse, codec, threading.Lock())

    def retracted() -> list[list[Any]]:
        sink.step(200)
        return run_readonly(
            clickhouse,
            (
                "SELECT (SELECT countIf(retracted = 1) FROM blocks FINAL), "
                "(SELECT count() FROM blocks FINAL), "
                "(SELECT countIf(retracted = 1) FROM transactions FINAL), "
                "(SELECT countIf(retracted = 1) FROM matches FINAL)"
            ),
        ).rows

    wait_for(lambda: retracted() == [[3, 8, 1, 1]], 60, "retracted rows in ClickHouse")
    sink.consumer.close()


def test_failover_misses_and_repeats_nothing(settings: Settings, kafka: str, anvil: Anvil) -> None:
    ensure_topics(settings, kafka)
    codec = Codec(SchemaStore())
    # the preferred endpoint throttles, errors, drops connections and answers garbage
    flaky = JsonRpcServer(
        upstream=anvil.url, faults=[429, 500, "close", "garbage", 503, 502, 429, "close"] * 3
    )
    flaky.start()
    start = head(anvil) + 1
    pool = RpcPool(
        [RpcEndpoint(url=flaky.url, weight=10), RpcEndpoint(url=anvil.url, weight=1)],
        attempts=2,
        base_delay=0.01,
        cooldown=0.5,
        timeout=5,
    )
    network = NetworkConfig(
        chain_id=31337,
        rpc_urls=[flaky.url, anvil.url],
        start_block=start,
        poll_interval=0.05,
        batch_size=3,
    )
    ingester = Ingester(
        settings, "anvil", network, BatchProducer(settings, kafka), codec, kafka, rpc=pool
    )
    try:
        with RunningIngester(ingester):
            for _ in range(100):  # keep the chain moving until every fault has been served
                anvil.rpc("anvil_mine", hex(3))
                if not flaky.faults:
                    break
                time.sleep(0.1)
            last = head(anvil)
            wait_for(lambda: ingester.emitted == last - start + 1, 60, "every block")
            wait_for(lambda: ingester.lag == 0, 10, "the lag to close")
    finally:
        flaky.stop()
    numbers = [b["number"] for b in read_topic(settings, codec, kafka, "chain.blocks", "Block")]
    assert numbers == list(range(start, last + 1))  # none missed, none twice, in order
    metrics = {m["url"]: m for m in pool.metrics()}
    assert metrics[flaky.url]["errors"] == 24  # every scripted fault was met, and survived
    assert metrics[anvil.url]["requests"] > 0  # it failed over
    assert flaky.faults == []  # and came back to the preferred endpoint afterwards
    report = ingester.report()
    assert f"lag 0, emitted {last - start + 1}" in report
    assert f"{flaky.url} up" in report and "24 err" in report


def test_a_hanging_rpc_endpoint_times_out_and_fails_over() -> None:
    hanging = JsonRpcServer(chain_id=5, faults=["hang", "hang"]).start()
    healthy = JsonRpcServer(chain_id=5).start()
    pool = RpcPool(
        [RpcEndpoint(url=hanging.url, weight=5), RpcEndpoint(url=healthy.url)],
        attempts=2,
        base_delay=0.01,
        timeout=0.5,
        cooldown=60,
    )
    try:
        assert pool.call("eth_chainId") == "0x5"
        metrics = {m["url"]: m for m in pool.metrics()}
        assert metrics[hanging.url]["errors"] == 2
        assert "ReadTimeout" in metrics[hanging.url]["last_error"]
        assert not metrics[hanging.url]["healthy"]
        assert pool.shown == healthy.url  # the hanging one rests; the healthy one leads
    finally:
        pool.close()
        hanging.stop()
        healthy.stop()
