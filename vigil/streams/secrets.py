"""The sealed secrets' topic: `vigil secrets set` writes, every process reads at start.

A secret set while the stack runs is read by each process at its next start; a secret in
both places counts from ``VIGIL_SECRETS`` (the environment overrides the store).
"""

from __future__ import annotations

from kafka.errors import KafkaError
from pydantic import SecretStr

from vigil.connectors.tasks.secrets import Sealed, parse_key, unseal
from vigil.errors import BrokerError
from vigil.schemas.catalogue import SECRETS_TOPIC
from vigil.settings import Settings
from vigil.streams.kafka import producer, read_compacted


def stored(settings: Settings, bootstrap: str) -> dict[str, Sealed]:
    """Every sealed secret there is, by name."""
    raw = read_compacted(settings, bootstrap, settings.topic(SECRETS_TOPIC))
    return {key.decode(): Sealed.from_bytes(value) for key, value in raw.items()}


def write(settings: Settings, bootstrap: str, name: str, sealed: Sealed | None) -> None:
    """Keep ``sealed`` under ``name`` (None: delete it), acknowledged by the brokers."""
    sink = producer(settings, bootstrap, client_id="vigil-secrets", linger_ms=0)
    try:
        value = None if sealed is None else sealed.to_bytes()
        sink.send(settings.topic(SECRETS_TOPIC), key=name.encode(), value=value).get(30)
    except KafkaError as exc:
        raise BrokerError(f"writing secret {name!r} failed: {exc}") from exc
    finally:
        sink.close()


def with_stored_secrets(
    settings: Settings, bootstrap: str, raw: dict[bytes, bytes] | None = None
) -> Settings:
    """``settings`` whose secrets are the store's (opened with VIGIL_SECRETS_KEY) and then
    VIGIL_SECRETS's; unchanged when no key is set. ``raw``: the topic's records as a
    follower holds them (else the topic is read now)."""
    if settings.secrets_key is None:
        return settings
    key = parse_key(settings.secrets_key.get_secret_value())
    found = (
        stored(settings, bootstrap)
        if raw is None
        else {k.decode(): Sealed.from_bytes(v) for k, v in raw.items()}
    )
    opened = {name: unseal(key, sealed) for name, sealed in found.items()}
    merged = {**opened, **{n: v.get_secret_value() for n, v in settings.secrets.items()}}
    return settings.model_copy(update={"secrets": {n: SecretStr(v) for n, v in merged.items()}})
