"""The API keys topic: a compacted log of key records (hashes, never secrets), written by
`vigil keys`, followed by every API process so a new or revoked key counts within a second."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from kafka.errors import KafkaError
from pydantic import ValidationError

from vigil.config.access import ApiKey
from vigil.errors import BrokerError
from vigil.schemas.catalogue import API_KEYS_TOPIC
from vigil.settings import Settings
from vigil.streams.kafka import Followed, producer, read_compacted

log = logging.getLogger(__name__)


def publish_key(settings: Settings, bootstrap: str, record: ApiKey) -> None:
    """Write ``record`` (a new key or a revocation) and wait for the brokers to keep it."""
    sink = producer(settings, bootstrap, client_id="vigil-keys", linger_ms=0)
    try:
        value = record.model_dump_json().encode()
        sink.send(settings.topic(API_KEYS_TOPIC), key=record.key_id.encode(), value=value).get(30)
    except KafkaError as exc:
        raise BrokerError(f"writing API key {record.key_id} failed: {exc}") from exc
    finally:
        sink.close()


def read_keys(settings: Settings, bootstrap: str) -> dict[str, ApiKey]:
    """Every key there is, revoked ones included, by key id."""
    return _parsed(read_compacted(settings, bootstrap, settings.topic(API_KEYS_TOPIC)).items())


def _parsed(items: Iterable[tuple[bytes, bytes]]) -> dict[str, ApiKey]:
    found: dict[str, ApiKey] = {}
    for key, value in items:
        try:
            record = ApiKey.model_validate_json(value)
        except ValidationError as exc:
            log.error("API keys: record %r unreadable, ignored: %s", key, exc.errors()[0]["msg"])
            continue
        found[record.key_id] = record
    return found


class KeyRing:
    """The keys the API accepts: the stack's own key, and the topic's, kept up to date
    (``follow`` in a thread)."""

    def __init__(self, settings: Settings, bootstrap: str, stack_key: str | None) -> None:
        self.stack_key = stack_key
        self.topic = Followed(settings, bootstrap, settings.topic(API_KEYS_TOPIC))
        self.stopping, self.follow = self.topic.stopping, self.topic.follow

    def all(self) -> list[ApiKey]:
        """Every key there is, revoked ones included."""
        return list(_parsed(self.topic.values.items()).values())

    def get(self, key_id: str) -> ApiKey | None:
        value = self.topic.values.get(key_id.encode())
        return _parsed([(key_id.encode(), value)]).get(key_id) if value is not None else None
