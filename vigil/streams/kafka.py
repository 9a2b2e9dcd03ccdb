"""Kafka plumbing shared by every process: topic creation, producers, compacted-topic reads."""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from vigil.errors import BrokerError
from vigil.schemas.catalogue import CATALOGUE, INTERNAL_TOPICS, MAX_MESSAGE_BYTES
from vigil.settings import Settings

log = logging.getLogger(__name__)


def ensure_topics(settings: Settings, bootstrap: str) -> list[str]:
    """Create every catalogue topic that is missing, with VIGIL_KAFKA_REPLICATION_FACTOR
    replicas and VIGIL_KAFKA_MIN_INSYNC_REPLICAS; returns the names created."""
    replicas = settings.kafka_replication_factor
    durability = {"min.insync.replicas": str(settings.kafka_min_insync_replicas)}
    wanted = [
        NewTopic(
            settings.topic(t.suffix), t.partitions, replicas, topic_configs=t.configs() | durability
        )
        for t in CATALOGUE
    ]
    wanted.extend(
        NewTopic(
            settings.topic(name),
            1,
            replicas,
            topic_configs={"cleanup.policy": "compact"} | durability,
        )
        for name in INTERNAL_TOPICS
    )
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="vigil-admin")
    except (KafkaError, OSError) as exc:
        raise BrokerError(f"cannot reach Kafka at {bootstrap}: {exc}") from exc
    try:
        brokers = len(admin.describe_cluster().get("brokers") or [])
        if brokers and replicas > brokers:
            raise BrokerError(
                f"VIGIL_KAFKA_REPLICATION_FACTOR is {replicas}, but the cluster at {bootstrap} "
                f"has {brokers} broker(s); set it to {brokers} or less"
            )
        if settings.kafka_min_insync_replicas > replicas:
            raise BrokerError(
                f"VIGIL_KAFKA_MIN_INSYNC_REPLICAS ({settings.kafka_min_insync_replicas}) is above "
                f"VIGIL_KAFKA_REPLICATION_FACTOR ({replicas}): no write could be acknowledged"
            )
        existing = set(admin.list_topics())
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            # another process may win the race; the topic is then what we want
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(missing)
        _wait_for_metadata(admin, [t.name for t in missing])
        return [t.name for t in missing]
    finally:
        admin.close()


def _wait_for_metadata(admin: KafkaAdminClient, names: list[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while names and time.monotonic() < deadline:
        if set(names) <= set(admin.list_topics()):
            return
        time.sleep(0.2)


def producer(bootstrap: str, **overrides: Any) -> KafkaProducer:
    """An idempotent producer that waits for all replicas and can carry whole blocks."""
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "acks": "all",
        "enable_idempotence": True,
        "max_request_size": MAX_MESSAGE_BYTES,
        "linger_ms": 5,
        "client_id": "vigil",
    }
    options.update(overrides)
    try:
        return KafkaProducer(**options)
    except (KafkaError, OSError) as exc:
        raise BrokerError(f"cannot reach Kafka at {bootstrap}: {exc}") from exc


def read_compacted(
    bootstrap: str, topic: str, timeout: float = 30.0, *, read_committed: bool = False
) -> dict[bytes, bytes]:
    """The latest value per key of ``topic`` (all partitions), read from the start to the end."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        isolation_level="read_committed" if read_committed else "read_uncommitted",
        fetch_max_bytes=MAX_MESSAGE_BYTES,
        max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
    )
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in partitions]
        if not tps:
            return {}
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        latest: dict[bytes, bytes] = {}
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < end[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise BrokerError(f"reading {topic} to its end took over {timeout:.0f} s")
            for records in consumer.poll(timeout_ms=200).values():
                for record in records:
                    if record.key is None:
                        continue
                    if record.value is None:
                        latest.pop(record.key, None)  # tombstone
                    else:
                        latest[record.key] = record.value
        return latest
    finally:
        consumer.close()
