import json
import threading
import time
from typing import Any

import pytest

from tests.helpers import FIXTURES, recorded_block_18m
from vigil.connectors.history.ddl import latest_version, migrate
from vigil.connectors.history.query import run_readonly
from vigil.connectors.history.sink import HistorySink
from vigil.errors import HistoryError
from vigil.schemas.codec import Codec
from vigil.schemas.registry import SchemaStore
from vigil.settings import Settings
from vigil.streams.kafka import ensure_topics, producer
from vigil.testing import wait_for

pytestmark = pytest.mark.integration


def golden(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / "avro" / f"{name}.json").read_text())  # type: ignore[no-any-return]


def produce_block_18m(settings: Settings, codec: Codec, kafka: str) -> dict[str, Any]:
    block = recorded_block_18m()
    sink = producer(settings, kafka)
    for tx in block["transactions"]:
        topic = settings.topic("chain.transactions")
        sink.send(topic, key=tx["hash"].encode(), value=codec.encode(topic, "Transaction", tx))
    for suffix, schema, record in (
        ("chain.blocks", "Block", block),
        ("monitor.matches", "Match", golden("Match")),
        ("notify.deliveries", "Delivery", golden("Delivery")),
        ("config.monitors", "ConfigChange", golden("ConfigChange")),
        ("monitor.suppressed", "Suppressed", golden("Suppressed")),
        ("dlq", "DeadLetter", golden("DeadLetter")),
        ("forta.alerts", "FortaAlert", golden("FortaAlert")),
        ("forta.metrics", "FortaBotMetric", golden("FortaBotMetric")),
        ("relayer.transactions", "RelayerTransaction", golden("RelayerTransaction")),
        ("replays", "ReplayMatch", golden("ReplayMatch")),
    ):
        sink.send(
            settings.topic(suffix),
            key=b"k",
            value=codec.encode(settings.topic(suffix), schema, record),
        )
    sink.flush()
    sink.close()
    return block


def counts(client: Any) -> dict[str, int]:
    tables = (
        "blocks",
        "transactions",
        "logs",
        "withdrawals",
        "matches",
        "deliveries",
        "config_changes",
        "suppressed",
        "dead_letters",
        "forta_alerts",
        "forta_bot_metrics",
        "relayer_transactions",
        "replays",
    )
    return {t: run_readonly(client, f"SELECT count() FROM {t} FINAL").rows[0][0] for t in tables}


def test_sink_writes_every_table_once_even_when_records_repeat(
    settings: Settings, kafka: str, clickhouse: Any
) -> None:
    ensure_topics(settings, kafka)
    codec = Codec(SchemaStore())
    client = clickhouse
    assert migrate(client) == list(range(1, latest_version() + 1))
    assert migrate(client) == []  # versioned: nothing runs twice
    sink = HistorySink(settings, kafka, client, codec, threading.Lock())
    produce_block_18m(settings, codec, kafka)
    expected = {
        "blocks": 1,
        "transactions": 94,
        "logs": 291,
        "withdrawals": 16,
        "matches": 1,
        "deliveries": 1,
        "config_changes": 1,
        "suppressed": 1,
        "dead_letters": 1,
        "forta_alerts": 1,
        "forta_bot_metrics": 1,
        "relayer_transactions": 1,
        "replays": 1,
    }
    wait_for(lambda: sink.step(200) >= 0 and counts(client) == expected, 60, "history rows")
    produce_block_18m(settings, codec, kafka)  # a replay of the same records
    wait_for(lambda: sink.step(200) == 0 and sum(sink.inserted.values()) >= 2 * 411, 60, "replay")
    assert counts(client) == expected
    failed = run_readonly(client, "SELECT count() FROM transactions FINAL WHERE status = 0").rows[
        0
    ][0]
    assert failed == 2
    withdrawn = "SELECT sum(amount_gwei), uniq(block_timestamp) FROM withdrawals FINAL"
    assert run_readonly(client, withdrawn).rows == [
        [sum(int(w["amount"]) for w in recorded_block_18m()["withdrawals"]), 1]
    ]
    relayed = "SELECT status, value, max_fee_per_gas, nonce FROM relayer_transactions FINAL"
    assert run_readonly(client, relayed).rows == [["mined", 1, 1_000_000_000, 160]]
    sink.consumer.close()


def test_sql_is_read_only(clickhouse: Any) -> None:
    client = clickhouse
    migrate(client)
    with pytest.raises(HistoryError, match="readonly"):
        run_readonly(client, "INSERT INTO deliveries (id) VALUES ('x')")
    with pytest.raises(HistoryError, match=r"UNKNOWN_TABLE|Unknown table"):
        run_readonly(client, "SELECT * FROM nope")


