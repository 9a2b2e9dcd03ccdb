import json

import httpx
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from kafka import KafkaConsumer

from tests.helpers import API_KEY, AUTH, FIXTURES, ApiServer, api_app
from vigil.schemas import loader
from vigil.schemas.catalogue import REGISTRY_TOPIC
from vigil.schemas.codec import Codec
from vigil.schemas.registry import HttpRegistry
from vigil.settings import Settings
from vigil.streams.kafka import ensure_topics, producer
from vigil.streams.registry_log import kafka_backed_store

pytestmark = pytest.mark.integration


def test_stock_confluent_deserializer_reads_vigils_transaction_topic(
    settings: Settings, kafka: str
) -> None:
    ensure_topics(settings, kafka)
    store = kafka_backed_store(settings, kafka, settings.topic(REGISTRY_TOPIC))
    sample = json.loads((FIXTURES / "avro" / "Transaction.json").read_text())
    topic = settings.topic("chain.transactions")
    with ApiServer(api_app(store=store)) as api:
        codec = Codec(HttpRegistry(api.url, headers=AUTH))
        sink = producer(settings, kafka)
        sink.send(
            topic,
            key=b"mainnet:" + sample["hash"].encode(),
            value=codec.encode(topic, "Transaction", sample),
        ).get(timeout=30)
        sink.close()
        consumer = KafkaConsumer(
            topic, bootstrap_servers=kafka, auto_offset_reset="earliest", consumer_timeout_ms=3_000
        )
        [record] = list(consumer)
        consumer.close()
        deserializer = AvroDeserializer(
            SchemaRegistryClient({"url": api.url, "basic.auth.user.info": f"vigil:{API_KEY}"})
        )
        decoded = deserializer(record.value, SerializationContext(topic, MessageField.VALUE))
        assert decoded == sample
        subjects = httpx.get(f"{api.url}/subjects", headers=AUTH).json()
        assert f"{topic}-value" in subjects
        latest = httpx.get(f"{api.url}/subjects/{topic}-value/versions/latest", headers=AUTH).json()
        assert latest["version"] == 1
        assert json.loads(latest["schema"]) == loader.expanded("Transaction")
        missing = httpx.get(f"{api.url}/subjects/nope-value/versions/1", headers=AUTH)
        assert missing.status_code == 404
        assert missing.json()["error_code"] == 40401
        bad = httpx.post(f"{api.url}/subjects/x-value/versions", json={"schema": "{"}, headers=AUTH)
        assert bad.status_code == 422
    # ids survive a restart of the registry: they are kept on a compacted topic
    again = kafka_backed_store(settings, kafka, settings.topic(REGISTRY_TOPIC))
    assert again.subjects() == store.subjects()
    assert again.register(f"{topic}-value", loader.schema_text("Transaction")) == (
        store.register(f"{topic}-value", loader.schema_text("Transaction"))
    )
