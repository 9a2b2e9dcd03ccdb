"""The block ingester: polls JSON-RPC, emits Transaction and Block records, checkpoints."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from kafka import KafkaProducer

from vigil.config.models import NetworkConfig
from vigil.errors import RpcError
from vigil.schemas.codec import Codec
from vigil.settings import Settings
from vigil.streams.evm.records import block_record
from vigil.streams.evm.rpc import RpcClient
from vigil.streams.kafka import read_compacted

log = logging.getLogger(__name__)


def fetch_block(rpc: RpcClient, number: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The block with full transactions and its receipts, in one batch when the node can."""
    try:
        block, receipts = rpc.batch(
            [("eth_getBlockByNumber", [hex(number), True]), ("eth_getBlockReceipts", [hex(number)])]
        )
    except RpcError as exc:
        if "eth_getBlockReceipts" not in str(exc):
            raise
        block, receipts = rpc.call("eth_getBlockByNumber", hex(number), True), None
    if block is None:
        raise RpcError(f"{rpc.url} eth_getBlockByNumber: block {number} not found on the node")
    if receipts is None:  # the node lacks eth_getBlockReceipts: ask per transaction
        hashes = [tx["hash"] for tx in block["transactions"]]
        receipts = rpc.batch([("eth_getTransactionReceipt", [h]) for h in hashes]) if hashes else []
    return block, receipts


class Ingester:
    """Emits every block of one network exactly in order, resuming from its checkpoint."""

    def __init__(
        self,
        settings: Settings,
        network: str,
        config: NetworkConfig,
        producer: KafkaProducer,
        codec: Codec,
        bootstrap: str,
    ) -> None:
        self.settings, self.network, self.config = settings, network, config
        self.producer, self.codec, self.bootstrap = producer, codec, bootstrap
        self.rpc = RpcClient(config.rpc_urls[0])
        self.stopping = threading.Event()
        self.blocks_topic = settings.topic("chain.blocks")
        self.tx_topic = settings.topic("chain.transactions")
        self.checkpoint_topic = settings.topic("chain.checkpoints")
        self.emitted = 0

    def checkpoint(self) -> int | None:
        """The last block number fully emitted for this network, from the compacted topic."""
        latest = read_compacted(self.bootstrap, self.checkpoint_topic)
        raw = latest.get(self.network.encode())
        if raw is None:
            return None
        return int(self.codec.decode(raw, "Checkpoint", where=self.checkpoint_topic)["number"])

    def _check_chain(self) -> None:
        chain_id = int(self.rpc.call("eth_chainId"), 16)
        if chain_id != self.config.chain_id:
            raise RpcError(
                f"{self.rpc.url} eth_chainId: the node is on chain {chain_id}, but "
                f"network {self.network!r} says chain_id {self.config.chain_id}"
            )

    def emit(self, number: int) -> None:
        block, receipts = fetch_block(self.rpc, number)
        record = block_record(self.network, self.config.chain_id, block, receipts)
        for tx in record["transactions"]:
            self.producer.send(
                self.tx_topic,
                key=f"{self.network}:{tx['hash']}".encode(),
                value=self.codec.encode(self.tx_topic, "Transaction", tx),
            )
        self.producer.send(
            self.blocks_topic,
            key=self.network.encode(),
            value=self.codec.encode(self.blocks_topic, "Block", record),
        )
        self.producer.flush()  # the block is durable before the checkpoint moves past it
        checkpoint = {
            "network": self.network,
            "number": number,
            "hash": record["hash"],
            "at": int(time.time() * 1000),
        }
        self.producer.send(
            self.checkpoint_topic,
            key=self.network.encode(),
            value=self.codec.encode(self.checkpoint_topic, "Checkpoint", checkpoint),
        )
        self.emitted += 1

    def run(self) -> None:
        """Poll until stopped; RPC errors are logged and retried, never skip a block."""
        self._check_chain()
        last = self.checkpoint()
        if last is not None:
            following = last + 1
        elif self.config.start_block == "latest":
            following = int(self.rpc.call("eth_blockNumber"), 16)
        else:
            following = self.config.start_block
        log.info(
            "network %s: ingesting from block %d (%s)",
            self.network,
            following,
            "checkpoint" if last is not None else "start_block",
        )
        delay = self.config.poll_interval
        while not self.stopping.is_set():
            try:
                head = int(self.rpc.call("eth_blockNumber"), 16)
                while following <= head and not self.stopping.is_set():
                    self.emit(following)
                    following += 1
                self.producer.flush()
                delay = self.config.poll_interval
            except RpcError as exc:
                delay = min(30.0, delay * 2)
                log.error(
                    "network %s block %d: %s; retrying in %.1f s",
                    self.network,
                    following,
                    exc,
                    delay,
                )
            self.stopping.wait(delay)
