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
import time
from typing import Any

from kafka import TopicPartition
from kafka.errors import KafkaError

from vigil.clock import SYSTEM, Clock
from vigil.config.models import ScheduleConfig
from vigil.errors import BrokerError
from vigil.processors.schedules import due, run_id, tick_at
from vigil.schemas.codec import Codec
from vigil.schemas.records import task_request
from vigil.settings import Settings
from vigil.streams.kafka import consumer, producer
from vigil.streams.tasks import applied_tasks

log = logging.getLogger(__name__)


class Ticker:
    """Emits a tick at each multiple of the interval until ``stopping``, while it leads.

    One ticker ticks however many runners run: each joins the consumer group ``ticker`` on
    the one-partition ticks topic, and the member that holds the partition leads. A leader
    starts after the last tick on the topic, and its first tick covers the time since
    (``intervalMs`` is the tick's window), so a restart, or a change of leader, neither
    skips a window nor repeats one. During a change of leader two may tick once each for a
    moment: the run ids the scheduler asks for are deterministic, so nothing runs twice.
    """

    def __init__(self, settings: Settings, bootstrap: str, codec: Codec, clock: Clock = SYSTEM):
        self.settings, self.bootstrap = settings, bootstrap
        self.topic, self.codec, self.clock = settings.topic("scheduler.ticks"), codec, clock
        self.interval_ms = int(settings.tick_interval * 1000)
        self.sink = producer(settings, bootstrap, client_id="vigil-ticker", linger_ms=0)
        self.group = consumer(
            settings,
            bootstrap,
            group_id=settings.group("ticker"),
            enable_auto_commit=False,
            client_id="vigil-ticker",
        )
        # the topic's metadata first: a member that leads the group's assignment without it
        # assigns the partition to nobody (kafka-python's range assignor), and no one ticks
        self.group.partitions_for_topic(self.topic)
        self.group.subscribe([self.topic])
        self.stopping = threading.Event()
        self.last: int | None = None  # the last tick's time, once this ticker leads

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                self.step()
                wait = 0.2
                if self.last is not None:
                    wait = min(
                        wait, max(0.0, (self.last + self.interval_ms - self.clock.ms()) / 1000)
                    )
                self.stopping.wait(wait)
        finally:
            self.close()

    def step(self) -> int | None:
        """Keep the group's membership, and tick if leading and due; the tick's time."""
        self.group.poll(timeout_ms=100)  # membership: joins, heartbeats and rebalances
        partition = TopicPartition(self.topic, 0)
        if partition not in self.group.assignment():
            self.last = None  # not (or no longer) the leader
            return None
        if self.last is None:
            try:
                self.last = self._last_tick(partition)
            except BrokerError as exc:  # no tick until the last one is known: no repeat
                log.warning("scheduler: %s; trying again", exc)
                return None
        at = tick_at(self.clock.ms(), self.interval_ms)
        if self.last is None:  # the first tick ever: from one interval ago
            self.last = at - self.interval_ms
        if at <= self.last:
            return None
        self.tick(at, at - self.last)
        self.last = at
        return at

    def _last_tick(self, partition: TopicPartition) -> int | None:
        """The time of the last tick on the topic (None: there is none), read with a
        consumer of its own; a BrokerError when it cannot be read within 30 s."""
        reader = consumer(self.settings, self.bootstrap, client_id="vigil-ticker-last")
        try:
            reader.assign([partition])
            end = reader.end_offsets([partition])[partition]
            if end == 0:
                return None
            reader.seek(partition, end - 1)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                for records in reader.poll(timeout_ms=500).values():
                    tick = self.codec.decode(records[-1].value, "Tick", where=self.topic)
                    return _ms(tick["at"])
            raise BrokerError(f"the last tick of {self.topic} could not be read in 30 s")
        finally:
            reader.close()

    def tick(self, at: int, window_ms: int) -> None:
        value = self.codec.encode(self.topic, "Tick", {"at": at, "intervalMs": window_ms})
        try:
            self.sink.send(self.topic, key=b"tick", value=value).get(30)
        except KafkaError as exc:  # the next tick's window covers this one's
            log.error("scheduler: tick %s not written: %s", at, exc)
            self.last = None

    def close(self) -> None:
        self.group.close()
        self.sink.close()


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
