"""The block ingester: every block once, in order, at the confirmation level; reorgs retracted."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from kafka import KafkaProducer

from vigil.config.models import NetworkConfig
from vigil.errors import RpcError, RpcReplyError
from vigil.schemas.codec import Codec
from vigil.settings import Settings
from vigil.streams.evm.records import block_record
from vigil.streams.evm.rpc import Call, RpcPool
from vigil.streams.kafka import read_compacted

log = logging.getLogger(__name__)
STATUS_EVERY = 60.0  # seconds between progress lines in the ingester's log
BLOCK_RECEIPTS_UNSUPPORTED = (-32601, -32600, -32602)  # method not found / invalid request


def fetch_blocks(
    rpc: RpcPool, numbers: list[int], *, block_receipts: bool = True
) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Blocks with full transactions and their receipts, in one JSON-RPC batch.

    ``block_receipts=False`` asks for each transaction's receipt instead of
    ``eth_getBlockReceipts``. Returns the blocks before the first one the node lacks.
    """
    if block_receipts:
        calls: list[Call] = []
        for number in numbers:
            calls += [
                ("eth_getBlockByNumber", [hex(number), True]),
                ("eth_getBlockReceipts", [hex(number)]),
            ]
        results = rpc.batch(calls)
        pairs = list(zip(results[::2], results[1::2], strict=True))
    else:
        blocks = rpc.batch([("eth_getBlockByNumber", [hex(n), True]) for n in numbers])
        hashes = [tx["hash"] for block in blocks if block for tx in block["transactions"]]
        receipts = rpc.batch([("eth_getTransactionReceipt", [h]) for h in hashes]) if hashes else []
        by_hash = {r["transactionHash"]: r for r in receipts if r}
        pairs = [
            (
                b,
                [by_hash[tx["hash"]] for tx in b["transactions"] if tx["hash"] in by_hash]
                if b
                else None,
            )
            for b in blocks
        ]
    available: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    for number, (block, receipts) in zip(numbers, pairs, strict=True):
        if block is None or receipts is None:
            if not available:
                raise RpcError(f"{rpc.url}: block {number} is not available on the node yet")
            break  # emit what precedes the gap; the gap is asked for again next time
        available.append((block, receipts))
    return available


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
        rpc: RpcPool | None = None,
    ) -> None:
        self.settings, self.network, self.config = settings, network, config
        self.producer, self.codec, self.bootstrap = producer, codec, bootstrap
        self.rpc = rpc or RpcPool(config.rpc_urls)
        self.stopping = threading.Event()
        self.blocks_topic = settings.topic("chain.blocks")
        self.tx_topic = settings.topic("chain.transactions")
        self.reorg_topic = settings.topic("chain.reorgs")
        self.checkpoint_topic = settings.topic("chain.checkpoints")
        self.window: deque[tuple[int, str]] = deque(maxlen=config.reorg_window)
        self.block_receipts = True
        self.emitted = 0
        self.retracted = 0
        self.head = 0
        self.lag = 0
        self.next_block = 0
        # errors back off from the poll interval up to this (a slow chain waits longer)
        self.max_backoff = min(30.0, max(5.0, 10 * config.poll_interval))

    def checkpoint(self) -> tuple[int, str] | None:
        """The last block (number, hash) fully emitted for this network."""
        raw = read_compacted(self.bootstrap, self.checkpoint_topic).get(self.network.encode())
        if raw is None:
            return None
        record = self.codec.decode(raw, "Checkpoint", where=self.checkpoint_topic)
        return int(record["number"]), str(record["hash"])

    def _check_chain(self) -> None:
        chain_id = int(self.rpc.call("eth_chainId"), 16)
        if chain_id != self.config.chain_id:
            raise RpcError(
                f"{self.rpc.url} eth_chainId: the node is on chain {chain_id}, but "
                f"network {self.network!r} says chain_id {self.config.chain_id}"
            )

    def confirmed_head(self) -> int:
        """The highest block at the network's confirmation level."""
        level = self.config.confirmations
        if isinstance(level, str):
            tagged = self.rpc.call("eth_getBlockByNumber", level, False)
            self.head = int(self.rpc.call("eth_blockNumber"), 16)
            return int(tagged["number"], 16) if tagged else -1
        self.head = int(self.rpc.call("eth_blockNumber"), 16)
        return self.head - level

    def _save_checkpoint(self, number: int, block_hash: str) -> None:
        record = {
            "network": self.network,
            "number": number,
            "hash": block_hash,
            "at": int(time.time() * 1000),
        }
        self.producer.send(
            self.checkpoint_topic,
            key=self.network.encode(),
            value=self.codec.encode(self.checkpoint_topic, "Checkpoint", record),
        )

    def _emit(self, record: dict[str, Any]) -> None:
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
        self.window.append((record["number"], record["hash"]))
        self.emitted += 1

    def _retract(self, new_block: dict[str, Any]) -> int:
        """Walk back to the fork point, emit a Retraction per orphaned block; returns the fork."""
        orphaned: list[tuple[int, str]] = []
        fork: tuple[int, str] | None = None
        while self.window:
            number, block_hash = self.window[-1]
            canonical = self.rpc.call("eth_getBlockByNumber", hex(number), False)
            canonical_hash = canonical["hash"].lower() if canonical else None
            if canonical_hash == block_hash:
                fork = (number, block_hash)
                break
            orphaned.append((number, block_hash))
            self.window.pop()
        if fork is None:
            # deeper than the window: everything we still remember is retracted
            oldest = orphaned[-1][0] if orphaned else new_block["number"]
            log.error(
                "network %s: reorg deeper than the %d-block window at block %d; "
                "retracting all %d remembered blocks",
                self.network,
                self.config.reorg_window,
                new_block["number"],
                len(orphaned),
            )
            fork = (oldest - 1, new_block["parentHash"])
        now = int(time.time() * 1000)
        for number, block_hash in orphaned:
            retraction = {
                "network": self.network,
                "number": number,
                "hash": block_hash,
                "canonicalHash": None,
                "forkNumber": fork[0],
                "forkHash": fork[1],
                "at": now,
            }
            self.producer.send(
                self.reorg_topic,
                key=self.network.encode(),
                value=self.codec.encode(self.reorg_topic, "Retraction", retraction),
            )
        self.retracted += len(orphaned)
        self._save_checkpoint(*fork)
        self.producer.flush()
        log.warning(
            "network %s: reorg at block %d: %d block(s) retracted back to fork %d",
            self.network,
            new_block["number"],
            len(orphaned),
            fork[0],
        )
        return fork[0] + 1

    def backfill(self, first: int, last: int, progress: Callable[[int], None] | None = None) -> int:
        """Emit blocks ``first``..``last`` again, in order; the checkpoint does not move.

        Downstream effects are keyed (match ids, delivery keys, ReplacingMergeTree), so
        blocks emitted before are not notified twice.
        """
        self._check_chain()
        number = first
        while number <= last:
            numbers = list(range(number, min(last, number + self.config.batch_size - 1) + 1))
            for block, receipts in self._fetch(numbers):
                self._emit(block_record(self.network, self.config.chain_id, block, receipts))
                number += 1
                if progress is not None:
                    progress(1)
            self.producer.flush()
        return number - first

    def _fetch(self, numbers: list[int]) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
        if self.block_receipts:
            try:
                return fetch_blocks(self.rpc, numbers, block_receipts=True)
            except RpcReplyError as exc:
                if exc.method != "eth_getBlockReceipts" or exc.code not in (
                    BLOCK_RECEIPTS_UNSUPPORTED
                ):
                    raise
                log.info(
                    "network %s: %s; asking for receipts per transaction from now on",
                    self.network,
                    exc,
                )
                self.block_receipts = False
        return fetch_blocks(self.rpc, numbers, block_receipts=False)

    def step(self, following: int) -> int:
        """Emit what is confirmed from ``following`` on (one catch-up slice); returns the next."""
        target = self.confirmed_head()
        end = min(target, following + self.config.max_catch_up - 1)
        self.lag = max(0, target - following + 1)
        while following <= end and not self.stopping.is_set():
            self.next_block = following
            numbers = list(range(following, min(end, following + self.config.batch_size - 1) + 1))
            fetched = self._fetch(numbers)
            for block, receipts in fetched:
                record = block_record(self.network, self.config.chain_id, block, receipts)
                if self.window and (
                    self.window[-1][0] != record["number"] - 1
                    or self.window[-1][1] != record["parentHash"]
                ):
                    self.producer.flush()
                    return self._retract(record)
                self._emit(record)
                following = record["number"] + 1
                self.next_block = following
            self.producer.flush()  # the blocks are durable before the checkpoint moves
            self._save_checkpoint(*self.window[-1])
            self.lag = max(0, target - following + 1)
        return following

    def run(self) -> None:
        """Poll until stopped; RPC errors are logged and retried, and no block is skipped."""
        try:
            self._check_chain()
            saved = self.checkpoint()
            if saved is not None:
                self.window.append(saved)
                following = saved[0] + 1
            elif self.config.start_block == "latest":
                following = max(0, self.confirmed_head())
            else:
                following = self.config.start_block
            log.info(
                "network %s: ingesting from block %d (%s)",
                self.network,
                following,
                "checkpoint" if saved is not None else "start_block",
            )
            self._poll(following)
        finally:
            self.rpc.close()

    def report(self) -> str:
        """One line of progress and per-endpoint RPC metrics, logged every STATUS_EVERY s."""
        endpoints = "; ".join(
            f"{m['url']} {'up' if m['healthy'] else 'resting'} {m['requests']} req "
            f"{m['errors']} err {m['mean_latency_ms']} ms"
            for m in self.rpc.metrics()
        )
        return (
            f"network {self.network}: head {self.head}, next {self.next_block}, lag "
            f"{self.lag}, emitted {self.emitted}, retracted {self.retracted}; rpc: {endpoints}"
        )

    def _poll(self, following: int) -> None:
        delay = self.config.poll_interval
        self.next_block = following
        reported = time.monotonic()
        while not self.stopping.is_set():
            if time.monotonic() - reported >= STATUS_EVERY:
                log.info("%s", self.report())
                reported = time.monotonic()
            try:
                before = self.next_block
                self.next_block = self.step(self.next_block)
                self.producer.flush()
                delay = self.config.poll_interval
                if self.next_block > before and self.lag:
                    log.info("network %s: catching up, %d blocks behind", self.network, self.lag)
                    continue  # no pause between catch-up slices
            except RpcError as exc:
                # resume exactly where the error struck: blocks before it were emitted
                delay = min(self.max_backoff, delay * 2)
                log.error(
                    "network %s, block %d: %s; retrying in %.1f s",
                    self.network,
                    self.next_block,
                    exc,
                    delay,
                )
            self.stopping.wait(delay)
