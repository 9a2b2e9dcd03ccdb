"""The dead-letter topic: records that failed, with the error, ready to be sent again."""

from __future__ import annotations

import logging
from typing import Any

from vigil.clock import SYSTEM, Clock
from vigil.schemas.codec import Codec

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
