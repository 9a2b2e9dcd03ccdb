"""The history sink: consumes the chain, match and delivery topics into ClickHouse, batched.

History is right whatever order the topics arrive in. A Retraction writes a newer version
of the rows of its block already stored, with ``retracted = 1`` (an insert, which
ReplacingMergeTree keeps over the older one: no mutation), and its block's hash is kept, in
memory and in the ``reorgs`` table, so rows of that block stored later (a lagging worker's
match, a block record behind its retraction) are inserted already marked.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from kafka import KafkaConsumer
from kafka.errors import CommitFailedError, KafkaError, RebalanceInProgressError

from vigil import metrics
from vigil.connectors.history import rows
from vigil.errors import HistoryError, SerializationError
from vigil.schemas.catalogue import MAX_MESSAGE_BYTES
from vigil.schemas.codec import Codec
from vigil.settings import Settings

log = logging.getLogger(__name__)

# tables whose rows of an orphaned block are marked retracted, and the column naming the block
RETRACTABLE = (
    ("blocks", "hash"),
    ("transactions", "block_hash"),
    ("logs", "block_hash"),
    ("withdrawals", "block_hash"),
    ("matches", "block_hash"),
)
# a block row also says where its record is on chain.blocks (the replays' index)
BLOCK_COLUMNS = [*rows.BLOCK_COLUMNS, "kafka_partition", "kafka_offset"]
COLUMNS = {
    "blocks": BLOCK_COLUMNS,
    "transactions": rows.TX_COLUMNS,
    "logs": rows.LOG_COLUMNS,
    "withdrawals": rows.WITHDRAWAL_COLUMNS,
    "matches": rows.MATCH_COLUMNS,
}


class Batch:
    """The rows of one poll, per table, and the retractions that come after them."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[list[str], list[list[Any]]]] = {
            "blocks": (BLOCK_COLUMNS, []),
            "transactions": (rows.TX_COLUMNS, []),
            "logs": (rows.LOG_COLUMNS, []),
            "withdrawals": (rows.WITHDRAWAL_COLUMNS, []),
            "matches": (rows.MATCH_COLUMNS, []),
            "deliveries": (rows.DELIVERY_COLUMNS, []),
            "config_changes": (rows.CONFIG_COLUMNS, []),
            "suppressed": (rows.SUPPRESSED_COLUMNS, []),
            "dead_letters": (rows.DEAD_LETTER_COLUMNS, []),
            "forta_alerts": (rows.FORTA_COLUMNS, []),
            "forta_bot_metrics": (rows.METRIC_COLUMNS, []),
            "reorgs": (rows.REORG_COLUMNS, []),
            "task_runs": (rows.TASK_RUN_COLUMNS, []),
            "relayer_transactions": (rows.RELAYER_TX_COLUMNS, []),
            "replays": (rows.REPLAY_COLUMNS, []),
        }
        self.retractions: list[dict[str, Any]] = []
        self.records = 0

    def add(self, kind: str, value: Any, at: tuple[int, int] = (-1, -1)) -> None:
        """Add one decoded record of schema ``kind`` (at partition and offset ``at``) to its
        table's rows."""
        if kind == "Block":
            self.rows["blocks"][1].append([*rows.block_row(value), *at])
            self.rows["withdrawals"][1].extend(rows.withdrawal_rows(value))
        elif kind == "Transaction":
            tx_row, log_rows = rows.transaction_rows(value)
            self.rows["transactions"][1].append(tx_row)
            self.rows["logs"][1].extend(log_rows)
        elif kind == "Match":
            self.rows["matches"][1].append(rows.match_row(value))
        elif kind == "Delivery":
            self.rows["deliveries"][1].append(rows.delivery_row(value))
        elif kind == "ConfigChange":
            self.rows["config_changes"][1].append(rows.config_row(value))
        elif kind == "Suppressed":
            self.rows["suppressed"][1].append(rows.suppressed_row(value))
        elif kind == "DeadLetter":
            self.rows["dead_letters"][1].append(rows.dead_letter_row(value))
        elif kind == "FortaAlert":
            self.rows["forta_alerts"][1].append(rows.forta_row(value))
        elif kind == "TaskRun":
            self.rows["task_runs"][1].append(rows.task_run_row(value))
        elif kind == "RelayerTransaction":
            self.rows["relayer_transactions"][1].append(rows.relayer_tx_row(value))
        elif kind == "ReplayMatch":
            self.rows["replays"][1].append(rows.replay_row(value))
        elif kind == "FortaBotMetric":
            self.rows["forta_bot_metrics"][1].append(rows.metric_row(value))
        else:
            self.rows["reorgs"][1].append(rows.reorg_row(value))
            self.retractions.append(value)


