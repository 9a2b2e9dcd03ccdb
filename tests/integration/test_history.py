import json
import threading
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
        "matches",
        "deliveries",
        "config_changes",
        "suppressed",
        "dead_letters",
        "forta_alerts",
        "forta_bot_metrics",
        "relayer_transactions",
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
        "matches": 1,
        "deliveries": 1,
        "config_changes": 1,
        "suppressed": 1,
        "dead_letters": 1,
        "forta_alerts": 1,
        "forta_bot_metrics": 1,
        "relayer_transactions": 1,
    }
    wait_for(lambda: sink.step(200) >= 0 and counts(client) == expected, 60, "history rows")
    produce_block_18m(settings, codec, kafka)  # a replay of the same records
    wait_for(lambda: sink.step(200) == 0 and sum(sink.inserted.values()) >= 2 * 394, 60, "replay")
    assert counts(client) == expected
    failed = run_readonly(client, "SELECT count() FROM transactions FINAL WHERE status = 0").rows[
        0
    ][0]
    assert failed == 2
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
    sink.consumer.close()

    restarted = HistorySink(settings, kafka, clickhouse, codec, threading.Lock())
    send("monitor.matches", "Match", {**orphan, "id": "m:orphan-2"})
    expected = [["m:live", 0], ["m:orphan", 1], ["m:orphan-2", 1]]
    wait_for(lambda: retracted(restarted, query, expected), 60, "marked after a restart")
    restarted.consumer.close()
    out.close()
