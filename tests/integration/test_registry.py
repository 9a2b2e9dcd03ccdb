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


def test_compatibility_modes_are_enforced_kept_and_spoken_to_by_confluents_client(
    settings: Settings, kafka: str
) -> None:
    from confluent_kafka.schema_registry import Schema
    from confluent_kafka.schema_registry.error import SchemaRegistryError

    ensure_topics(settings, kafka)
    topic = settings.topic(REGISTRY_TOPIC)
    store = kafka_backed_store(settings, kafka, topic)
    v1 = loader.schema_text("Tick")
    fields = json.loads(v1)
    fields["fields"].append({"name": "zone", "type": "string"})
    required = json.dumps(fields)
    fields["fields"][-1]["default"] = "eu"
    optional = json.dumps(fields)
    with ApiServer(api_app(store=store)) as api:
        client = SchemaRegistryClient({"url": api.url, "basic.auth.user.info": f"vigil:{API_KEY}"})
        client.register_schema("ticks-value", Schema(v1, "AVRO"))
        assert client.get_compatibility() == "BACKWARD"
        assert client.test_compatibility("ticks-value", Schema(required, "AVRO")) is False
        assert client.test_compatibility("ticks-value", Schema(optional, "AVRO")) is True
        with pytest.raises(SchemaRegistryError) as refused:
            client.register_schema("ticks-value", Schema(required, "AVRO"))
        assert refused.value.http_status_code == 409
        assert "reader field missing default value: zone" in refused.value.error_message
        verbose = httpx.post(
            f"{api.url}/compatibility/subjects/ticks-value/versions/latest?verbose=true",
            json={"schema": required},
            headers=AUTH,
        ).json()
        assert verbose["is_compatible"] is False and "zone" in verbose["messages"][0]

        assert client.set_compatibility("ticks-value", "NONE") == {"compatibility": "NONE"}
        assert client.register_schema("ticks-value", Schema(required, "AVRO")) > 0
        own = httpx.get(f"{api.url}/config/other-value", headers=AUTH)
        assert own.status_code == 404 and own.json()["error_code"] == 40408
        inherited = httpx.get(f"{api.url}/config/other-value?defaultToGlobal=true", headers=AUTH)
        assert inherited.json() == {"compatibilityLevel": "BACKWARD"}
        bad = httpx.put(f"{api.url}/config", json={"compatibility": "SIDEWAYS"}, headers=AUTH)
        assert bad.status_code == 422 and bad.json()["error_code"] == 42203
    # the modes are kept on the registry's topic, with the versions
    again = kafka_backed_store(settings, kafka, topic)
    assert again.mode("ticks-value") == "NONE" and again.mode("other-value") == "BACKWARD"
    assert again.versions("ticks-value") == [1, 2]
