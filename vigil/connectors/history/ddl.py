"""Versioned DDL: each migration runs once, in order, recorded in ``schema_migrations``."""

from __future__ import annotations

import re
from typing import Any

from vigil.errors import HistoryError, SettingsError

# ReplacingMergeTree keyed by the record's identity: a replayed record replaces itself.
MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "chain, matches and deliveries",
        [
            """CREATE TABLE IF NOT EXISTS blocks (
            network LowCardinality(String), number UInt64, hash String, parent_hash String,
            timestamp DateTime('UTC'), miner String, gas_limit UInt64, gas_used UInt64,
            base_fee_per_gas Nullable(UInt256), transaction_count UInt32,
            retracted UInt8 DEFAULT 0, inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
        ) ENGINE = ReplacingMergeTree(inserted_at) ORDER BY (network, number, hash)""",
            """CREATE TABLE IF NOT EXISTS transactions (
            network LowCardinality(String), hash String, block_number UInt64,
            block_hash String, block_timestamp DateTime('UTC'), transaction_index UInt32,
            type UInt32, from String, to Nullable(String), value UInt256, nonce UInt64,
            input String, gas UInt64, gas_price Nullable(UInt256),
            max_fee_per_gas Nullable(UInt256), max_priority_fee_per_gas Nullable(UInt256),
            status Nullable(UInt8), gas_used UInt64, effective_gas_price Nullable(UInt256),
            contract_address Nullable(String), log_count UInt32,
            retracted UInt8 DEFAULT 0, inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
        ) ENGINE = ReplacingMergeTree(inserted_at) ORDER BY (network, block_number, hash)""",
            """CREATE TABLE IF NOT EXISTS logs (
            network LowCardinality(String), block_number UInt64, block_hash String,
            transaction_hash String, log_index UInt32, address String,
            topic0 Nullable(String), topic1 Nullable(String), topic2 Nullable(String),
            topic3 Nullable(String), data String,
            retracted UInt8 DEFAULT 0, inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
        ) ENGINE = ReplacingMergeTree(inserted_at)
          ORDER BY (network, block_number, block_hash, log_index)""",
            """CREATE TABLE IF NOT EXISTS matches (
            id String, monitor_id String, monitor_name String, network LowCardinality(String),
            block_number UInt64, block_hash String, transaction_hash String,
            timestamp DateTime('UTC'), reasons String, matched_addresses Array(String),
            value Nullable(UInt256), event String,
            retracted UInt8 DEFAULT 0, inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
        ) ENGINE = ReplacingMergeTree(inserted_at) ORDER BY (monitor_id, id)""",
            """CREATE TABLE IF NOT EXISTS deliveries (
            id String, match_id String, monitor_id String, channel String,
            channel_type LowCardinality(String), request_id String,
            status LowCardinality(String), attempts UInt16, http_status Nullable(UInt16),
            error Nullable(String), at DateTime64(3, 'UTC'), latency_ms UInt64,
            inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
        ) ENGINE = ReplacingMergeTree(inserted_at) ORDER BY (id)""",
        ],
    ),
    (
        2,
        "config changes",
        [
            """CREATE TABLE IF NOT EXISTS config_changes (
            kind LowCardinality(String), id String, action LowCardinality(String),
            version String, source LowCardinality(String), file Nullable(String),
            spec Nullable(String), at DateTime64(3, 'UTC'),
            inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
        ) ENGINE = ReplacingMergeTree(inserted_at) ORDER BY (kind, id, at, version)""",
        ],
    ),
    (
        3,
        "suppressed matches and dead letters",
        [
            """CREATE TABLE IF NOT EXISTS suppressed (
            id String, monitor_id String, network LowCardinality(String), block_number UInt64,
            block_hash String, transaction_hash String, reason LowCardinality(String),
            detail String, count UInt32, timestamp DateTime('UTC'), at DateTime64(3, 'UTC'),
            inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
        ) ENGINE = ReplacingMergeTree(inserted_at) ORDER BY (monitor_id, id)""",
            """CREATE TABLE IF NOT EXISTS dead_letters (
            id String, source LowCardinality(String), topic String, partition UInt32,
            offset UInt64, error String, payload_schema Nullable(String),
            at DateTime64(3, 'UTC'), inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
        ) ENGINE = ReplacingMergeTree(inserted_at) ORDER BY (id, at)""",
        ],
    ),
    (
        4,
        "forta alerts and bot metrics",
        [
            """CREATE TABLE IF NOT EXISTS forta_alerts (
            hash String, alert_id String, name String, description String, protocol String,
            finding_type LowCardinality(String), severity LowCardinality(String),
            metadata Map(String, String), addresses Array(String), created_at String,
            scan_node_count UInt32, transaction_hash String, bot_id String,
            block_number UInt64, block_hash String, chain_id UInt64,
            origin LowCardinality(String), scan_node Nullable(String),
            received_at DateTime64(3, 'UTC'), inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
        ) ENGINE = ReplacingMergeTree(inserted_at) ORDER BY (hash)""",
            """CREATE TABLE IF NOT EXISTS forta_bot_metrics (
            bot_id String, timestamp String, name String, count Float64, max Float64,
            average Float64, sum Float64, p95 Float64, scan_node Nullable(String),
            received_at DateTime64(3, 'UTC'), inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
        ) ENGINE = ReplacingMergeTree(inserted_at) ORDER BY (bot_id, name, timestamp)""",
        ],
    ),
    (
        5,
        "reorgs: every retracted block, so rows of it that arrive later are marked too",
        [
            """CREATE TABLE IF NOT EXISTS reorgs (
            network LowCardinality(String), number UInt64, hash String,
            canonical_hash Nullable(String), fork_number UInt64, fork_hash String,
            at DateTime64(3, 'UTC'), inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
        ) ENGINE = ReplacingMergeTree(inserted_at) ORDER BY (network, hash)""",
        ],
    ),
    (
        6,
        "task runs: the latest record of each run (pending, then how it ended)",
        [
            """CREATE TABLE IF NOT EXISTS task_runs (
            run_id String, task_id String, task_version String, trigger LowCardinality(String),
            status LowCardinality(String), result Nullable(String), logs String,
            error_type Nullable(String), error_message Nullable(String), duration_ms UInt64,
            started_at DateTime64(3, 'UTC'), finished_at Nullable(DateTime64(3, 'UTC')),
            inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
        ) ENGINE = ReplacingMergeTree(inserted_at) ORDER BY (task_id, run_id)""",
        ],
    ),
    (
        7,
        "relayer transactions: the latest status of each (updated_at decides)",
        [
            """CREATE TABLE IF NOT EXISTS relayer_transactions (
            transaction_id String, relayer_id String, status LowCardinality(String),
            chain_id UInt64, from_address String, to_address Nullable(String), value UInt256,
            data String, gas_limit UInt64, nonce Nullable(UInt64), speed Nullable(String),
            gas_price Nullable(UInt256), max_fee_per_gas Nullable(UInt256),
            max_priority_fee_per_gas Nullable(UInt256), hash Nullable(String),
            hashes Array(String), is_private Bool, valid_until Nullable(DateTime64(3, 'UTC')),
            created_at DateTime64(3, 'UTC'), sent_at Nullable(DateTime64(3, 'UTC')),
            mined_block Nullable(UInt64), updated_at DateTime64(3, 'UTC'), error Nullable(String),
            inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
        ) ENGINE = ReplacingMergeTree(updated_at) ORDER BY (relayer_id, transaction_id)""",
        ],
    ),
]


