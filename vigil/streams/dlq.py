"""The dead-letter topic: records that failed, with the error, ready to be sent again."""

from __future__ import annotations

import logging
from typing import Any

from vigil.clock import SYSTEM, Clock
from vigil.errors import NotFound, VigilError
from vigil.schemas.codec import Codec
from vigil.schemas.records import MatchBatch
from vigil.settings import Settings
from vigil.streams.kafka import producer, read_compacted

log = logging.getLogger(__name__)


def dead_letter(
    *,
    id: str,
    source: str,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    error: str,
    schema: str | None,
    payload: bytes | None,
    clock: Clock = SYSTEM,
) -> dict[str, Any]:
    return {
        "id": id,
        "source": source,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "key": key,
        "error": error[:4000],
        "payloadSchema": schema,
        "payload": payload,
        "at": clock.ms(),
    }


class DeadLetters:
    """Sends DeadLetter records from Faust agents (to a Faust topic) and counts them."""

    def __init__(self, topic: Any, codec: Codec) -> None:
        self.topic, self.codec, self.sent = topic, codec, 0

    async def send(self, record: dict[str, Any]) -> None:
        value = self.codec.encode(self.topic.get_topic_name(), "DeadLetter", record)
        await self.topic.send(key=record["id"].encode(), value=value)
        self.sent += 1
        log.error("dead letter %s from %s: %s", record["id"], record["source"], record["error"])


def dead_letters(settings: Settings, bootstrap: str, codec: Codec) -> list[dict[str, Any]]:
    """The dead letters kept now (the topic's latest record per id)."""
    topic = settings.topic("dlq")
    return [
        codec.decode(value, "DeadLetter", where=topic)
        for value in read_compacted(settings, bootstrap, topic).values()
    ]


def find_delivery(
    letters: list[dict[str, Any]], wanted: str, codec: Codec
) -> dict[str, Any] | None:
    """The dead letter of request ``wanted``, or the one that carries delivery ``wanted``."""
    for letter in letters:
        if letter["id"] == wanted and letter["payload"] is not None:
            return letter
    for letter in letters:
        if letter["payloadSchema"] != "MatchBatch" or letter["payload"] is None:
            continue
        batch = codec.decode(letter["payload"], "MatchBatch")
        if any(f"{m['id']}:{batch['channel']}" == wanted for m in batch["matches"]):
            return letter
    return None


def resend(settings: Settings, bootstrap: str, codec: Codec, wanted: str) -> MatchBatch:
    """Put the failed delivery ``wanted`` (its id or request id) back on its topic; the
    worker sends it once more (what was delivered before is not sent again: keyed)."""
    letter = find_delivery(dead_letters(settings, bootstrap, codec), wanted, codec)
    if letter is None:
        raise NotFound(
            f"no dead letter for {wanted!r}; `vigil deliveries --failed` lists the failed ones"
        )
    if letter["payloadSchema"] != "MatchBatch":
        raise VigilError(
            f"{wanted!r} is a {letter['payloadSchema'] or 'raw'} record from {letter['topic']}, "
            "not a delivery; it cannot be resent by hand"
        )
    sink = producer(settings, bootstrap, client_id="vigil-retry")
    try:
        sink.send(letter["topic"], key=letter["key"], value=letter["payload"]).get(timeout=30)
    finally:
        sink.close()
    batch: MatchBatch = codec.decode(letter["payload"], "MatchBatch")
    return batch
