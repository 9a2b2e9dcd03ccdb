"""Replays: a range of blocks run again through monitors, in this process, from one of three
sources, with the worker's own matcher.

- ``history``: ClickHouse's blocks, transactions and logs, of any age (the canonical ones);
- ``kafka``: chain.blocks, from the offsets vigil's history indexes for each block (brokers
  may not index by time, and a topic holds every network and orphaned blocks too);
- ``rpc``: fetched from the network's nodes, for ranges vigil never saw.

What a replay found goes to the ``replays`` topic (and so the ``replays`` table) under its
replay id; with ``notify`` the matches also take the live path, where the worker's keys of
what each channel was told already keep anything from being sent twice.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kafka import TopicPartition

from vigil.config.loader import LoadedMonitor, Project
from vigil.connectors.history import blocks as history_blocks
from vigil.connectors.history.queries import ID
from vigil.errors import ConfigError, SerializationError, VigilError
from vigil.processors.matching import Matcher, batches, compile_monitor
from vigil.processors.replay import REPLAYED
from vigil.schemas.codec import Codec
from vigil.schemas.records import Block, Match
from vigil.settings import Settings
from vigil.streams.kafka import consumer, producer

SOURCES = ("history", "kafka", "rpc")
Ask = Callable[[str], list[list[Any]]]


class ReplayError(VigilError):
    """A replay that cannot run as asked (no such blocks in its source, no index...)."""


def new_replay_id(now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S")
    return f"replay-{stamp}-{uuid.uuid4().hex[:6]}"


@dataclass
class Replayed:
    """What one replay found, and how fast."""

    replay_id: str
    source: str
    network: str
    first: int
    last: int
    matches: list[Match] = field(default_factory=list)
    blocks: int = 0
    transactions: int = 0
    seconds: float = 0.0

    @property
    def blocks_per_s(self) -> float:
        return self.blocks / self.seconds if self.seconds else 0.0

    @property
    def tx_per_s(self) -> float:
        return self.transactions / self.seconds if self.seconds else 0.0


def pick_monitors(project: Project, ids: list[str]) -> list[LoadedMonitor]:
    """The project's monitors named by ``ids`` (all chain monitors of one network)."""
    by_id = {m.id: m for m in project.monitors}
    unknown = [i for i in ids if i not in by_id]
    if unknown:
        raise ConfigError(
            f"--monitor: no monitor {unknown[0]!r} in {project.root}; it has: "
            f"{', '.join(sorted(by_id)) or 'none'}"
        )
    picked = [by_id[i] for i in ids]
    forta = [m.id for m in picked if m.is_forta]
    if forta:
        raise ConfigError(
            f"--monitor: {forta[0]} watches Forta alerts; replays run blocks through chain "
            "monitors (`vigil monitors test --alerts` tests a Forta monitor)"
        )
    networks = {m.config.network or "" for m in picked}
    if len(networks) > 1:
        raise ConfigError(
            f"--monitor: the monitors watch {', '.join(sorted(networks))}; a replay runs one "
            "network's blocks: replay each network on its own"
        )
    return picked


def time_range(ask: Ask, network: str, since: datetime, until: datetime) -> tuple[int, int]:
    """The blocks of ``network`` history holds between two times."""
    _check_name(network)
    [[count, low, high]] = ask(
        "SELECT count(), min(number), max(number) FROM blocks FINAL WHERE network = "
        f"'{network}' AND retracted = 0 AND timestamp BETWEEN {int(since.timestamp())} "
        f"AND {int(until.timestamp())}"
    )
    if not int(count):
        raise ReplayError(
            f"history holds no block of {network} between {since.isoformat()} and "
            f"{until.isoformat()}: give --blocks A..B (with --source rpc for blocks vigil "
            "never saw)"
        )
    return int(low), int(high)


def _check_name(network: str) -> None:
    if not ID.match(network):
        raise ConfigError(f"expected a network name such as mainnet, got {network!r}")