def _rebuilt(table: str, create: str, columns: str, select: str) -> list[str]:
    """Statements that give ``table`` a new definition and keep its rows: build
    ``<table>_next``, copy, swap (atomically), drop the old. A run cut short is safe to
    run again: the first statement drops whatever ``_next`` a cut run left."""
    return [
        f"DROP TABLE IF EXISTS {table}_next",
        create.format(table=f"{table}_next"),
        f"INSERT INTO {table}_next ({columns}) {select}",
        f"EXCHANGE TABLES {table} AND {table}_next",
        f"DROP TABLE {table}_next",
    ]


_BLOCK_COLUMNS = (
    "network, number, hash, parent_hash, timestamp, miner, gas_limit, gas_used, "
    "base_fee_per_gas, transaction_count, retracted, inserted_at"
)
_TX_COLUMNS = (
    "network, hash, block_number, block_hash, block_timestamp, transaction_index, type, "
    "`from`, `to`, value, nonce, input, gas, gas_price, max_fee_per_gas, "
    "max_priority_fee_per_gas, status, gas_used, effective_gas_price, contract_address, "
    "log_count, retracted, inserted_at"
)
_LOG_COLUMNS = (
    "network, block_number, block_hash, transaction_hash, log_index, address, topic0, "
    "topic1, topic2, topic3, data, retracted, inserted_at"
)
_MATCH_COLUMNS = (
    "id, monitor_id, monitor_name, network, block_number, block_hash, transaction_hash, "
    "timestamp, reasons, matched_addresses, value, event, retracted, inserted_at"
)
_SUPPRESSED_COLUMNS = (
    "id, monitor_id, network, block_number, block_hash, transaction_hash, reason, detail, "
    "count, timestamp, at, inserted_at"
)
_RUN_COLUMNS = (
    "run_id, task_id, task_version, trigger, status, result, logs, error_type, "
    "error_message, duration_ms, started_at, finished_at, inserted_at"
)

