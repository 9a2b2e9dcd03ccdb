"""Deferred runs (SPEC C12): a ticker puts a tick on ``scheduler.ticks`` every
VIGIL_TICK_INTERVAL seconds, and the scheduler turns each tick into requests for the
schedules due since the tick before it (``processors.schedules``).

Both run in `vigil runner`. A tick stands for a time (a multiple of the interval), and a
due time's run id is deterministic, so a tick delivered twice, or a second ticker, asks
for runs that are already taken, and nothing runs twice.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from kafka.errors import KafkaError

from vigil.clock import SYSTEM, Clock
from vigil.config.models import ScheduleConfig
from vigil.processors.schedules import due, next_tick, run_id
from vigil.schemas.codec import Codec
from vigil.schemas.records import task_request
from vigil.settings import Settings
from vigil.streams.kafka import consumer, producer
from vigil.streams.tasks import applied_tasks

log = logging.getLogger(__name__)


class Ticker:
    """Emits a tick at each multiple of the interval until ``stopping``."""

    def __init__(self, settings: Settings, bootstrap: str, codec: Codec, clock: Clock = SYSTEM):
        self.topic, self.codec, self.clock = settings.topic("scheduler.ticks"), codec, clock
        self.interval_ms = int(settings.tick_interval * 1000)
        self.sink = producer(settings, bootstrap, client_id="vigil-ticker", linger_ms=0)
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                at = next_tick(self.clock.ms(), self.interval_ms)
                if self.stopping.wait(max(0.0, (at - self.clock.ms()) / 1000)):
                    return
                self.tick(at)
        finally:
            self.sink.close()

    def tick(self, at: int) -> None:
        value = self.codec.encode(self.topic, "Tick", {"at": at, "intervalMs": self.interval_ms})
        try:
            self.sink.send(self.topic, key=b"tick", value=value).get(30)
        except KafkaError as exc:  # the next tick covers the window of this one
            log.error("scheduler: tick %s not written: %s", at, exc)


class Scheduler:
    """Reads the ticks and requests the runs due in each one's window."""

    def __init__(self, settings: Settings, bootstrap: str, codec: Codec, clock: Clock = SYSTEM):
        self.settings, self.bootstrap, self.codec, self.clock = settings, bootstrap, codec, clock
        self.ticks, self.requests = (
            settings.topic("scheduler.ticks"),
            settings.topic("tasks.requests"),
        )
        self.stopping = threading.Event()
        self.requested = 0

    def run(self) -> None:
        ticks = consumer(
            self.settings,
            self.bootstrap,
            group_id=self.settings.group("scheduler"),
            auto_offset_reset="latest",  # a new scheduler starts from now, not from history
            client_id="vigil-scheduler",
        )
        ticks.subscribe([self.ticks])
        sink = producer(self.settings, self.bootstrap, client_id="vigil-scheduler", linger_ms=0)
        try:
            while not self.stopping.is_set():
                for records in ticks.poll(timeout_ms=500).values():
                    for record in records:
                        tick = self.codec.decode(record.value, "Tick", where=self.ticks)
                        self.on_tick(sink, _ms(tick["at"]), int(tick["intervalMs"]))
                    sink.flush()
                    ticks.commit()
        finally:
            ticks.close()
            sink.close()

    def on_tick(self, sink: Any, at: int, interval_ms: int) -> None:
        """Request every run due in ``(at - interval, at]``, each under its own run id."""
        for task_id, task in sorted(
            applied_tasks(self.settings, self.bootstrap, self.codec).items()
        ):
            config = task["config"]
            if config.get("schedule") is None or config.get("paused"):
                continue
            schedule = ScheduleConfig.model_validate(config["schedule"])
            for when in due(schedule, at - interval_ms, at):
                key = run_id(task_id, when)
                request = task_request(
                    key, task_id, "schedule", {"scheduledAt": when}, self.clock.ms()
                )
                value = self.codec.encode(self.requests, "TaskRequest", request)
                sink.send(self.requests, key=key.encode(), value=value)
                self.requested += 1


def _ms(at: Any) -> int:
    """A timestamp-millis field, decoded as a datetime, back to ms."""
    return at if isinstance(at, int) else int(at.timestamp() * 1000)
