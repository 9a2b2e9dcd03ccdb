"""A downstream consumer of vigil's matches: confluent-kafka with the schema registry that
vigil's API serves, and nothing of vigil imported. It reacts to each match: a line per match,
and a louder one for high and critical severities (replace `react` with your own action).

    pip install 'confluent-kafka[avro,schemaregistry]'
    export VIGIL_KAFKA_BOOTSTRAP=127.0.0.1:9092   # the broker `vigil status` names
    export VIGIL_API_KEY=...                      # a key with registry:read
    python examples/consumers/matches_consumer.py

Settings (environment): VIGIL_KAFKA_BOOTSTRAP, VIGIL_REGISTRY_URL (default
http://127.0.0.1:8420, vigil's API), VIGIL_API_KEY, VIGIL_TOPIC_PREFIX (vigil),
CONSUMER_GROUP (matches-consumer), CONSUMER_MAX (stop after this many; 0 = never).
"""

import os
import sys
from typing import Any

from confluent_kafka import DeserializingConsumer, KafkaError
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import StringDeserializer


def react(match: dict[str, Any]) -> None:
    """What this consumer does with a match: print it; shout for the serious ones."""
    monitor = match["monitor"]
    line = (
        f"{monitor['severity']:>8} {monitor['id']} block {match['blockNumber']} "
        f"tx {match['hash']} on {monitor['network']}"
    )
    if monitor["severity"] in ("high", "critical"):
        line = "ALERT " + line
    print(line, flush=True)


def main() -> int:
    registry = SchemaRegistryClient(
        {
            "url": os.environ.get("VIGIL_REGISTRY_URL", "http://127.0.0.1:8420"),
            # vigil's API takes its key as Basic auth's password
            "basic.auth.user.info": f"vigil:{os.environ.get('VIGIL_API_KEY', '')}",
        }
    )
    consumer = DeserializingConsumer(
        {
            "bootstrap.servers": os.environ["VIGIL_KAFKA_BOOTSTRAP"],
            "group.id": os.environ.get("CONSUMER_GROUP", "matches-consumer"),
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "key.deserializer": StringDeserializer("utf_8"),
            "value.deserializer": AvroDeserializer(registry),
        }
    )
    topic = f"{os.environ.get('VIGIL_TOPIC_PREFIX', 'vigil')}.monitor.matches"
    consumer.subscribe([topic])
    wanted, seen = int(os.environ.get("CONSUMER_MAX", "0")), 0
    try:
        while not wanted or seen < wanted:
            message = consumer.poll(1.0)
            if message is None:
                continue
            if message.error():
                if message.error().code() != KafkaError._PARTITION_EOF:
                    print(f"error: {message.error()}", file=sys.stderr)
                continue
            react(message.value())
            seen += 1
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()  # commits what was read
    return 0


if __name__ == "__main__":
    sys.exit(main())