# Migration 8: the tables that grow with the chain are partitioned by month of a time that
# never changes between a row's versions (ReplacingMergeTree replaces only within a
# partition), and sorted for the questions asked of them: the chain by block (replays read
# ranges of blocks; bloom filters find a contract's logs and an address's transactions),
# matches and suppressed matches by monitor and time. Tables whose time moves between
# versions (deliveries: each attempt has its own `at`) keep one partition. Blocks keep where
# their record is on chain.blocks: vigil's block → offset index, for replays from Kafka.
_MONTHLY: list[str] = [
    *_rebuilt(
        "blocks",
        """CREATE TABLE {table} (
            network LowCardinality(String), number UInt64, hash String, parent_hash String,
            timestamp DateTime('UTC'), miner String, gas_limit UInt64, gas_used UInt64,
            base_fee_per_gas Nullable(UInt256), transaction_count UInt32,
            kafka_partition Int32 DEFAULT -1, kafka_offset Int64 DEFAULT -1,
            retracted UInt8 DEFAULT 0, inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
        ) ENGINE = ReplacingMergeTree(inserted_at) PARTITION BY toYYYYMM(timestamp)
          ORDER BY (network, number, hash)""",
        _BLOCK_COLUMNS,
        f"SELECT {_BLOCK_COLUMNS} FROM blocks",
    ),
    *_rebuilt(
        "transactions",
        """CREATE TABLE {table} (
            network LowCardinality(String), hash String, block_number UInt64,
            block_hash String, block_timestamp DateTime('UTC'), transaction_index UInt32,
            type UInt32, from String, to Nullable(String), value UInt256, nonce UInt64,
            input String, gas UInt64, gas_price Nullable(UInt256),
            max_fee_per_gas Nullable(UInt256), max_priority_fee_per_gas Nullable(UInt256),
            status Nullable(UInt8), gas_used UInt64, effective_gas_price Nullable(UInt256),
            contract_address Nullable(String), log_count UInt32,
            retracted UInt8 DEFAULT 0, inserted_at DateTime64(3, 'UTC') DEFAULT now64(3),
            INDEX from_address `from` TYPE bloom_filter GRANULARITY 4,
            INDEX to_address `to` TYPE bloom_filter GRANULARITY 4,
            INDEX tx_hash hash TYPE bloom_filter GRANULARITY 4
        ) ENGINE = ReplacingMergeTree(inserted_at) PARTITION BY toYYYYMM(block_timestamp)
          ORDER BY (network, block_number, hash)""",
        _TX_COLUMNS,
        f"SELECT {_TX_COLUMNS} FROM transactions",
    ),
    *_rebuilt(
        "logs",
        """CREATE TABLE {table} (
            network LowCardinality(String), block_number UInt64, block_hash String,
            block_timestamp DateTime('UTC'), transaction_hash String, log_index UInt32,
            address String, topic0 Nullable(String), topic1 Nullable(String),
            topic2 Nullable(String), topic3 Nullable(String), data String,
            retracted UInt8 DEFAULT 0, inserted_at DateTime64(3, 'UTC') DEFAULT now64(3),
            INDEX address_index address TYPE bloom_filter GRANULARITY 4,
            INDEX topic0_index topic0 TYPE bloom_filter GRANULARITY 4
        ) ENGINE = ReplacingMergeTree(inserted_at) PARTITION BY toYYYYMM(block_timestamp)
          ORDER BY (network, block_number, block_hash, log_index)""",
        f"{_LOG_COLUMNS}, block_timestamp",
        # the logs' time comes from their transactions (logs had none before)
        "SELECT "
        + ", ".join(f"l.{c.strip()}" for c in _LOG_COLUMNS.split(","))
        + ", t.block_timestamp FROM logs AS l LEFT JOIN (SELECT DISTINCT network, block_hash, "
        "block_timestamp FROM transactions) AS t ON l.network = t.network "
        "AND l.block_hash = t.block_hash",
    ),
    *_rebuilt(
        "matches",
        """CREATE TABLE {table} (
            id String, monitor_id String, monitor_name String, network LowCardinality(String),
            block_number UInt64, block_hash String, transaction_hash String,
            timestamp DateTime('UTC'), reasons String, matched_addresses Array(String),
            value Nullable(UInt256), event String,
            retracted UInt8 DEFAULT 0, inserted_at DateTime64(3, 'UTC') DEFAULT now64(3),
            INDEX block_hash_index block_hash TYPE bloom_filter GRANULARITY 4
        ) ENGINE = ReplacingMergeTree(inserted_at) PARTITION BY toYYYYMM(timestamp)
          ORDER BY (monitor_id, timestamp, id)""",
        _MATCH_COLUMNS,
        f"SELECT {_MATCH_COLUMNS} FROM matches",
    ),
    *_rebuilt(
        "suppressed",
        """CREATE TABLE {table} (
            id String, monitor_id String, network LowCardinality(String), block_number UInt64,
            block_hash String, transaction_hash String, reason LowCardinality(String),
            detail String, count UInt32, timestamp DateTime('UTC'), at DateTime64(3, 'UTC'),
            inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
        ) ENGINE = ReplacingMergeTree(inserted_at) PARTITION BY toYYYYMM(timestamp)
          ORDER BY (monitor_id, timestamp, id)""",
        _SUPPRESSED_COLUMNS,
        f"SELECT {_SUPPRESSED_COLUMNS} FROM suppressed",
    ),
    *_rebuilt(
        "task_runs",
        """CREATE TABLE {table} (
            run_id String, task_id String, task_version String, trigger LowCardinality(String),
            status LowCardinality(String), result Nullable(String), logs String,
            error_type Nullable(String), error_message Nullable(String), duration_ms UInt64,
            started_at DateTime64(3, 'UTC'), finished_at Nullable(DateTime64(3, 'UTC')),
            inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
        ) ENGINE = ReplacingMergeTree(inserted_at) PARTITION BY toYYYYMM(started_at)
          ORDER BY (task_id, run_id)""",
        _RUN_COLUMNS,
        f"SELECT {_RUN_COLUMNS} FROM task_runs",
    ),
    """CREATE TABLE IF NOT EXISTS replays (
        replay_id String, source LowCardinality(String), id String, monitor_id String,
        network LowCardinality(String), block_number UInt64, block_hash String,
        transaction_hash String, timestamp DateTime('UTC'), reasons String,
        matched_addresses Array(String), at DateTime64(3, 'UTC'),
        inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
    ) ENGINE = ReplacingMergeTree(inserted_at) PARTITION BY toYYYYMM(at)
      ORDER BY (replay_id, monitor_id, block_number, id)""",
    """CREATE TABLE IF NOT EXISTS withdrawals (
        network LowCardinality(String), block_number UInt64, block_hash String,
        block_timestamp DateTime('UTC'), `index` UInt64, validator_index UInt64, address String,
        amount_gwei UInt64,
        retracted UInt8 DEFAULT 0, inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
    ) ENGINE = ReplacingMergeTree(inserted_at) PARTITION BY toYYYYMM(block_timestamp)
      ORDER BY (network, block_number, block_hash, `index`)""",
]
MIGRATIONS.append(
    (8, "monthly partitions, sorting keys for users' queries, withdrawals, replays", _MONTHLY)
)

