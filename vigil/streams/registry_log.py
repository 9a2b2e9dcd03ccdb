"""Keeps the embedded registry's versions and compatibility modes on a compacted topic, as
Confluent keeps them in _schemas."""

from __future__ import annotations

import json

from vigil.schemas.registry import SchemaStore, SchemaVersion
from vigil.settings import Settings
from vigil.streams.kafka import producer, read_compacted


def kafka_backed_store(settings: Settings, bootstrap: str, topic: str) -> SchemaStore:
    """A SchemaStore restored from ``topic`` whose new versions are written there first."""
    sink = producer(settings, bootstrap, client_id="vigil-registry", linger_ms=0)

    def append(version: SchemaVersion) -> None:
        key = f"{version.subject}:{version.version}".encode()
        sink.send(topic, key=key, value=json.dumps(version.as_json()).encode()).get(timeout=30)

    def append_mode(subject: str | None, mode: str) -> None:
        key = f"config:{subject or ''}".encode()
        value = {"subject": subject, "compatibilityLevel": mode}
        sink.send(topic, key=key, value=json.dumps(value).encode()).get(timeout=30)

    store = SchemaStore(append, append_mode)
    saved = [json.loads(v) for v in read_compacted(settings, bootstrap, topic).values()]
    for entry in saved:
        if "compatibilityLevel" in entry:  # a subject's (or the default) compatibility mode
            store.restore_mode(entry["subject"], entry["compatibilityLevel"])
    versions = [e for e in saved if "compatibilityLevel" not in e]
    for entry in sorted(versions, key=lambda e: (e["id"], e["version"])):
        store.restore(
            SchemaVersion(entry["subject"], entry["version"], entry["id"], entry["schema"])
        )
    return store
