"""The worker's view of the applied configuration: it follows the config topics and swaps in
a new immutable snapshot (matcher, channels) after every change, without a restart."""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from kafka import TopicPartition

from vigil.config.loader import LoadedChannel
from vigil.config.models import FortaMonitorConfig, HookConfig, MonitorConfig
from vigil.config.state import (
    SCHEMA,
    TOPICS,
    AppliedMonitor,
    channel_from_record,
    monitor_from_record,
)
from vigil.errors import BrokerError, SerializationError, VigilError
from vigil.processors.forta import FortaMatcher, FortaMonitor
from vigil.processors.matching import CompiledMonitor, Matcher, compile_monitor
from vigil.schemas.codec import Codec
from vigil.settings import Settings
from vigil.streams.kafka import consumer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    """What the agents read for one record; replaced whole, never mutated."""

    matcher: Matcher
    forta: FortaMatcher = field(default_factory=lambda: FortaMatcher([]))
    extra_depth: dict[str, int] = field(default_factory=dict)
    channels: dict[str, list[LoadedChannel]] = field(default_factory=dict)  # by alias
    versions: dict[tuple[str, str], str] = field(default_factory=dict)
    by_id: dict[str, LoadedChannel] = field(default_factory=dict)
    monitors: dict[str, AppliedMonitor] = field(default_factory=dict)
    tasks: frozenset[str] = frozenset()  # applied, unpaused task ids (monitors trigger them)
    # tasks bound to operations (hooks): id → (its hooks, its spec: config, files, version)
    hooks: dict[str, list[HookConfig]] = field(default_factory=dict)
    hook_specs: dict[str, dict[str, Any]] = field(default_factory=dict)


def _extra_depth(applied: AppliedMonitor) -> int:
    """Blocks a monitor waits beyond its network's emission level before it is notified."""
    config = applied.monitor.config
    if not isinstance(config, MonitorConfig):
        return 0  # Forta monitors have no blocks to wait for
    wanted, level = config.confirm_blocks, applied.network_confirmations
    if isinstance(wanted, int) and isinstance(level, int) and wanted > level:
        return wanted - level
    return 0


