"""The tasks' key-value store, event-sourced: every put and delete is a record on the
compacted ``_task-kv`` topic (a delete is a tombstone), written and acknowledged before the
store changes; a store that starts reads the topic back, so items outlive restarts, and then
follows it, so every process's store (the runner's, the worker's hooks', a second runner's)
sees the others' writes within a moment. Concurrent writes of one key: the last in the
topic's order wins everywhere."""

from __future__ import annotations

import json
import threading

from kafka.errors import KafkaError

from vigil.clock import SYSTEM, Clock
from vigil.connectors.tasks.kv import MemoryStore
from vigil.errors import BrokerError
from vigil.schemas.catalogue import TASK_KV_TOPIC
from vigil.settings import Settings
from vigil.streams.kafka import Followed, producer


class TopicStore(MemoryStore):
    """The store of the stack's task runner, kept on its topic."""

    def __init__(
        self, settings: Settings, bootstrap: str, *, max_items: int, clock: Clock = SYSTEM
    ) -> None:
        super().__init__(max_items=max_items, clock=clock)
        self._topic = settings.topic(TASK_KV_TOPIC)
        self._followed = Followed(settings, bootstrap, self._topic)
        self._followed.on_change = self._changed
        for key, value in self._followed.values.items():
            self._changed(key, value)
        threading.Thread(target=self._followed.follow, name="task-kv", daemon=True).start()
        self._sink = producer(settings, bootstrap, client_id="vigil-task-kv", linger_ms=0)

    def _changed(self, key: bytes, value: bytes | None) -> None:
        if value is None:
            self.items.pop(key.decode(), None)
        else:
            item = json.loads(value)
            self.items[key.decode()] = (item["value"], int(item["updatedMs"]))

    def persist(self, key: str, item: tuple[str, int] | None) -> None:
        value = None if item is None else json.dumps({"value": item[0], "updatedMs": item[1]})
        try:
            self._sink.send(
                self._topic, key=key.encode(), value=value.encode() if value else None
            ).get(30)
        except KafkaError as exc:
            raise BrokerError(f"the task store could not keep {key!r}: {exc}") from exc

    def close(self) -> None:
        self._followed.stopping.set()
        self._sink.close()