# the time column a table's TTL counts from (VIGIL_HISTORY_TTL_DAYS names tables of these)
TTL_COLUMNS = {
    "blocks": "timestamp",
    "transactions": "block_timestamp",
    "logs": "block_timestamp",
    "withdrawals": "block_timestamp",
    "matches": "timestamp",
    "suppressed": "timestamp",
    "deliveries": "at",
    "task_runs": "started_at",
    "dead_letters": "at",
    "forta_alerts": "received_at",
    "forta_bot_metrics": "received_at",
    "config_changes": "at",
    "relayer_transactions": "created_at",
    "replays": "at",
}


def apply_ttl(client: Any, days: dict[str, int]) -> dict[str, int | None]:
    """Give each table in ``days`` its TTL and take it from the others that had one; returns
    what changed (table → days, or None for a TTL removed). Rows past it go at merges."""
    unknown = sorted(set(days) - set(TTL_COLUMNS))
    if unknown:
        raise SettingsError(
            f"VIGIL_HISTORY_TTL_DAYS: no history table {unknown[0]!r}; "
            f"expected one of: {', '.join(TTL_COLUMNS)}"
        )
    changed: dict[str, int | None] = {}
    try:
        shown = dict(
            client.query(
                "SELECT name, create_table_query FROM system.tables "
                "WHERE database = currentDatabase()"
            ).result_rows
        )
        for table, column in TTL_COLUMNS.items():
            has = re.search(r" TTL .*toIntervalDay\((\d+)\)", shown.get(table, ""))
            now = int(has.group(1)) if has else None
            wanted = days.get(table)
            if wanted == now:
                continue
            if wanted is None:
                client.command(f"ALTER TABLE {table} REMOVE TTL")
            else:
                client.command(
                    f"ALTER TABLE {table} MODIFY TTL toDateTime({column}) + "
                    f"INTERVAL {int(wanted)} DAY SETTINGS materialize_ttl_after_modify = 0"
                )
            changed[table] = wanted
    except Exception as exc:  # clickhouse-connect and chdb raise several types
        raise HistoryError(f"setting the history's TTL failed: {exc}") from exc
    return changed


def migrate(client: Any) -> list[int]:
    """Apply the migrations not yet recorded; returns the versions applied now."""
    try:
        client.command("""CREATE TABLE IF NOT EXISTS schema_migrations (
            version UInt32, description String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
        ) ENGINE = MergeTree ORDER BY version""")
        done = {row[0] for row in client.query("SELECT version FROM schema_migrations").result_rows}
        applied = []
        for version, description, statements in MIGRATIONS:
            if version in done:
                continue
            for statement in statements:
                client.command(statement)
            client.insert(
                "schema_migrations",
                [[version, description]],
                column_names=["version", "description"],
            )
            applied.append(version)
        return applied
    except Exception as exc:  # clickhouse-connect and chdb raise several types
        if isinstance(exc, HistoryError):
            raise
        raise HistoryError(f"ClickHouse migration failed: {exc}") from exc


def latest_version() -> int:
    return MIGRATIONS[-1][0]
