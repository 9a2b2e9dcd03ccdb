"""Deferred runs (SPEC C12): a ticker puts a tick on ``scheduler.ticks`` every
VIGIL_TICK_INTERVAL seconds, and the scheduler turns each tick into requests for the
schedules due since the tick before it (``processors.schedules``).

Both run in `vigil runner`. A tick stands for a time (a multiple of the interval), and a
due time's run id is deterministic, so a tick delivered twice, or a second ticker, asks
for runs that are already taken, and nothing runs twice.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from typing import Any

from kafka import TopicPartition
from kafka.errors import KafkaError

from vigil.clock import SYSTEM, Clock
from vigil.config.models import ScheduleConfig
from vigil.processors.schedules import due, run_id, tick_at
from vigil.schemas.catalogue import TICKER_CLAIMS_TOPIC
from vigil.schemas.codec import Codec, millis
from vigil.schemas.records import task_request
from vigil.settings import Settings
from vigil.streams.kafka import commit, consumer, producer, subscribe
from vigil.streams.tasks import applied_tasks

log = logging.getLogger(__name__)


class Ticker:
    """Emits a tick at each multiple of the interval until ``stopping``, while it leads.

    One ticker ticks however many runners run, chosen by the order of the claims log
    (``_ticker-claims``, one partition): a claim names an epoch, and the first claim of the
    epoch after the current one wins, as every ticker reads the same log in the same order.
    A ticker claims the next epoch when no leader has shown life (a tick, or its claim) for
    one and a half intervals, so a leader that goes away is replaced after that lapse, and
    the new leader's first tick covers the time since the last tick (``intervalMs`` is the
    tick's window): a restart, or a change of leader, neither skips a window nor repeats one.
    A leader that was only slow may tick once more before it reads that it was replaced:
    the run ids the scheduler asks for are deterministic, so nothing runs twice.

    (The consumer group's assignment chose the leader before; in CI's busy broker the
    standby sometimes never got the partition after the leader left, so leadership is now
    decided by the log alone.)
    """

    def __init__(self, settings: Settings, bootstrap: str, codec: Codec, clock: Clock = SYSTEM):
        self.settings, self.bootstrap = settings, bootstrap
        self.topic, self.codec, self.clock = settings.topic("scheduler.ticks"), codec, clock
        self.claims = settings.topic(TICKER_CLAIMS_TOPIC)
        self.interval_ms = int(settings.tick_interval * 1000)
        self.lapse_ms = self.interval_ms + max(self.interval_ms // 2, 2000)
        self.id = uuid.uuid4().hex[:12]
        self.sink = producer(settings, bootstrap, client_id="vigil-ticker", linger_ms=0)
        self.reader = consumer(settings, bootstrap, client_id="vigil-ticker")
        ticks, claims = TopicPartition(self.topic, 0), TopicPartition(self.claims, 0)
        self.reader.assign([ticks, claims])
        self._ends = self.reader.end_offsets([ticks, claims])
        self.reader.seek(ticks, max(0, self._ends[ticks] - 1))  # the last tick is enough
        self.reader.seek(claims, 0)  # every epoch, in order
        self.caught_up = False
        self.epoch, self.leader, self.claimed_at = 0, "", 0  # the claims log, as read so far
        self.claiming: int | None = None  # the epoch this ticker claimed, until it is decided
        self.last_seen: int | None = None  # the last tick on the topic
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
        """Read the claims and ticks written since, claim or tick as due; the tick's time."""
        self._read()
        if not self.caught_up:
            return None
        now = self.clock.ms()
        if self.leader != self.id:
            self.last = None
            alive = max(self.last_seen or 0, self.claimed_at)
            if self.claiming is None and (not self.leader or now - alive > self.lapse_ms):
                self._claim(self.epoch + 1, now)
            return None
        at = tick_at(now, self.interval_ms)
        if self.last is None:  # newly leading: from the last tick, or one interval ago
            ticks = TopicPartition(self.topic, 0)
            if self.reader.position(ticks) < self.reader.end_offsets([ticks])[ticks]:
                return None  # the last leader's last ticks are still to be read
            self.last = self.last_seen if self.last_seen is not None else at - self.interval_ms
        if at <= self.last:
            return None
        self.tick(at, at - self.last)
        self.last = at
        return at

    def _read(self) -> None:
        for part, records in self.reader.poll(timeout_ms=100).items():
            for record in records:
                if part.topic == self.topic:
                    tick = self.codec.decode(record.value, "Tick", where=self.topic)
                    self.last_seen = max(self.last_seen or 0, millis(tick["at"]))
                elif record.value is not None:
                    self._on_claim(json.loads(record.value))
        if not self.caught_up:
            self.caught_up = all(self.reader.position(tp) >= end for tp, end in self._ends.items())

    def _on_claim(self, claim: dict[str, Any]) -> None:
        epoch, ticker = int(claim["epoch"]), str(claim["ticker"])
        if epoch == self.epoch + 1:  # the first claim of the next epoch wins
            self.epoch, self.leader, self.claimed_at = epoch, ticker, int(claim["atMs"])
            if ticker == self.id:  # written again, so compaction keeps the winner's
                self._write_claim(epoch, self.claimed_at)
        if self.claiming is not None and self.epoch >= self.claiming:
            if self.leader != self.id:
                log.info("scheduler: ticker %s leads epoch %s", self.leader, self.epoch)
            self.claiming = None

    def _claim(self, epoch: int, now: int) -> None:
        log.info(
            "scheduler: no tick for %s ms; ticker %s claims epoch %s", self.lapse_ms, self.id, epoch
        )
        if self._write_claim(epoch, now):
            self.claiming = epoch

    def _write_claim(self, epoch: int, at_ms: int) -> bool:
        value = json.dumps({"epoch": epoch, "ticker": self.id, "atMs": at_ms}).encode()
        try:
            self.sink.send(self.claims, key=str(epoch).encode(), value=value).get(30)
        except KafkaError as exc:  # tried again at the next step
            log.warning("scheduler: claim of epoch %s not written: %s", epoch, exc)
            return False
        return True

    def tick(self, at: int, window_ms: int) -> None:
        value = self.codec.encode(self.topic, "Tick", {"at": at, "intervalMs": window_ms})
        try:
            self.sink.send(self.topic, key=b"tick", value=value).get(30)
        except KafkaError as exc:  # the next tick's window covers this one's
            log.error("scheduler: tick %s not written: %s", at, exc)
            self.last = None

    def close(self) -> None:
        self.reader.close()
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
        subscribe(ticks, [self.ticks])
        sink = producer(self.settings, self.bootstrap, client_id="vigil-scheduler", linger_ms=0)
        last = 0
        try:
            while not self.stopping.is_set():
                for records in ticks.poll(timeout_ms=500).values():
                    for record in records:
                        tick = self.codec.decode(record.value, "Tick", where=self.ticks)
                        at = millis(tick["at"])
                        if at <= last:  # a replaced leader's last tick: its runs are asked
                            continue
                        self.on_tick(sink, at, int(tick["intervalMs"]))
                        last = at
                    sink.flush()
                    commit(ticks)
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
