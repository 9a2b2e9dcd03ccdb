"""The ingesters' librdkafka producer on the real broker: a key lands on the partition
kafka-python's (and Java's) producer picks for it, and a record the broker refuses makes
the next flush fail instead of vanishing."""

from __future__ import annotations

import pytest
from kafka import TopicPartition
from kafka.admin import NewTopic

from vigil.errors import BrokerError
from vigil.settings import Settings
from vigil.streams.kafka import BatchProducer, admin_client, consumer, producer

pytestmark = pytest.mark.integration


def make_topic(settings: Settings, kafka: str, name: str, partitions: int, **configs: str) -> str:
    topic = settings.topic(name)
    admin = admin_client(settings, kafka)
    try:
        admin.create_topics([NewTopic(topic, partitions, 1, topic_configs=configs)])
    finally:
        admin.close()
    return topic


def partitions_by_key(settings: Settings, kafka: str, topic: str) -> dict[bytes, set[int]]:
    reader = consumer(settings, kafka)
    try:
        tps = [TopicPartition(topic, p) for p in reader.partitions_for_topic(topic) or ()]
        reader.assign(tps)
        reader.seek_to_beginning(*tps)
        end = reader.end_offsets(tps)
        found: dict[bytes, set[int]] = {}
        while any(reader.position(tp) < end[tp] for tp in tps):
            for tp, records in reader.poll(timeout_ms=500).items():
                for record in records:
                    found.setdefault(record.key, set()).add(tp.partition)
        return found
    finally:
        reader.close()


def test_keys_land_where_kafka_python_puts_them(settings: Settings, kafka: str) -> None:
    topic = make_topic(settings, kafka, "partitioning", 7)
    keys = [b"mainnet", b"base"] + [f"mainnet:{n}".encode() for n in range(18_000_000, 18_000_200)]
    fast = BatchProducer(settings, kafka)
    plain = producer(settings, kafka)
    try:
        assert fast.partitions_for(topic) == set(range(7))
        for key in keys:
            fast.send(topic, key=key, value=b"rdkafka")
            plain.send(topic, key=key, value=b"kafka-python")
        fast.flush()
        plain.flush()
    finally:
        fast.close()
        plain.close()
    found = partitions_by_key(settings, kafka, topic)
    assert set(found) == set(keys)
    assert all(len(partitions) == 1 for partitions in found.values()), found
    assert len({p for partitions in found.values() for p in partitions}) == 7  # spread


def test_a_refused_record_fails_the_flush(settings: Settings, kafka: str) -> None:
    topic = make_topic(settings, kafka, "small", 1, **{"max.message.bytes": "2000"})
    sink = BatchProducer(settings, kafka)
    try:
        sink.send(topic, key=b"k", value=b"fits")
        sink.flush()
        sink.send(topic, key=b"k", value=b"x" * 10_000)
        with pytest.raises(BrokerError, match=f"refused a record: {topic}: .*too large"):
            sink.flush()
        sink.send(topic, key=b"k", value=b"fits again")
        sink.flush()  # the failure was reported once; the producer goes on
    finally:
        sink.close()
    assert partitions_by_key(settings, kafka, topic) == {b"k": {0}}
    with pytest.raises(BrokerError, match="no partitions for topic"):
        BatchProducer(settings, kafka).partitions_for(settings.topic("no-such-topic"))
