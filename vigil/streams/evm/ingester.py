"""The block ingester: every block once, in order, at the confirmation level; reorgs retracted."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from vigil import metrics
from vigil.clock import SYSTEM, Clock
from vigil.config.models import NetworkConfig
from vigil.errors import ReorgTooDeep, RpcError, RpcReplyError, RpcUnavailable
from vigil.schemas import tx_index
from vigil.schemas.codec import Codec
from vigil.schemas.evm import Traces, block_record, debug_traces, parity_traces
from vigil.schemas.records import Block
from vigil.settings import Settings
from vigil.streams.evm.rpc import Call, RpcPool
from vigil.streams.kafka import BatchProducer, read_compacted

log = logging.getLogger(__name__)
STATUS_EVERY = 60.0  # seconds between progress lines in the ingester's log
BLOCK_RECEIPTS_UNSUPPORTED = (-32601, -32600, -32602)  # method not found / invalid request
TRACE_UNSUPPORTED = (-32601, -32600, -32602)  # the node has no such tracing method
REPAIR_POLL = 5.0  # seconds between looks at the checkpoint while a network waits for repair
MAX_KEPT_TRACES = 4096  # blocks' traces held between their fetch and their emit


@dataclass(frozen=True)
class Saved:
    """A checkpoint: the last block fully emitted, and the window of blocks emitted up to it."""

    number: int
    hash: str
    at: datetime
    window: tuple[tuple[int, str], ...]


Fetched = list[tuple[dict[str, Any], list[dict[str, Any]]]]  # blocks with their receipts


def fetch_blocks(rpc: RpcPool, numbers: list[int], *, block_receipts: bool = True) -> Fetched:
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
    available: Fetched = []
    for number, (block, receipts) in zip(numbers, pairs, strict=True):
        if block is None or receipts is None:
            if not available:
                raise RpcError(f"{rpc.shown}: block {number} is not available on the node yet")
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
        producer: BatchProducer,
        codec: Codec,
        bootstrap: str,
        rpc: RpcPool | None = None,
        clock: Clock = SYSTEM,
    ) -> None:
        self.settings, self.network, self.config, self.clock = settings, network, config, clock
        self.producer, self.codec, self.bootstrap = producer, codec, bootstrap
        self.rpc = rpc or RpcPool.for_network(network, config, settings)
        self.stopping = threading.Event()
        self.blocks_topic = settings.topic("chain.blocks")
        self.tx_topic = settings.topic("chain.transactions")
        self.reorg_topic = settings.topic("chain.reorgs")
        self.checkpoint_topic = settings.topic("chain.checkpoints")
        self.heads_topic = settings.topic("chain.heads")
        self._head_partitions: list[int] = []
        self.window: deque[tuple[int, str]] = deque(maxlen=config.reorg_window)
        self.block_receipts = True
        self.emitted = 0
        self.retracted = 0
        self.head = 0
        self.lag = 0
        self.next_block = 0
        self.halted = False  # a reorg deeper than the window stopped this network
        # errors back off from the poll interval up to this (a slow chain waits longer)
        self.max_backoff = min(30.0, max(5.0, 10 * config.poll_interval))
        # the next batch is fetched while this one is encoded and sent
        self._fetcher = ThreadPoolExecutor(1, thread_name_prefix=f"fetch-{network}")
        self._ahead: tuple[list[int], Future[Fetched]] | None = None
        self._traces: dict[str, Traces] = {}  # block hash → its internal calls (traces: true)
        self._traces_lock = threading.Lock()  # written by the fetch thread, read by run's
        self.trace_method = "debug_traceBlockByNumber"  # trace_block once the node lacks it

    def checkpoint(self) -> Saved | None:
        """The last block fully emitted for this network, with the window before it."""
        raw = read_compacted(self.settings, self.bootstrap, self.checkpoint_topic).get(
            self.network.encode()
        )
        if raw is None:
            return None
        record = self.codec.decode(raw, "Checkpoint", where=self.checkpoint_topic)
        tip = (int(record["number"]), str(record["hash"]))
        window = tuple((int(b["number"]), str(b["hash"])) for b in record["window"])
        if not window or window[-1] != tip:  # written before the window was kept
            window = (*window, tip)
        return Saved(tip[0], tip[1], record["at"], window)

    def _check_chain(self) -> None:
        chain_id = int(self.rpc.call("eth_chainId"), 16)
        if chain_id != self.config.chain_id:
            raise RpcError(
                f"{self.rpc.shown} eth_chainId: the node is on chain {chain_id}, but "
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
        metrics.INGEST_HEAD.labels(self.network).set(self.head)
        return self.head - level

    def _save_checkpoint(self, number: int, block_hash: str) -> None:
        """Save the tip and the window up to it, so a restart finds a fork the same way."""
        window = [{"number": n, "hash": h} for n, h in self.window if n <= number]
        record = {
            "network": self.network,
            "number": number,
            "hash": block_hash,
            "at": self.clock.ms(),
            "window": window,
        }
        self.producer.send(
            self.checkpoint_topic,
            key=self.network.encode(),
            value=self.codec.encode(self.checkpoint_topic, "Checkpoint", record),
        )

    def _emit(self, record: Block) -> None:
        value, index, bodies = tx_index.write_block(self.codec, self.blocks_topic, record)
        for tx, body in zip(record["transactions"], bodies, strict=True):
            self.producer.send(
                self.tx_topic,
                key=f"{self.network}:{tx['hash']}".encode(),
                value=self.codec.frame(self.tx_topic, "Transaction", body),
            )
        self.producer.send(
            self.blocks_topic,
            key=self.block_key(record["number"]),
            value=value,
            # which transactions involve which addresses: the worker decodes only those
            # its monitors watch
            headers=[(tx_index.HEADER, index)],
        )
        self._send_head(record["number"], record["hash"])
        if not self.window and record["number"] > 0:
            # the first block's parent anchors the window: a reorg of the very first
            # emitted block then finds its fork at the parent instead of "too deep"
            self.window.append((record["number"] - 1, record["parentHash"]))
        self.window.append((record["number"], record["hash"]))
        self.emitted += 1
        metrics.RECORDS.labels(self.tx_topic).inc(len(record["transactions"]))
        metrics.RECORDS.labels(self.blocks_topic).inc()
        metrics.INGEST_EMITTED.labels(self.network).set(record["number"])
        metrics.INGEST_LAG.labels(self.network).set(max(0, self.head - record["number"]))

    def block_key(self, number: int) -> bytes:
        """The key of a block and of its retraction (both land on the same partition): the
        network, so its blocks stay in order on one partition; with ``spread``, the network
        and the number, so a busy chain spreads over every partition and every worker."""
        return f"{self.network}:{number}".encode() if self.config.spread else self.network.encode()

    def _send_head(self, number: int, block_hash: str) -> None:
        """Tell every partition's worker how high the network is: each releases the match
        batches it holds for confirmations, whichever partition their block was on."""
        if not self._head_partitions:
            self._head_partitions = sorted(self.producer.partitions_for(self.heads_topic))
        head = {"network": self.network, "number": number, "hash": block_hash}
        value = self.codec.encode(
            self.heads_topic, "Checkpoint", {**head, "at": self.clock.ms(), "window": []}
        )
        for partition in self._head_partitions:
            self.producer.send(
                self.heads_topic, key=self.network.encode(), value=value, partition=partition
            )

    def _canonical_hash(self, number: int) -> str | None:
        block = self.rpc.call("eth_getBlockByNumber", hex(number), False)
        return block["hash"].lower() if block else None

    def _send_retractions(
        self, orphaned: Iterable[tuple[int, str, str | None]], fork: tuple[int, str]
    ) -> int:
        """A Retraction per orphaned (number, hash, canonical hash), back to ``fork``."""
        now, count = self.clock.ms(), 0
        for number, block_hash, canonical in orphaned:
            retraction = {
                "network": self.network,
                "number": number,
                "hash": block_hash,
                "canonicalHash": canonical,
                "forkNumber": fork[0],
                "forkHash": fork[1],
                "at": now,
            }
            self.producer.send(
                self.reorg_topic,
                key=self.block_key(number),  # the orphaned block's own partition
                value=self.codec.encode(self.reorg_topic, "Retraction", retraction),
            )
            count += 1
        self.retracted += count
        return count

    def _retract(self, new_block: Block) -> int:
        """Walk the window back against the node to the fork, retract every emitted block
        above it, move the checkpoint to the fork; returns the next block to emit.

        The fork is never guessed: when the node disagrees with every remembered block,
        nothing is emitted and ReorgTooDeep stops the network until it is repaired.
        """
        orphaned: list[tuple[int, str, str | None]] = []
        for number, block_hash in reversed(self.window):
            canonical = self._canonical_hash(number)
            if canonical == block_hash:
                break
            orphaned.append((number, block_hash, canonical))
        else:
            oldest = self.window[0][0] if self.window else new_block["number"]
            raise ReorgTooDeep(
                f"network {self.network!r}: at block {new_block['number']} the node's chain "
                f"differs from all {len(self.window)} remembered blocks ({oldest}.."
                f"{self.window[-1][0] if self.window else oldest}); vigil emits nothing more "
                f"for this network until it is repaired: run `vigil backfill --network "
                f"{self.network} --reorg FROM` with FROM the first block that differs "
                f"(at most {oldest}); see the README, 'Reorgs deeper than the window'"
            )
        for _ in orphaned:
            self.window.pop()
        fork = self.window[-1]
        self._send_retractions(orphaned, fork)
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

    def repair(self, first: int, emitted: Iterable[tuple[int, str]] = ()) -> int:
        """Repair a reorg deeper than the window: retract every block vigil emitted from
        ``first`` on that the node no longer has, and move the checkpoint to ``first - 1``
        with a window of the node's own blocks, so ingestion resumes at ``first``.

        ``emitted`` adds (number, hash) pairs vigil emitted (from history) to those in the
        checkpoint's window. Returns the number of blocks retracted.
        """
        self._check_chain()
        saved = self.checkpoint()
        if saved is None:
            raise RpcError(f"network {self.network!r}: nothing was ingested yet; no repair needed")
        if not 1 <= first <= saved.number + 1:
            raise RpcError(
                f"--reorg {first}: expected a block from 1 to {saved.number + 1} "
                f"(the checkpoint is block {saved.number})"
            )
        # every (number, hash) vigil emitted: history and the window may each know a
        # block the other lacks, or two blocks at one height after an earlier reorg
        known = {*saved.window, *emitted}
        low = max(0, first - self.config.reorg_window)
        numbers = sorted({*range(low, first), *(n for n, _ in known if n >= first)})
        size = self.config.batch_size
        blocks = [
            block
            for start in range(0, len(numbers), size)
            for block in self.rpc.batch(
                [("eth_getBlockByNumber", [hex(n), False]) for n in numbers[start : start + size]]
            )
        ]
        hashes = {
            n: (block["hash"].lower() if block else None)
            for n, block in zip(numbers, blocks, strict=True)
        }
        fork = (first - 1, hashes[first - 1])
        if fork[1] is None:
            raise RpcError(f"--reorg {first}: the node has no block {first - 1}")
        if any(n == fork[0] and h != fork[1] for n, h in known):
            raise RpcError(
                f"--reorg {first}: block {fork[0]} that vigil emitted is not the node's either; "
                f"give a lower block"
            )
        orphaned = [(n, h, hashes[n]) for n, h in sorted(known) if n >= first and hashes[n] != h]
        count = self._send_retractions(orphaned, (fork[0], str(fork[1])))
        self.window.clear()
        self.window.extend((n, str(hashes[n])) for n in range(low, first) if hashes[n])
        self._save_checkpoint(fork[0], str(fork[1]))
        self.producer.flush()
        log.warning(
            "network %s: repaired: %d block(s) retracted; ingestion resumes at block %d",
            self.network,
            count,
            first,
        )
        return count

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
                self._emit(self._record(block, receipts))
                number += 1
                if progress is not None:
                    progress(1)
            self.producer.flush()
        return number - first

    def _fetch_ahead(self, numbers: list[int]) -> Fetched:
        """``numbers``' blocks, fetched earlier if they were asked for ahead; a fetch's error
        is raised here, where the blocks before it have been emitted."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            if ahead[0] == numbers:
                return ahead[1].result()
            self._drop(ahead[1])
        return self._fetch(numbers)

    def _ask_ahead(self, numbers: list[int]) -> None:
        if numbers and not self.stopping.is_set():
            self._ahead = (numbers, self._fetcher.submit(self._fetch, numbers))

    def _cancel_ahead(self) -> None:
        """Forget the batch asked for ahead (a reorg, the slice's end): the pool is then
        used by one thread at a time again."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            self._drop(ahead[1])

    @staticmethod
    def _drop(pending: Future[Fetched]) -> None:
        if not pending.cancel():
            pending.exception()  # waits; an error of a batch nobody needs is not raised

    def _record(self, block: dict[str, Any], receipts: list[dict[str, Any]]) -> Block:
        with self._traces_lock:
            traces = self._traces.pop(block["hash"], None)
        return block_record(self.network, self.config.chain_id, block, receipts, traces=traces)

    def _trace(self, blocks: list[dict[str, Any]]) -> None:
        """Each block's internal calls, by the callTracer or else ``trace_block``."""
        numbers = [block["number"] for block in blocks]
        if self.trace_method == "debug_traceBlockByNumber":
            calls: list[Call] = [
                ("debug_traceBlockByNumber", [n, {"tracer": "callTracer"}]) for n in numbers
            ]
            try:
                results = self.rpc.batch(calls)
            except RpcReplyError as exc:
                if exc.code not in TRACE_UNSUPPORTED:
                    raise
                log.info("network %s: %s; tracing with trace_block from now on", self.network, exc)
                self.trace_method = "trace_block"
            else:
                pairs = zip(blocks, results, strict=True)
                found = {b["hash"]: debug_traces(b, r or []) for b, r in pairs}
        if self.trace_method == "trace_block":
            results = self.rpc.batch([("trace_block", [n]) for n in numbers])
            pairs = zip(blocks, results, strict=True)
            found = {b["hash"]: parity_traces(r or []) for b, r in pairs}
        with self._traces_lock:
            self._traces.update(found)
            # blocks fetched and never emitted (a reorg, a batch fetched ahead and dropped)
            # leave theirs: the oldest go, never those of the two batches in flight
            while len(self._traces) > MAX_KEPT_TRACES:
                del self._traces[next(iter(self._traces))]

    def _fetch(self, numbers: list[int]) -> Fetched:
        fetched = self._fetch_untraced(numbers)
        if self.config.traces and fetched:
            self._trace([block for block, _ in fetched])
        return fetched

    def _fetch_untraced(self, numbers: list[int]) -> Fetched:
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
        batch = self.config.batch_size
        try:
            while following <= end and not self.stopping.is_set():
                self.next_block = following
                numbers = list(range(following, min(end, following + batch - 1) + 1))
                fetched = self._fetch_ahead(numbers)
                if len(fetched) == len(numbers):  # a short batch reached the node's head
                    after = numbers[-1] + 1
                    self._ask_ahead(list(range(after, min(end, after + batch - 1) + 1)))
                for block, receipts in fetched:
                    record = self._record(block, receipts)
                    if self.window and (
                        self.window[-1][0] != record["number"] - 1
                        or self.window[-1][1] != record["parentHash"]
                    ):
                        self.producer.flush()
                        self._cancel_ahead()
                        return self._retract(record)
                    self._emit(record)
                    following = record["number"] + 1
                    self.next_block = following
                self.producer.flush()  # the blocks are durable before the checkpoint moves
                self._save_checkpoint(*self.window[-1])
                self.lag = max(0, target - following + 1)
            return following
        finally:
            self._cancel_ahead()

    def _resume(self, saved: Saved) -> int:
        self.window.clear()
        self.window.extend(saved.window)
        return saved.number + 1

    def run(self) -> None:
        """Poll until stopped; RPC errors are logged and retried, and no block is skipped."""
        try:
            following = self._start()
            if following is not None:
                self._poll(following)
        finally:
            self._fetcher.shutdown(cancel_futures=True)
            self.rpc.close()

    def _start(self) -> int | None:
        """The first block to emit, once the node answers; None if stopped before that.

        A node that is unreachable at start is waited for with backoff, like any RPC error;
        one on another chain is an error.
        """
        delay = self.config.poll_interval
        while not self.stopping.is_set():
            try:
                self._check_chain()
                saved = self.checkpoint()
                if saved is not None:
                    following = self._resume(saved)
                elif self.config.start_block == "latest":
                    following = max(0, self.confirmed_head())
                else:
                    following = self.config.start_block
            except RpcUnavailable as exc:
                delay = min(self.max_backoff, delay * 2)
                log.error("network %s: %s; retrying in %.1f s", self.network, exc, delay)
                self.stopping.wait(delay)
                continue
            log.info(
                "network %s: ingesting from block %d (%s)",
                self.network,
                following,
                "checkpoint" if saved is not None else "start_block",
            )
            return following
        return None

    def _await_repair(self) -> int:
        """Wait until a repair writes a new checkpoint; returns the block to go on from."""
        halted = self.checkpoint()
        self.halted = True
        while not self.stopping.wait(REPAIR_POLL):
            try:
                saved = self.checkpoint()
            except Exception as exc:  # the broker may be briefly away; keep waiting
                log.warning("network %s: reading the checkpoint: %s", self.network, exc)
                continue
            if saved is not None and saved != halted:
                self.halted = False
                log.info(
                    "network %s: repaired; resuming at block %d", self.network, saved.number + 1
                )
                return self._resume(saved)
        return self.next_block

    def report(self) -> str:
        """One line of progress and per-endpoint RPC metrics, logged every STATUS_EVERY s."""
        endpoints = "; ".join(
            f"{m['url']} {'up' if m['healthy'] else 'resting'} {m['requests']} req "
            f"{m['errors']} err {m['mean_latency_ms']} ms"
            for m in self.rpc.metrics()
        )
        return (
            f"network {self.network}: head {self.head}, next {self.next_block}, lag "
            f"{self.lag}, emitted {self.emitted}, retracted {self.retracted}"
            f"{', HALTED: waiting for a reorg repair' if self.halted else ''}; rpc: {endpoints}"
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
            except ReorgTooDeep as exc:
                log.error("%s", exc)
                self.next_block = self._await_repair()
                continue
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
