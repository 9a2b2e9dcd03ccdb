"""The downstream consumers in examples/consumers/ against a real broker and the registry of
vigil's API: the Python one as its own process, the ClickHouse one on chDB."""

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer

from tests.helpers import API_KEY, FIXTURES, ApiServer, api_app
from vigil.schemas.catalogue import REGISTRY_TOPIC
from vigil.schemas.codec import Codec
from vigil.schemas.registry import HttpRegistry
from vigil.settings import Settings
from vigil.streams.kafka import ensure_topics, producer
from vigil.streams.registry_log import kafka_backed_store

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "consumers"


def _matches() -> list[dict[str, Any]]:
    sample = json.loads((FIXTURES / "avro" / "Match.json").read_text())
    high = {**sample["monitor"], "id": "drain", "severity": "high"}
    return [sample, {**sample, "id": "drain:1", "monitor": high, "blockNumber": 18_000_001}]


@pytest.fixture
def published(settings: Settings, kafka: str) -> Any:
    """Two matches on the topic, and the API whose registry has their schema."""
    ensure_topics(settings, kafka)
    store = kafka_backed_store(settings, kafka, settings.topic(REGISTRY_TOPIC))
    topic = settings.topic("monitor.matches")
    with ApiServer(api_app(store=store)) as api:
        codec = Codec(HttpRegistry(api.url, headers={"X-Api-Key": API_KEY}))
        out = producer(settings, kafka)
        for match in _matches():
            key = match["monitor"]["id"].encode()
            out.send(topic, key=key, value=codec.encode(topic, "Match", match))
        out.flush()
        out.close()
        yield api, topic


def test_the_python_consumer_reacts_to_each_match(
    settings: Settings, kafka: str, published: Any
) -> None:
    api, _ = published
    env = {
        "PATH": "/usr/bin:/bin",
        "VIGIL_KAFKA_BOOTSTRAP": kafka,
        "VIGIL_REGISTRY_URL": api.url,
        "VIGIL_API_KEY": API_KEY,
        "VIGIL_TOPIC_PREFIX": settings.topic_prefix,
        "CONSUMER_MAX": "2",
    }
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "matches_consumer.py")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    sample = _matches()[0]
    assert sorted(done.stdout.splitlines()) == sorted(
        [
            f"  medium usdc block 18000000 tx {sample['hash']} on mainnet",
            f"ALERT     high drain block 18000001 tx {sample['hash']} on mainnet",
        ]
    )


def test_the_clickhouse_example_decodes_the_topic_with_the_registry(
    kafka: str, published: Any, clickhouse: Any, tmp_path: Path
) -> None:
    """chDB cannot run a Kafka engine table (it has no server's background pools: CREATE
    answers 'Shutdown was called'), so this checks the rest on the real records: the Kafka
    table's DDL parses, its columns decode the topic's AvroConfluent through vigil's registry,
    and the view's SELECT fills the target table."""
    api, topic = published
    registry = api.url.replace("http://", f"http://vigil:{API_KEY}@")
    text = (EXAMPLES / "matches_kafka_engine.sql").read_text()
    text = text.replace("kafka:9092", kafka).replace("'vigil.monitor.matches'", f"'{topic}'")
    text = text.replace("http://vigil:API_KEY@vigil-api:8420", registry)
    text = "\n".join(line for line in text.splitlines() if not line.startswith("--"))
    queue, target, view = [s.strip() for s in text.split(";") if s.strip()]
    clickhouse.command(f"EXPLAIN AST {queue}")  # parses, engine and settings included
    columns = re.search(r"\((.*)\) ENGINE = Kafka", queue, re.S)
    assert columns is not None

    reader = KafkaConsumer(
        topic, bootstrap_servers=kafka, auto_offset_reset="earliest", consumer_timeout_ms=3_000
    )
    records = tmp_path / "matches.avro"  # the topic's messages, as the Kafka engine gets them
    records.write_bytes(b"".join(r.value for r in reader))
    reader.close()
    clickhouse.command(target)
    structure = " ".join(columns[1].split())
    select = view.split(" AS\n", 1)[1].replace(
        "FROM vigil_matches_queue",
        f"FROM file('{records}', 'AvroConfluent', '{structure}')",
    )
    clickhouse.command(
        f"INSERT INTO vigil_matches {select}",
        settings={"format_avro_schema_registry_url": registry},
    )
    rows = clickhouse.query(
        "SELECT monitor_id, severity, block_number, toUnixTimestamp(block_time), "
        "matched_addresses FROM vigil_matches ORDER BY block_number"
    ).result_rows
    sample = _matches()[0]
    assert rows == [
        ("usdc", "medium", 18_000_000, sample["timestamp"], sample["matchedAddresses"]),
        ("drain", "high", 18_000_001, sample["timestamp"], sample["matchedAddresses"]),
    ]
