import socket
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

from vigil.errors import BrokerError, RuntimeDependencyError
from vigil.schemas.catalogue import CATALOGUE
from vigil.settings import Settings, load_settings
from vigil.stack.broker import EmbeddedKafka
from vigil.streams.kafka import ensure_topics

pytestmark = pytest.mark.integration


def test_catalogue_topics_are_created_with_their_configs(settings: Settings, kafka: str) -> None:
    created = ensure_topics(settings, kafka)
    assert {settings.topic(t.suffix) for t in CATALOGUE} <= set(created)
    assert ensure_topics(settings, kafka) == []  # idempotent
    admin = KafkaAdminClient(bootstrap_servers=kafka)
    try:
        [blocks] = admin.describe_topics([settings.topic("chain.blocks")])
        assert len(blocks["partitions"]) == 3
        checkpoints = settings.topic("chain.checkpoints")
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, checkpoints)])
        assert described["topic"][checkpoints]["cleanup.policy"]["value"] == "compact"
    finally:
        admin.close()


def test_a_restarted_broker_keeps_its_data(tmp_path: Path) -> None:
    broker = EmbeddedKafka(load_settings(data_dir=tmp_path))
    bootstrap = broker.start()
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        admin.create_topics([NewTopic("kept", 1, 1)])
        admin.close()
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
        producer.send("kept", b"still here").get(timeout=30)
        producer.close()
    finally:
        broker.stop()
    bootstrap = broker.start()
    try:
        consumer = KafkaConsumer(
            "kept",
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            consumer_timeout_ms=10_000,
        )
        assert [m.value for m in consumer] == [b"still here"]
        consumer.close()
    finally:
        broker.stop()


def test_a_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        broker = EmbeddedKafka(load_settings(data_dir=tmp_path, kafka_port=port))
        with pytest.raises(BrokerError, match=f"port {port} on 127.0.0.1 is in use"):
            broker.start()


def test_missing_jars_and_java_are_clear_errors(tmp_path: Path) -> None:
    no_jars = EmbeddedKafka(load_settings(data_dir=tmp_path, kafka_home=tmp_path))
    with pytest.raises(RuntimeDependencyError, match=r"Kafka broker jars not found.*make install"):
        no_jars.start()
    no_java = EmbeddedKafka(load_settings(data_dir=tmp_path, java="no-such-java"))
    with pytest.raises(RuntimeDependencyError, match="java not found"):
        no_java.start()