class Replay:
    """One replay: monitors, a network's block range, a source."""

    def __init__(
        self,
        settings: Settings,
        project: Project,
        monitors: list[LoadedMonitor],
        first: int,
        last: int,
        source: str,
        *,
        ask: Ask | None = None,
        bootstrap: str | None = None,
        codec: Codec | None = None,
    ) -> None:
        if source not in SOURCES:
            raise ConfigError(f"--source: expected one of {', '.join(SOURCES)}, got {source!r}")
        if first > last:
            raise ConfigError(f"--blocks: expected A..B with A <= B, got {first}..{last}")
        self.settings, self.project, self.monitors = settings, project, monitors
        self.network: str = monitors[0].config.network or ""
        _check_name(self.network)
        networks = project.config.networks
        if self.network not in networks:
            raise ConfigError(
                f"monitor {monitors[0].id} watches {self.network!r}, which vigil.yaml does not "
                f"define; it defines: {', '.join(sorted(networks)) or 'none'}"
            )
        self.chain_id = networks[self.network].chain_id
        self.first, self.last, self.source = first, last, source
        self.ask, self.bootstrap, self.codec = ask, bootstrap, codec
        compiled = [_unpaused(compile_monitor(m, self.chain_id)) for m in monitors]  # paused too
        self.matcher = Matcher(compiled)
        self.addresses = {a for m in compiled for a in m.addresses}
        self.held: history_blocks.Span | None = None

    def total(self) -> tuple[int, int]:
        """Blocks and transactions the source is expected to give (for the progress bar)."""
        if self.source == "rpc" or self.ask is None:
            return self.last - self.first + 1, 0
        if self.held is None:
            self.held = history_blocks.span(self.ask, self.network, self.first, self.last)
        held = self.held
        if not held.count:
            raise ReplayError(
                f"history holds no block of {self.network} in {self.first}..{self.last}: "
                "replay it from the nodes with --source rpc"
            )
        return held.count, held.transactions

    def blocks(self) -> Iterator[Block]:
        if self.source == "history":
            assert self.ask is not None
            # only the transactions that touch the monitors' addresses: no other can match
            yield from history_blocks.read_blocks(
                self.ask,
                self.network,
                self.chain_id,
                self.first,
                self.last,
                addresses=self.addresses,
            )
        elif self.source == "kafka":
            yield from self._from_kafka()
        else:
            yield from self._from_rpc()

    def run(self, replay_id: str, on_block: Callable[[Block], None] | None = None) -> Replayed:
        """Match every block of the range; matches in block and transaction order."""
        found = Replayed(replay_id, self.source, self.network, self.first, self.last)
        started = time.perf_counter()
        for block in self.blocks():
            found.matches.extend(self.matcher.match_block(block))
            found.blocks += 1
            found.transactions += len(block["transactions"])
            if on_block is not None:
                on_block(block)
        if self.source == "history":  # its blocks carry only the transactions that could match
            found.transactions = self.total()[1]
        found.seconds = time.perf_counter() - started
        found.matches.sort(key=lambda m: m["blockNumber"])  # stable: transaction order stays
        return found

    def _from_kafka(self) -> Iterator[Block]:
        assert self.ask is not None and self.bootstrap is not None and self.codec is not None
        index = history_blocks.offsets(self.ask, self.network, self.first, self.last)
        if not index:
            raise ReplayError(
                f"history indexes no block of {self.network} in {self.first}..{self.last} on "
                "chain.blocks (stored before the index, or gone from history): use --source "
                "history or rpc"
            )
        canonical = history_blocks.canonical_hashes(self.ask, self.network, self.first, self.last)
        topic = self.settings.topic("chain.blocks")
        reader = consumer(self.settings, self.bootstrap, isolation_level="read_committed")
        try:
            tps = {TopicPartition(topic, p): span for p, span in index.items()}
            reader.assign(list(tps))
            for tp, (low, _) in tps.items():
                reader.seek(tp, low)
            done: set[int] = set()
            while any(reader.position(tp) <= high for tp, (_, high) in tps.items()):
                for tp, records in reader.poll(timeout_ms=1000).items():
                    for record in records:
                        if record.offset > tps[tp][1]:
                            continue
                        where = f"{tp.topic}[{tp.partition}]@{record.offset}"
                        try:
                            block: Block = self.codec.decode(record.value, "Block", where=where)
                        except SerializationError:
                            continue  # the DLQ has it; history never indexed it as a block
                        number = block["number"]
                        if (
                            block["network"] == self.network
                            and canonical.get(number) == block["hash"]
                            and number not in done
                        ):
                            done.add(number)
                            yield block
        finally:
            reader.close()

    def _from_rpc(self) -> Iterator[Block]:
        config = self.project.config.networks[self.network]
        yield from node_blocks(self.settings, self.network, config, self.first, self.last)