class LiveConfig:
    """Reads the config topics from the start (no consumer group: every worker sees all)."""

    def __init__(self, settings: Settings, bootstrap: str, codec: Codec) -> None:
        self.codec = codec
        self.topics = {settings.topic(suffix): kind for kind, suffix in TOPICS.items()}
        # contract monitors carry their compiled form; Forta monitors carry None
        self.monitors: dict[str, tuple[AppliedMonitor, CompiledMonitor | None]] = {}
        self.channels: dict[str, LoadedChannel] = {}
        self.tasks: set[str] = set()
        self.hook_specs: dict[str, dict[str, Any]] = {}
        self.versions: dict[tuple[str, str], str] = {}
        self.snapshot = Snapshot(Matcher([]))
        self.rejected = 0
        self.stopping = threading.Event()
        self._consumer = consumer(
            settings,
            bootstrap,
            isolation_level="read_committed",  # an apply is seen whole or not at all
            fetch_max_wait_ms=50,
            client_id="vigil-worker-config",
        )
        partitions = [
            TopicPartition(topic, p)
            for topic in self.topics
            for p in sorted(self._consumer.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            raise BrokerError(
                f"config topics {', '.join(self.topics)} do not exist; run `vigil up`"
            )
        self._consumer.assign(partitions)
        self._consumer.seek_to_beginning(*partitions)
        self._partitions = partitions

    def load(self, timeout: float = 60.0) -> Snapshot:
        """Read every config record there is now; the worker starts matching after this."""
        end = self._consumer.end_offsets(self._partitions)
        deadline = time.monotonic() + timeout
        while any(self._consumer.position(tp) < end[tp] for tp in self._partitions):
            if time.monotonic() > deadline:
                raise BrokerError(f"reading the config topics took over {timeout:.0f} s")
            self._apply_polled(self._consumer.poll(timeout_ms=200))
        self._rebuild()
        log.info(
            "config: %d monitors (%d paused), %d channels",
            len(self.monitors),
            sum(1 for a, _ in self.monitors.values() if a.monitor.config.paused),
            len(self.channels),
        )
        return self.snapshot

    def follow(self) -> None:
        """Apply changes as they come until ``stopping``; run in a thread of the worker."""
        try:
            while not self.stopping.is_set():
                polled = self._consumer.poll(timeout_ms=200)
                if polled and self._apply_polled(polled):
                    self._rebuild()
        finally:
            self._consumer.close()

    def _apply_polled(self, polled: dict[Any, list[Any]]) -> bool:
        changed = False
        for tp, records in polled.items():
            for record in records:
                where = f"{tp.topic}[{tp.partition}]@{record.offset}"
                try:
                    change = self.codec.decode(record.value, SCHEMA, where=where)
                    changed |= self._apply(self.topics[tp.topic], change)
                except (VigilError, SerializationError) as exc:
                    self.rejected += 1
                    log.error("config: %s: rejected, the previous version stays: %s", where, exc)
        return changed

    def _apply(self, kind: str, change: dict[str, Any]) -> bool:
        key = (kind, change["id"])
        if self.versions.get(key) == change["version"]:
            return False
        if kind == "task":  # the runner runs it; the notifier only needs to know it is there
            self.versions[key] = change["version"]
            spec: dict[str, Any] = (
                json.loads(change["spec"]) if change["action"] == "upsert" else {}
            )
            active = bool(spec) and not spec["config"].get("paused")
            if active:
                self.tasks.add(change["id"])
            else:
                self.tasks.discard(change["id"])
            if active and spec["config"].get("hooks"):
                self.hook_specs[change["id"]] = {**spec, "version": change["version"]}
            else:
                self.hook_specs.pop(change["id"], None)
            state = "active" if active else "inactive"
            log.info("config: task %s %s, version %s", change["id"], state, change["version"][:12])
            return True
        if change["action"] == "delete":
            if kind == "monitor":
                self.monitors.pop(change["id"], None)
            else:
                self.channels.pop(change["id"], None)
            self.versions.pop(key, None)
            log.info("config: %s %s deleted (%s)", kind, change["id"], change["source"])
            return True
        if kind == "monitor":
            applied = monitor_from_record(change)
            compiled = (
                None
                if applied.monitor.is_forta
                else compile_monitor(applied.monitor, applied.chain_id)  # may raise ConfigError
            )
            self.monitors[change["id"]] = (applied, compiled)
            state = "paused" if applied.monitor.config.paused else "active"
        else:
            self.channels[change["id"]] = channel_from_record(change)
            state = "paused" if self.channels[change["id"]].config.paused else "set"
        self.versions[key] = change["version"]
        log.info(
            "config: %s %s %s, version %s (%s)",
            kind,
            change["id"],
            state,
            change["version"][:12],
            change["source"],
        )
        return True

    def _rebuild(self) -> None:
        channels: dict[str, list[LoadedChannel]] = {}
        for channel in self.channels.values():
            channels.setdefault(channel.config.alias, []).append(channel)
        forta = [
            FortaMonitor(monitor_id, applied.monitor.config, applied.chain_id)
            for monitor_id, (applied, compiled) in self.monitors.items()
            if compiled is None and isinstance(applied.monitor.config, FortaMonitorConfig)
        ]
        self.snapshot = Snapshot(
            Matcher(compiled for _, compiled in self.monitors.values() if compiled is not None),
            FortaMatcher(forta),
            {mid: d for mid, (a, _) in self.monitors.items() if (d := _extra_depth(a))},
            channels,
            dict(self.versions),
            dict(self.channels),
            {monitor_id: applied for monitor_id, (applied, _) in self.monitors.items()},
            frozenset(self.tasks),
            {
                task_id: [HookConfig.model_validate(h) for h in spec["config"]["hooks"]]
                for task_id, spec in self.hook_specs.items()
            },
            dict(self.hook_specs),
        )
