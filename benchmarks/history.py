"""The ready-made queries over 10 million matches on chDB (vigil's embedded ClickHouse),
against DuckDB running the same queries over the same rows, measured in the same run.

The rows are made inside chDB: 100 monitors, 5,000 addresses, block times over the last 30
days, one matched address each (every tenth match two). They are written to Parquet once
and DuckDB reads that file into its own table, so both engines answer from their own
storage. Each query runs 5 times; the p50 is printed with the ratio DuckDB / chDB (above
1: chDB is faster) and a check that both answered the same. The chDB queries are the
shipped .sql files, FINAL included (ReplacingMergeTree's deduplication at read time, which
DuckDB's plain table does not need). The last line is JSON. Run with ``make bench`` (or
``python benchmarks/history.py [ROWS]``).
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vigil.connectors.history.ddl import migrate  # noqa: E402
from vigil.connectors.history.queries import ready_query  # noqa: E402
from vigil.connectors.history.query import connect, run_readonly  # noqa: E402

RUNS = 5
DAYS = 30
MATCHES = (
    "INSERT INTO matches (id, monitor_id, monitor_name, network, block_number, block_hash, "
    "transaction_hash, timestamp, reasons, matched_addresses, value, event) "
    "SELECT concat('m', toString(number)), concat('monitor-', toString(number % 100)), "
    "concat('Monitor ', toString(number % 100)), 'mainnet', 18000000 + intDiv(number, 40), "
    "concat('0x', lower(hex(cityHash64(intDiv(number, 40))))), "
    "concat('0x', lower(hex(cityHash64(number)))), "
    "toDateTime(now() - toIntervalSecond(intDiv(number * 2592000, {rows}))), '[]', "
    "if(number % 10 = 0, [concat('0x', leftPad(lower(hex(number % 5000)), 40, '0')), "
    "concat('0x', leftPad(lower(hex((number + 1) % 5000)), 40, '0'))], "
    "[concat('0x', leftPad(lower(hex(number % 5000)), 40, '0'))]), number, '{{}}' "
    "FROM numbers({rows})"
)
# the same questions in DuckDB's SQL (its table holds what the chDB table holds)
DUCK = {
    "recent-matches": (
        "SELECT monitor_id, monitor_name, network, block_number, transaction_hash, timestamp "
        "FROM matches WHERE timestamp > now() - INTERVAL 24 HOUR AND retracted = 0 "
        "ORDER BY timestamp DESC, block_number DESC, id DESC LIMIT 50"
    ),
    "matches-per-monitor": (
        "SELECT monitor_id, any_value(monitor_name) AS name, count(*) AS matches FROM matches "
        "WHERE retracted = 0 AND timestamp > now() - INTERVAL 24 HOUR GROUP BY monitor_id "
        "ORDER BY matches DESC, monitor_id"
    ),
    "matches-per-monitor-per-day": (
        "SELECT CAST(timestamp AS DATE) AS day, monitor_id, count(*) AS matches FROM matches "
        "WHERE retracted = 0 AND timestamp >= current_date - 7 GROUP BY day, monitor_id "
        "ORDER BY day DESC, matches DESC, monitor_id"
    ),
    "top-matched-addresses": (
        "SELECT address, count(*) AS matches, count(DISTINCT monitor_id) AS monitors, "
        "max(timestamp) AS last_seen FROM (SELECT unnest(matched_addresses) AS address, "
        "monitor_id, timestamp FROM matches WHERE retracted = 0 "
        "AND timestamp > now() - INTERVAL 7 DAY) GROUP BY address "
        "ORDER BY matches DESC, address LIMIT 20"
    ),
}


def p50(work: Callable[[], Any]) -> tuple[float, Any]:
    """The median seconds of ``RUNS`` runs (after one to warm up), and the last answer."""
    answer = work()
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        answer = work()
        times.append(time.perf_counter() - started)
    return statistics.median(times), answer


def main() -> None:
    import duckdb

    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
    with tempfile.TemporaryDirectory() as tmp:
        client = connect(f"chdb://{tmp}/clickhouse", "bench")
        migrate(client)
        started = time.perf_counter()
        client.command(MATCHES.format(rows=rows))
        made = time.perf_counter() - started
        parquet = Path(tmp) / "matches.parquet"
        client.command(
            f"INSERT INTO FUNCTION file('{parquet}', 'Parquet') SELECT id, monitor_id, "
            "monitor_name, network, block_number, transaction_hash, timestamp, "
            "matched_addresses, retracted FROM matches"
        )
        duck = duckdb.connect(str(Path(tmp) / "duck.db"))
        duck.execute("SET TimeZone = 'UTC'")
        duck.execute(f"CREATE TABLE matches AS SELECT * FROM read_parquet('{parquet}')")
        print(f"{rows:,} matches made in chDB in {made:.1f} s; DuckDB {duckdb.__version__}\n")
        print(f"{'query':30} {'chDB p50 ms':>12} {'DuckDB p50 ms':>14} {'ratio':>7}  same")
        figures = {}
        for name, duck_sql in DUCK.items():
            sql = ready_query(name).render({})
            chdb_s, chdb_rows = p50(lambda sql=sql: run_readonly(client, sql).rows)
            duck_s, duck_rows = p50(lambda q=duck_sql: duck.execute(q).fetchall())
            same = _same(chdb_rows, duck_rows)
            figures[name] = {
                "chdb_ms": round(chdb_s * 1000, 1),
                "duckdb_ms": round(duck_s * 1000, 1),
                "ratio": round(duck_s / chdb_s, 2),
                "same": same,
            }
            print(
                f"{name:30} {chdb_s * 1000:>12,.1f} {duck_s * 1000:>14,.1f} "
                f"{duck_s / chdb_s:>6.2f}x  {'yes' if same else 'NO'}"
            )
        duck.close()
    print(json.dumps({"rows": rows, "runs": RUNS, "queries": figures}))


def _same(ours: list[list[Any]], theirs: list[tuple[Any, ...]]) -> bool:
    """The same answer: rows and counts equal (times compared to the second, as text)."""

    def plain(row: Any) -> tuple[Any, ...]:
        return tuple(str(v)[:19].replace("T", " ") if hasattr(v, "isoformat") else v for v in row)

    return [plain(r) for r in ours] == [plain(r) for r in theirs]


if __name__ == "__main__":
    main()