def node_blocks(
    settings: Settings, network: str, config: Any, first: int, last: int, page: int = 10
) -> Iterator[Block]:
    """Blocks ``first``..``last`` of ``network`` fetched from its nodes, with receipts."""
    from vigil.schemas.evm import block_record
    from vigil.streams.evm.ingester import fetch_blocks
    from vigil.streams.evm.rpc import RpcPool

    pool = RpcPool.for_network(network, config, settings)
    try:
        for low in range(first, last + 1, page):
            numbers = list(range(low, min(last, low + page - 1) + 1))
            pairs = fetch_blocks(pool, numbers)
            if len(pairs) < len(numbers):
                raise ReplayError(
                    f"the nodes of {network} do not have block {numbers[len(pairs)]} yet: "
                    "ask up to the chain's head"
                )
            for block, receipts in pairs:
                yield block_record(network, config.chain_id, block, receipts, require_receipts=True)
    finally:
        pool.close()


def _unpaused(compiled: Any) -> Any:
    compiled.paused = False  # replaying a paused monitor's range is a reason to replay
    return compiled


def recorded_matches(
    ask: Ask, monitor_ids: Iterable[str], network: str, first: int, last: int
) -> dict[str, list[Any]]:
    """The live matches history recorded for the monitors over the range: id → row
    (monitor id, block number, transaction hash)."""
    _check_name(network)
    ids = list(monitor_ids)
    for monitor_id in ids:
        _check_name(monitor_id)
    quoted = ", ".join(f"'{m}'" for m in ids)
    rows = ask(
        "SELECT id, monitor_id, block_number, transaction_hash FROM matches FINAL WHERE "
        f"monitor_id IN ({quoted}) AND network = '{network}' AND block_number BETWEEN "
        f"{int(first)} AND {int(last)} AND retracted = 0 ORDER BY block_number, id"
    )
    return {str(r[0]): [str(r[1]), int(r[2]), str(r[3])] for r in rows}


def diff(found: list[Match], recorded: dict[str, list[Any]]) -> tuple[list[Match], list[Any]]:
    """The matches the replay adds to what history recorded, and the recorded ones it no
    longer finds (id, monitor, block, transaction)."""
    ids = {m["id"] for m in found}
    added = [m for m in found if m["id"] not in recorded]
    removed = [[i, *row] for i, row in recorded.items() if i not in ids]
    return added, removed


def publish(
    settings: Settings,
    bootstrap: str,
    codec: Codec,
    replayed: Replayed,
    *,
    notify: bool = False,
) -> int:
    """The replay's matches onto the ``replays`` topic (and, with ``notify``, onto the live
    path: monitor.matches and monitor.match-batches, batches under ``…:replay`` ids);
    returns the records written."""
    out = producer(settings, bootstrap)
    at = int(time.time() * 1000)
    topic = settings.topic("replays")
    written = 0
    try:
        for match in replayed.matches:
            record = {"replayId": replayed.replay_id, "source": replayed.source, "at": at}
            value = codec.encode(topic, "ReplayMatch", {**record, "match": match})
            out.send(topic, key=replayed.replay_id.encode(), value=value)
            written += 1
        if notify:
            matches_topic = settings.topic("monitor.matches")
            batches_topic = settings.topic("monitor.match-batches")
            for match in replayed.matches:
                key = match["monitor"]["id"].encode()
                out.send(matches_topic, key=key, value=codec.encode(matches_topic, "Match", match))
            by_block: dict[str, list[Match]] = {}
            for match in replayed.matches:
                by_block.setdefault(match["blockHash"], []).append(match)
            for group in by_block.values():
                for batch in batches(group):
                    batch["id"] += REPLAYED  # its own request ids; matches keep theirs
                    value = codec.encode(batches_topic, "MatchBatch", batch)
                    out.send(batches_topic, key=batch["monitorId"].encode(), value=value)
                    written += 1
        out.flush()
    finally:
        out.close()
    return written
