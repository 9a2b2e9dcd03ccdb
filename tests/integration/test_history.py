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
    sink = producer(kafka)
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
    }
    wait_for(lambda: sink.step(200) >= 0 and counts(client) == expected, 60, "history rows")
    produce_block_18m(settings, codec, kafka)  # a replay of the same records
    wait_for(lambda: sink.step(200) == 0 and sum(sink.inserted.values()) >= 2 * 393, 60, "replay")
    assert counts(client) == expected
    failed = run_readonly(client, "SELECT count() FROM transactions FINAL WHERE status = 0").rows[
        0
    ][0]
    assert failed == 2
    sink.consumer.close()


def test_sql_is_read_only(clickhouse: Any) -> None:
    client = clickhouse
    migrate(client)
    with pytest.raises(HistoryError, match="readonly"):
        run_readonly(client, "INSERT INTO deliveries (id) VALUES ('x')")
    with pytest.raises(HistoryError, match=r"UNKNOWN_TABLE|Unknown table"):
        run_readonly(client, "SELECT * FROM nope")
