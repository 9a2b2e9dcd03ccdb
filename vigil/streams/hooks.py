"""Hooks on notifications: ``before`` hooks run in the notify agent, inside the delivery
(their answer can rewrite or veto it); ``after`` hooks run in `vigil runner`, from the
delivery records on ``notify.deliveries``, and only observe. The rules are
``processors.hooks``'; the runs are the task sandbox's, each recorded on ``tasks.runs``
(trigger ``hook``).

A ``before`` hook runs in a thread (``asyncio.to_thread``), so the worker's other agents go
on while it runs; the delivery it belongs to waits for it, as the hook decides what is
sent. Its run id is the delivery's request id and the task's, so a redelivered batch runs
it again under the same id (the notification was not sent: it is decided again).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka import TopicPartition

from vigil.clock import SYSTEM, Clock
from vigil.config.loader import LoadedChannel
from vigil.config.message import parsed
from vigil.config.models import HookConfig
from vigil.config.state import SCHEMA, TOPICS
from vigil.connectors.notify.delivery import Messages
from vigil.connectors.tasks.kv import StoreApi
from vigil.connectors.tasks.runner import Limits, run, run_record
from vigil.errors import ConfigError, VigilError
from vigil.processors.hooks import (
    HOOKED_KINDS,
    HookAnswerError,
    bound,
    replaced,
    replaced_changes,
    replaced_transaction,
)
from vigil.schemas.catalogue import RELAYERS_TOPIC
from vigil.schemas.codec import Codec, millis
from vigil.settings import Settings
from vigil.streams.kafka import Followed, commit, consumer, producer, read_compacted, subscribe
from vigil.streams.task_kv import TopicStore

log = logging.getLogger(__name__)
# the relayer transaction records after hooks see: on the chain, and how each ends
AFTER_RELAY = frozenset({"submitted", "mined", "confirmed", "failed", "expired"})


@dataclass(frozen=True)
class Vetoed:
    """A before hook stopped the delivery: which task, and why."""

    task_id: str
    reason: str


def hook_event(
    task_id: str, spec: dict[str, Any], run_id: str, body: Any, secrets: dict[str, str]
) -> dict[str, Any]:
    return {
        "request": {"body": body, "headers": {}, "queryParameters": {}},
        "secrets": secrets,
        "taskId": task_id,
        "taskName": spec["config"]["name"],
        "runId": run_id,
        "trigger": "hook",
    }


def _files(spec: dict[str, Any]) -> dict[str, bytes]:
    return {name: base64.b64decode(data) for name, data in spec["files"].items()}


def _limits(spec: dict[str, Any]) -> Limits:
    return Limits(timeout=spec["config"]["timeout"], memory_mb=spec["config"]["memory_mb"])


class BeforeNotify:
    """The before-notify hooks of the worker's notifier."""

    def __init__(self, app: Any, settings: Settings, codec: Codec, clock: Clock = SYSTEM):
        self.settings, self.codec, self.clock = settings, codec, clock
        self.runs = app.topic(settings.topic("tasks.runs"))
        self.secrets = {n: v.get_secret_value() for n, v in settings.secrets.items()}
        self._store: TopicStore | None = None

    def store(self) -> TopicStore:
        """The tasks' store, made at the first hook (a worker without hooks needs none)."""
        if self._store is None:
            bootstrap = self.settings.kafka_bootstrap or ""
            max_items = self.settings.task_kv_max_items
            self._store = TopicStore(self.settings, bootstrap, max_items=max_items)
        return self._store

    async def apply(
        self,
        snapshot: Any,
        channel: LoadedChannel,
        request_id: str,
        events: list[dict[str, Any]],
        messages: Messages,
    ) -> tuple[list[dict[str, Any]], Messages] | Vetoed:
        """The events and messages to send, as the channel's before hooks leave them."""
        ids = bound(snapshot.hooks, "before", "notify", channel.config.alias)
        if not ids:
            return events, messages
        payload: dict[str, Any] = {
            "operation": "notify",
            "channel": {
                "id": channel.id,
                "alias": channel.config.alias,
                "type": channel.config.type,
            },
            "subject": messages.subject.source,
            "message": messages.body.source,
            "events": events,
        }
        for task_id in ids:
            spec = snapshot.hook_specs[task_id]
            run_id = f"hook:{request_id}:{task_id}"
            event = hook_event(task_id, spec, run_id, payload, self.secrets)
            started = self.clock.ms()
            store = await asyncio.to_thread(self.store)
            outcome = await asyncio.to_thread(
                run, _files(spec), event, StoreApi(store), _limits(spec), self.secrets
            )
            if outcome.status == "success":
                try:
                    payload = replaced(payload, outcome.result)
                except HookAnswerError as exc:
                    outcome = outcome.failed("HookAnswerError", str(exc))
            record = run_record(
                run_id, task_id, spec["version"], "hook", outcome, started, self.clock.ms()
            )
            await self.runs.send(
                key=run_id.encode(),
                value=self.codec.encode(self.runs.get_topic_name(), "TaskRun", record),
            )
            if outcome.status != "success":
                reason = f"{outcome.error_type}: {outcome.error_message}"
                log.info("delivery %s vetoed by hook %s: %s", request_id, task_id, reason)
                return Vetoed(task_id, reason)
        return payload["events"], Messages(parsed(payload["subject"]), parsed(payload["message"]))