def test_rows_of_an_orphaned_block_are_retracted_whatever_order_they_arrive_in(
    settings: Settings, kafka: str, clickhouse: Any
) -> None:
    """A lagging worker's match, or a block behind its retraction, lands marked; so does one
    that comes after the sink restarted."""
    ensure_topics(settings, kafka)
    codec = Codec(SchemaStore())
    migrate(clickhouse)
    block = recorded_block_18m()
    match = golden("Match")
    orphan = {**match, "blockHash": block["hash"], "id": "m:orphan"}
    live = {**match, "blockHash": "0x" + "77" * 32, "id": "m:live"}
    retraction = {
        "network": block["network"],
        "number": block["number"],
        "hash": block["hash"],
        "canonicalHash": None,
        "forkNumber": block["number"] - 1,
        "forkHash": block["parentHash"],
        "at": 1_700_000_000_000,
    }
    out = producer(settings, kafka)

    def send(suffix: str, schema: str, record: dict[str, Any]) -> None:
        topic = settings.topic(suffix)
        out.send(topic, key=b"k", value=codec.encode(topic, schema, record))
        out.flush()

    def retracted(sink: HistorySink, query: str, expected: list[list[Any]]) -> bool:
        sink.step(200)
        return run_readonly(clickhouse, query).rows == expected

    sink = HistorySink(settings, kafka, clickhouse, codec, threading.Lock())
    send("chain.reorgs", "Retraction", retraction)
    wait_for(lambda: retracted(sink, "SELECT count() FROM reorgs FINAL", [[1]]), 60, "reorg row")
    send("chain.blocks", "Block", block)
    send("monitor.matches", "Match", orphan)
    send("monitor.matches", "Match", live)
    query = "SELECT id, retracted FROM matches FINAL ORDER BY id"
    expected = [["m:live", 0], ["m:orphan", 1]]
    wait_for(lambda: retracted(sink, query, expected), 60, "the late match marked")
    assert run_readonly(clickhouse, "SELECT retracted FROM blocks FINAL").rows == [[1]]
    assert run_readonly(clickhouse, "SELECT DISTINCT retracted FROM withdrawals FINAL").rows == [
        [1]
    ]
    live_block = {**block, "hash": "0x" + "66" * 32}
    send("chain.blocks", "Block", live_block)
    query_blocks = "SELECT hash, retracted FROM blocks FINAL ORDER BY retracted"
    wait_for(
        lambda: retracted(sink, query_blocks, [[live_block["hash"], 0], [block["hash"], 1]]),
        60,
        "the canonical block",
    )
    # a block stored before its retraction gets a newer, retracted version: no mutation
    send("chain.reorgs", "Retraction", {**retraction, "hash": live_block["hash"]})
    wait_for(
        lambda: retracted(sink, "SELECT sum(retracted) FROM blocks FINAL", [[2]]),
        60,
        "the stored block retracted",
    )
    assert run_readonly(clickhouse, "SELECT count() FROM system.mutations").rows == [[0]]
    sink.consumer.close()

    restarted = HistorySink(settings, kafka, clickhouse, codec, threading.Lock())
    send("monitor.matches", "Match", {**orphan, "id": "m:orphan-2"})
    expected = [["m:live", 0], ["m:orphan", 1], ["m:orphan-2", 1]]
    wait_for(lambda: retracted(restarted, query, expected), 60, "marked after a restart")
    restarted.consumer.close()
    out.close()


