"""Replication and min.insync.replicas are settings, checked against the cluster at start."""

from typing import Any

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from vigil.errors import BrokerError
from vigil.settings import Settings
from vigil.streams.kafka import ensure_topics

pytestmark = pytest.mark.integration


def topic_config(kafka: str, topic: str, name: str) -> Any:
    admin = KafkaAdminClient(bootstrap_servers=kafka)
    try:
        found = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        admin.close()
    entries = next(iter(found.values()))[topic]
    entry = entries.get(name)
    return entry.get("value") if isinstance(entry, dict) else entry


def test_topics_carry_min_insync_replicas_and_a_factor_above_the_cluster_is_named(
    settings: Settings, kafka: str
) -> None:
    ensure_topics(settings, kafka)
    assert topic_config(kafka, settings.topic("chain.blocks"), "min.insync.replicas") == "1"
    too_many = settings.model_copy(update={"kafka_replication_factor": 3, "topic_prefix": "rf3"})
    with pytest.raises(BrokerError, match=r"REPLICATION_FACTOR is 3, but the cluster at .* has 1"):
        ensure_topics(too_many, kafka)
    unsafe = settings.model_copy(update={"kafka_min_insync_replicas": 2, "topic_prefix": "isr2"})
    with pytest.raises(BrokerError, match=r"MIN_INSYNC_REPLICAS \(2\) is above"):
        ensure_topics(unsafe, kafka)