class HistorySink:
    """One consumer group; offsets are committed only after the rows are in ClickHouse."""

    def __init__(
        self, settings: Settings, bootstrap: str, client: Any, codec: Codec, lock: threading.Lock
    ) -> None:
        self.client, self.codec, self.lock = client, codec, lock
        self.kinds = {
            settings.topic("chain.blocks"): "Block",
            settings.topic("chain.transactions"): "Transaction",
            settings.topic("chain.reorgs"): "Retraction",
            settings.topic("monitor.matches"): "Match",
            settings.topic("notify.deliveries"): "Delivery",
            settings.topic("config.monitors"): "ConfigChange",
            settings.topic("config.channels"): "ConfigChange",
            settings.topic("config.tasks"): "ConfigChange",
            settings.topic("tasks.runs"): "TaskRun",
            settings.topic("monitor.suppressed"): "Suppressed",
            settings.topic("dlq"): "DeadLetter",
            settings.topic("forta.alerts"): "FortaAlert",
            settings.topic("forta.metrics"): "FortaBotMetric",
            settings.topic("relayer.transactions"): "RelayerTransaction",
            settings.topic("replays"): "ReplayMatch",
        }
        # the connectors sit below streams.kafka: the security options come from the settings
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            **settings.kafka_options,
            group_id=settings.group("history"),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=5000,
            fetch_max_bytes=4 * MAX_MESSAGE_BYTES,
            max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
            isolation_level="read_committed",
            fetch_max_wait_ms=100,
            # a killed sink's partitions move to its successor within seconds, not 45 s
            session_timeout_ms=10_000,
            heartbeat_interval_ms=3_000,
        )
        for topic in self.kinds:  # metadata first, as streams.kafka.subscribe says why
            self.consumer.partitions_for_topic(topic)
        self.consumer.subscribe(list(self.kinds))
        self.batch_rows = settings.history_batch_rows
        self.batch_seconds = settings.history_batch_seconds
        self.stopping = threading.Event()
        self.inserted: dict[str, int] = {}
        self.failures = 0
        self.orphaned: set[tuple[str, str]] | None = None  # (network, block hash), loaded once

    def _orphaned(self) -> set[tuple[str, str]]:
        """Every block retracted so far, from the ``reorgs`` table at first use."""
        if self.orphaned is None:
            with self.lock:
                try:
                    found = self.client.query("SELECT network, hash FROM reorgs").result_rows
                except Exception as exc:  # clickhouse-connect and chdb raise several types
                    raise HistoryError(f"reading reorgs failed: {exc}") from exc
            self.orphaned = {(str(n), str(h)) for n, h in found}
        return self.orphaned

    def _marked(
        self, table: str, columns: list[str], data: list[list[Any]]
    ) -> tuple[list[str], list[list[Any]]]:
        """Rows of a retractable table with ``retracted`` set for blocks already orphaned."""
        column = dict(RETRACTABLE).get(table)
        if column is None:
            return columns, data
        orphaned = self._orphaned()
        network, block = columns.index("network"), columns.index(column)
        return [*columns, "retracted"], [
            [*row, int((row[network], row[block]) in orphaned)] for row in data
        ]

    def _batch(self, polled: dict[Any, list[Any]], batch: Batch) -> Batch:
        for tp, records in polled.items():
            batch.records += len(records)
            kind = self.kinds[tp.topic]
            for record in records:
                where = f"{tp.topic}[{tp.partition}]@{record.offset}"
                try:
                    value = self.codec.decode(record.value, kind, where=where)
                    batch.add(kind, value, (tp.partition, record.offset))
                except SerializationError as exc:
                    self.failures += 1
                    log.error("history: skipping %s", exc)
        return batch

    def _run(self, statement: str, what: str, **parameters: Any) -> None:
        with self.lock:
            try:
                self.client.command(statement, parameters=parameters or None)
            except Exception as exc:  # clickhouse-connect and chdb raise several types
                raise HistoryError(f"{what} failed: {exc}") from exc

    def _retract(self, retractions: list[dict[str, Any]]) -> None:
        """Insert a retracted version of the rows of orphaned blocks: they stay queryable,
        never deleted, and no row is rewritten in place (no mutation)."""
        by_network: dict[str, set[str]] = {}
        for retraction in retractions:
            by_network.setdefault(retraction["network"], set()).add(retraction["hash"])
        for network, hashes in by_network.items():
            for table, column in RETRACTABLE:
                names = ", ".join(f"`{c}`" for c in COLUMNS[table])
                self._run(
                    f"INSERT INTO {table} ({names}, retracted) SELECT {names}, 1 FROM {table} "
                    f"FINAL WHERE network = {{network:String}} AND {column} IN "
                    "{hashes:Array(String)} AND retracted = 0",
                    f"marking {table} retracted",
                    network=network,
                    hashes=sorted(hashes),
                )
        self.inserted["retracted_blocks"] = self.inserted.get("retracted_blocks", 0) + len(
            retractions
        )

    def step(self, timeout_ms: int = 500) -> int:
        """Poll until a batch is full (``batch_rows`` records) or ``batch_seconds`` have passed
        since its first record, insert it, commit; returns the rows inserted. ClickHouse
        wants few, large inserts: one per second at most, by default."""
        batch = Batch()
        deadline: float | None = None
        while True:
            wait = timeout_ms if deadline is None else max(0, deadline - time.monotonic()) * 1000
            polled = self.consumer.poll(timeout_ms=int(wait))
            metrics.HISTORY_LAG.set(self.lag())
            if polled:
                self._batch(polled, batch)
                if deadline is None:
                    deadline = time.monotonic() + self.batch_seconds
            if deadline is None or batch.records >= self.batch_rows:
                break
            if time.monotonic() >= deadline:
                break
        if not batch.records:
            return 0
        if batch.retractions:  # before the inserts: rows of an orphaned block go in marked
            self._orphaned().update((r["network"], r["hash"]) for r in batch.retractions)
        count = 0
        for table, (plain_columns, plain_data) in batch.rows.items():
            if not plain_data:
                continue
            columns, data = self._marked(table, plain_columns, plain_data)
            with self.lock:
                try:
                    self.client.insert(table, data, column_names=columns)
                except Exception as exc:  # clickhouse-connect and chdb raise several types
                    raise HistoryError(f"insert into {table} failed: {exc}") from exc
            self.inserted[table] = self.inserted.get(table, 0) + len(data)
            metrics.HISTORY_ROWS.labels(table).inc(len(data))
            count += len(data)
        if batch.retractions:  # rows stored by earlier polls
            self._retract(batch.retractions)
        try:
            self.consumer.commit()
        except (CommitFailedError, RebalanceInProgressError) as exc:
            # the group is rebalancing: the rows are read again and stored again, which
            # ReplacingMergeTree keeps once
            log.info("history: offset commit skipped (%s)", type(exc).__name__)
        return count

    def lag(self) -> int:
        """Records on the assigned partitions not yet read, as of the last fetch."""
        behind = 0
        for tp in self.consumer.assignment():
            end = self.consumer.highwater(tp)
            try:
                at = self.consumer.position(tp, timeout_ms=100)
            except KafkaError:
                at = None
            if end is not None and at is not None:
                behind += max(0, end - at)
        return behind

    def run(self) -> None:
        """Loop until stopped; a ClickHouse failure is retried without committing offsets."""
        while not self.stopping.is_set():
            try:
                self.step()
            except HistoryError as exc:
                log.error("history: %s; retrying from the last committed offsets", exc)
                for tp in self.consumer.assignment():
                    committed = self.consumer.committed(tp)
                    if committed is not None:
                        self.consumer.seek(tp, committed)
                time.sleep(1.0)
        self.consumer.close()