def test_an_old_history_is_migrated_to_monthly_partitions_and_keeps_every_row(
    clickhouse: Any,
) -> None:
    """Migration 8 rebuilds the growing tables (partitions, sorting keys) and keeps their rows:
    the logs get their time from their transactions."""
    from vigil.connectors.history.ddl import MIGRATIONS

    for _, _, statements in MIGRATIONS[:7]:
        for statement in statements:
            clickhouse.command(statement)
    clickhouse.command(
        "CREATE TABLE schema_migrations (version UInt32, description String, "
        "applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) ENGINE = MergeTree ORDER BY version"
    )
    clickhouse.insert(
        "schema_migrations",
        [[v, d] for v, d, _ in MIGRATIONS[:7]],
        column_names=["version", "description"],
    )
    from vigil.connectors.history import rows

    block = recorded_block_18m()
    tx_rows = [rows.transaction_rows(tx) for tx in block["transactions"]]
    clickhouse.insert("transactions", [r for r, _ in tx_rows], column_names=rows.TX_COLUMNS)
    old_logs = [
        [c for i, c in enumerate(log) if rows.LOG_COLUMNS[i] != "block_timestamp"]
        for _, logs in tx_rows
        for log in logs
    ]
    old_columns = [c for c in rows.LOG_COLUMNS if c != "block_timestamp"]
    clickhouse.insert("logs", old_logs, column_names=old_columns)
    clickhouse.insert("matches", [rows.match_row(golden("Match"))], column_names=rows.MATCH_COLUMNS)

    assert migrate(clickhouse) == [8]
    counted = "SELECT (SELECT count() FROM transactions), (SELECT count() FROM logs), "
    counted += "(SELECT count() FROM matches)"
    assert run_readonly(clickhouse, counted).rows == [[94, 291, 1]]
    stamped = "SELECT DISTINCT toUnixTimestamp(block_timestamp) FROM logs"
    assert run_readonly(clickhouse, stamped).rows == [[block["timestamp"]]]
    partitioned = run_readonly(
        clickhouse,
        "SELECT name, partition_key FROM system.tables WHERE database = currentDatabase() "
        "AND name IN ('logs', 'matches', 'withdrawals') ORDER BY name",
    ).rows
    assert partitioned == [
        ["logs", "toYYYYMM(block_timestamp)"],
        ["matches", "toYYYYMM(timestamp)"],
        ["withdrawals", "toYYYYMM(block_timestamp)"],
    ]
    left = "SELECT count() FROM system.tables WHERE database = currentDatabase() "
    left += "AND name LIKE '%_next'"
    assert run_readonly(clickhouse, left).rows == [[0]]


def test_a_ttl_per_table_is_set_changed_and_removed(clickhouse: Any) -> None:
    from vigil.connectors.history.ddl import apply_ttl
    from vigil.errors import SettingsError

    migrate(clickhouse)

    def ttl(table: str) -> str:
        query = (
            "SELECT create_table_query FROM system.tables WHERE database = currentDatabase() "
            f"AND name = '{table}'"
        )
        shown = run_readonly(clickhouse, query).rows[0][0]
        return shown.split(" TTL ")[1].split(" SETTINGS")[0] if " TTL " in shown else ""

    assert apply_ttl(clickhouse, {"logs": 90, "deliveries": 30}) == {"logs": 90, "deliveries": 30}
    assert ttl("logs") == "toDateTime(block_timestamp) + toIntervalDay(90)"
    assert ttl("deliveries") == "toDateTime(at) + toIntervalDay(30)"
    assert apply_ttl(clickhouse, {"logs": 90, "deliveries": 30}) == {}  # nothing to change
    assert apply_ttl(clickhouse, {"logs": 7}) == {"logs": 7, "deliveries": None}
    assert ttl("logs") == "toDateTime(block_timestamp) + toIntervalDay(7)" and not ttl("deliveries")
    with pytest.raises(SettingsError, match="VIGIL_HISTORY_TTL_DAYS: no history table 'log'"):
        apply_ttl(clickhouse, {"log": 7})


def test_the_sink_batches_by_time_and_by_size(
    settings: Settings, kafka: str, clickhouse: Any
) -> None:
    """Records that come within a batch's time go in one insert; a full batch goes at once."""
    ensure_topics(settings, kafka)
    codec = Codec(SchemaStore())
    migrate(clickhouse)
    topic = settings.topic("dlq")
    out = producer(settings, kafka)

    def send(n: int) -> None:
        value = codec.encode(topic, "DeadLetter", {**golden("DeadLetter"), "id": f"dl{n}"})
        out.send(topic, key=f"dl{n}".encode(), value=value)
        out.flush()

    timed = settings.model_copy(update={"history_batch_seconds": 3.0, "history_batch_rows": 100})
    sink = HistorySink(timed, kafka, clickhouse, codec, threading.Lock())
    wait_for(lambda: sink.consumer.assignment() or sink.step(100) or None, 30, "an assignment")
    send(0)
    answer: list[int] = []
    stepping = threading.Thread(target=lambda: answer.append(sink.step(5_000)))
    stepping.start()
    time.sleep(1.5)  # the step has read the first record by now, most likely alone
    send(1)  # within the first record's 3 s: the same batch
    stepping.join(30)
    assert answer == [2] and sink.inserted["dead_letters"] == 2
    sink.consumer.close()

    sized = settings.model_copy(update={"history_batch_seconds": 60.0, "history_batch_rows": 3})
    sink = HistorySink(sized, kafka, clickhouse, codec, threading.Lock())
    for n in range(2, 5):
        send(n)
    rows = wait_for(lambda: sink.step(5_000) or None, 30, "a full batch")  # not after 60 s
    assert rows == 3
    sink.consumer.close()
    out.close()