def applied_hooks(
    settings: Settings, bootstrap: str, codec: Codec
) -> dict[str, tuple[list[HookConfig], dict[str, Any], str]]:
    """The applied, unpaused tasks that have hooks: id → (hooks, spec, version)."""
    topic = settings.topic(TOPICS["task"])
    return _hooked_tasks(read_compacted(settings, bootstrap, topic, read_committed=True), codec)


def _hooked_tasks(
    values: dict[bytes, bytes], codec: Codec
) -> dict[str, tuple[list[HookConfig], dict[str, Any], str]]:
    found = {}
    for key, value in values.items():
        record = codec.decode(value, SCHEMA, where=f"task {key.decode()}")
        if record["action"] != "upsert" or not record["spec"]:
            continue
        spec = json.loads(record["spec"])
        if spec["config"].get("hooks") and not spec["config"].get("paused"):
            hooks = [HookConfig.model_validate(h) for h in spec["config"]["hooks"]]
            found[record["id"]] = (hooks, spec, record["version"])
    return found


def before_apply(
    settings: Settings, bootstrap: str, codec: Codec, changes: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Run the ``before: apply`` hooks (by task id) on monitor and channel ``changes``
    (``{kind, id, action, source, spec}``); the changes as they leave them. A hook that
    raises, or answers something else, refuses the apply: a ConfigError naming it."""
    hooked = applied_hooks(settings, bootstrap, codec)
    ids = bound({t: h for t, (h, _, _) in hooked.items()}, "before", "apply")
    if not ids:
        return changes
    secrets = {n: v.get_secret_value() for n, v in settings.secrets.items()}
    sink = producer(settings, bootstrap, client_id="vigil-hooks", linger_ms=0)
    store = TopicStore(settings, bootstrap, max_items=settings.task_kv_max_items)
    try:
        for task_id in ids:
            _, spec, version = hooked[task_id]
            run_id = f"hook:apply:{uuid.uuid4().hex}:{task_id}"
            payload = {"operation": "apply", "changes": changes}
            event = hook_event(task_id, spec, run_id, payload, secrets)
            started = SYSTEM.ms()
            outcome = run(_files(spec), event, StoreApi(store), _limits(spec), secrets)
            if outcome.status == "success":
                try:
                    changes = replaced_changes(changes, outcome.result)
                except HookAnswerError as exc:
                    outcome = outcome.failed("HookAnswerError", str(exc))
            runs = settings.topic("tasks.runs")
            record = run_record(run_id, task_id, version, "hook", outcome, started, SYSTEM.ms())
            sink.send(runs, key=run_id.encode(), value=codec.encode(runs, "TaskRun", record))
            if outcome.status != "success":
                raise ConfigError(
                    f"the hook {task_id} refused the change(s): "
                    f"{outcome.error_type}: {outcome.error_message}"
                )
    finally:
        sink.close()
        store.close()
    return changes


class HookVeto(VigilError):
    """A ``before`` hook refused the operation: which task, and why."""

    def __init__(self, task_id: str, reason: str) -> None:
        super().__init__(f"hook {task_id}: {reason}")
        self.task_id, self.reason = task_id, reason


class BeforeRelay:
    """The ``before: relay`` hooks of the relayer owner: each runs, in task-id order, on a
    transaction request about to be signed; its answer may replace fields of the request
    (checked again by the owner), and a raise (or a bad answer) refuses the transaction."""

    def __init__(self, settings: Settings, bootstrap: str, codec: Codec, clock: Clock = SYSTEM):
        self.settings, self.bootstrap, self.codec, self.clock = settings, bootstrap, codec, clock
        self.runs = settings.topic("tasks.runs")
        self.tasks = Followed(
            settings, bootstrap, settings.topic(TOPICS["task"]), read_committed=True
        )
        self._store: TopicStore | None = None
        self._sink: Any = None

    def start(self) -> None:
        threading.Thread(target=self.tasks.follow, name="hooks-relay", daemon=True).start()

    def apply(
        self, relayer_name: str, relayer_id: str, tx_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """The request as the relayer's before hooks leave it; HookVeto when one refuses."""
        hooked = _hooked_tasks(self.tasks.values, self.codec)
        hooks = {task_id: found[0] for task_id, found in hooked.items()}
        ids = bound(hooks, "before", "relay", relayer_name, relayer_id)
        if not ids:
            return body
        if self._store is None:
            max_items = self.settings.task_kv_max_items
            self._store = TopicStore(self.settings, self.bootstrap, max_items=max_items)
            self._sink = producer(self.settings, self.bootstrap, client_id="vigil-hooks")
        secrets = {n: v.get_secret_value() for n, v in self.settings.secrets.items()}
        for task_id in ids:
            _, spec, version = hooked[task_id]
            run_id = f"hook:relay:{tx_id}:{task_id}"
            payload = {
                "operation": "relay",
                "relayer": {"relayerId": relayer_id, "name": relayer_name},
                "transactionId": tx_id,
                "transaction": body,
            }
            event = hook_event(task_id, spec, run_id, payload, secrets)
            started = self.clock.ms()
            outcome = run(_files(spec), event, StoreApi(self._store), _limits(spec), secrets)
            if outcome.status == "success":
                try:
                    body = replaced_transaction(body, outcome.result)
                except HookAnswerError as exc:
                    outcome = outcome.failed("HookAnswerError", str(exc))
            record = run_record(run_id, task_id, version, "hook", outcome, started, self.clock.ms())
            value = self.codec.encode(self.runs, "TaskRun", record)
            self._sink.send(self.runs, key=run_id.encode(), value=value).get(30)
            if outcome.status != "success":
                raise HookVeto(task_id, f"{outcome.error_type}: {outcome.error_message}")
        return body

    def close(self) -> None:
        self.tasks.stopping.set()
        if self._store is not None:
            self._store.close()
            self._sink.close()


class AfterHooks:
    """The ``after`` hooks, in `vigil runner`: each delivery record (``after: notify``) and
    each monitor or channel change record (``after: apply``) goes to the tasks bound after
    it. They observe; nothing waits on them, and a failing one changes nothing."""

    def __init__(self, settings: Settings, bootstrap: str, codec: Codec, clock: Clock = SYSTEM):
        self.settings, self.bootstrap, self.codec, self.clock = settings, bootstrap, codec, clock
        self.source = settings.topic("notify.deliveries")
        self.relayed = settings.topic("relayer.transactions")
        self.applied = {settings.topic(TOPICS[kind]): kind for kind in HOOKED_KINDS}
        self.runs = settings.topic("tasks.runs")
        self.tasks = Followed(
            settings, bootstrap, settings.topic(TOPICS["task"]), read_committed=True
        )
        self.channels = Followed(
            settings, bootstrap, settings.topic(TOPICS["channel"]), read_committed=True
        )
        self.relayers = Followed(settings, bootstrap, settings.topic(RELAYERS_TOPIC))
        self.stopping = threading.Event()
        self.ready = threading.Event()  # set once the group gave it its partitions
        self.since_ms = process_started_ms()
        self.ran = 0

    def run(self) -> None:
        for followed in (self.tasks, self.channels, self.relayers):
            threading.Thread(target=followed.follow, daemon=True).start()
        reader = consumer(
            self.settings,
            self.bootstrap,
            group_id=self.settings.group("hooks-after"),
            auto_offset_reset="latest",  # a new runner observes from now on
            max_poll_interval_ms=20 * 60 * 1000,
            client_id="vigil-hooks",
            isolation_level="read_committed",  # an apply is seen whole, or not at all
        )
        subscribe(reader, [self.source, self.relayed, *self.applied])
        sink = producer(self.settings, self.bootstrap, client_id="vigil-hooks", linger_ms=0)
        max_items = self.settings.task_kv_max_items
        self.store = TopicStore(self.settings, self.bootstrap, max_items=max_items)
        known: set[TopicPartition] = set()
        try:
            while not self.stopping.is_set():
                polled = reader.poll(timeout_ms=500)
                if reader.assignment() != known:  # partitions new to this runner
                    fresh = self._rewind(reader, reader.assignment() - known)
                    polled = {tp: r for tp, r in polled.items() if tp not in fresh}
                    known = set(reader.assignment())
                for tp, records in polled.items():
                    for record in records:
                        self._observe(sink, tp, record)
                    commit(reader)
                if not self.ready.is_set() and reader.assignment():
                    log.info("after hooks: observing %d partitions", len(reader.assignment()))
                    self.ready.set()
        finally:
            reader.close()
            sink.close()
            self.store.close()
            for followed in (self.tasks, self.channels, self.relayers):
                followed.stopping.set()

    def _rewind(self, reader: Any, new: set[TopicPartition]) -> set[TopicPartition]:
        """Partitions the group never committed start at this process's start, not at their
        end when the group got round to assigning them: what happened while the runner was
        starting is observed too. Returns those partitions (their polled records are read
        again from there)."""
        fresh = {tp for tp in new if reader.committed(tp) is None}
        if not fresh:
            return fresh
        found = reader.offsets_for_times({tp: self.since_ms for tp in fresh})
        for tp in fresh:
            if found.get(tp) is not None:
                reader.seek(tp, found[tp].offset)
        return {tp for tp in fresh if found.get(tp) is not None}

    def _observe(self, sink: Any, tp: TopicPartition, record: Any) -> None:
        where = f"{tp.topic}[{tp.partition}]@{record.offset}"
        if tp.topic in self.applied:
            change = self.codec.decode(record.value, SCHEMA, where=where)
            body = {
                "operation": "apply",
                "change": {
                    "kind": self.applied[tp.topic],
                    **{k: change[k] for k in ("id", "action", "version", "source")},
                    "spec": json.loads(change["spec"]) if change["spec"] else None,
                },
            }
            run_key = f"{change['id']}:{change['version'] or 'deleted'}:{record.offset}"
            self._run_all(sink, "apply", run_key, body)
            return
        if tp.topic == self.relayed:
            tx = self.codec.decode(record.value, "RelayerTransaction", where=where)
            if tx["status"] in AFTER_RELAY:
                shown = {k: v for k, v in tx.items() if k != "raw"}  # the signed bytes stay
                body = {"operation": "relay", "transaction": shown}
                key = f"{tx['transactionId']}:{tx['status']}:{tx['hash']}"
                self._run_all(sink, "relay", key, body, tx["relayerId"], *self._relayer(tx))
            return
        delivery = self.codec.decode(record.value, "Delivery", where=where)
        if delivery["monitorId"].startswith("task:"):
            return  # a task's own notification: hooks watch what monitors send
        body = {"operation": "notify", "delivery": {**delivery, "at": millis(delivery["at"])}}
        alias = self._alias(delivery["channel"]) or ""
        self._run_all(sink, "notify", delivery["id"], body, alias)

    def _run_all(self, sink: Any, operation: str, key: str, body: Any, *names: str) -> None:
        specs = self._hooked()
        hooks = {task_id: spec[0] for task_id, spec in specs.items()}
        for task_id in bound(hooks, "after", operation, *names):
            _, spec, version = specs[task_id]
            run_id = f"hook:after-{operation}:{key}:{task_id}"
            started = self.clock.ms()
            secrets = {n: v.get_secret_value() for n, v in self.settings.secrets.items()}
            event = hook_event(task_id, spec, run_id, body, secrets)
            outcome = run(_files(spec), event, StoreApi(self.store), _limits(spec), secrets)
            value = self.codec.encode(
                self.runs,
                "TaskRun",
                run_record(run_id, task_id, version, "hook", outcome, started, self.clock.ms()),
            )
            sink.send(self.runs, key=run_id.encode(), value=value).get(30)
            self.ran += 1

    def _relayer(self, tx: dict[str, Any]) -> tuple[str, ...]:
        """The relayer's name, for hooks narrowed by name (none when it is unknown)."""
        value = self.relayers.values.get(tx["relayerId"].encode())
        return (json.loads(value)["name"],) if value is not None else ()

    def _hooked(self) -> dict[str, tuple[list[HookConfig], dict[str, Any], str]]:
        return _hooked_tasks(self.tasks.values, self.codec)

    def _alias(self, channel_id: str) -> str | None:
        value = self.channels.values.get(channel_id.encode())
        if value is None:
            return None
        record = self.codec.decode(value, SCHEMA, where=f"channel {channel_id}")
        if not record["spec"]:
            return None
        alias: str = json.loads(record["spec"])["config"]["alias"]
        return alias


def process_started_ms() -> int:
    """When this process started (Linux: /proc), else now."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(
            int(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
        return (boot * 1000) + ticks * 1000 // os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return int(time.time() * 1000)
