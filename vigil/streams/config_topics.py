"""Config topic I/O: read the applied objects, publish changes in one Kafka transaction.

`vigil apply`, pause and resume write here; `live_config` follows the same topics.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kafka.errors import KafkaError

from vigil.clock import SYSTEM, Clock
from vigil.config.loader import (
    Project,
    channel_from_data,
    cross_check,
    load_project_config,
    monitor_from_data,
    routed,
    task_from_data,
    with_contracts,
)
from vigil.config.state import (
    SCHEMA,
    TOPICS,
    VERSIONS_TOPIC,
    Change,
    Key,
    Planned,
    channel_from_record,
    channel_spec,
    monitor_from_record,
    monitor_spec,
    plan,
    task_spec,
    with_paused,
)
from vigil.errors import BrokerError, ConfigError, NotFound
from vigil.processors.checks import check_monitor
from vigil.processors.hooks import HOOKED_KINDS
from vigil.schemas.codec import Codec
from vigil.settings import Settings
from vigil.streams.hooks import before_apply
from vigil.streams.kafka import producer, read_compacted


def read_current(settings: Settings, bootstrap: str, codec: Codec) -> dict[Key, dict[str, Any]]:
    """The live record per object (deleted objects left out), read from the config topics."""
    current: dict[Key, dict[str, Any]] = {}
    for kind, suffix in TOPICS.items():
        topic = settings.topic(suffix)
        for key, value in read_compacted(settings, bootstrap, topic, read_committed=True).items():
            record = codec.decode(value, SCHEMA, where=f"{topic} key {key.decode()!r}")
            if record["action"] != "delete":
                current[(kind, record["id"])] = record
    return current


def publish(
    settings: Settings,
    bootstrap: str,
    codec: Codec,
    changes: Iterable[Change],
    clock: Clock = SYSTEM,
) -> list[Change]:
    """Write ``changes`` in one Kafka transaction: readers see all of them or none, after
    the applied ``before: apply`` hooks, which may rewrite the monitor and channel changes'
    specs (checked again here) or refuse them all (a ConfigError naming the hook)."""
    batch = _hooked(settings, bootstrap, codec, list(changes))
    if not batch:
        return batch
    sink = producer(settings, bootstrap, transactional_id=f"vigil-config-{uuid.uuid4().hex}")
    try:
        sink.init_transactions()
        sink.begin_transaction()
        at = clock.ms()
        for change in batch:
            topic = settings.topic(TOPICS[change.kind])
            value = codec.encode(topic, SCHEMA, change.record(at))
            sink.send(topic, key=change.id.encode(), value=value)
            if change.kind == "task" and change.action == "upsert":
                versions = settings.topic(VERSIONS_TOPIC)
                kept = codec.encode(versions, SCHEMA, change.record(at))
                sink.send(versions, key=f"{change.id}:{change.version}".encode(), value=kept)
        sink.commit_transaction()
    except KafkaError as exc:
        raise BrokerError(f"publishing {len(batch)} config change(s) failed: {exc}") from exc
    finally:
        sink.close()
    return batch


def _hooked(settings: Settings, bootstrap: str, codec: Codec, batch: list[Change]) -> list[Change]:
    shown = [c for c in batch if c.kind in HOOKED_KINDS]
    if not shown:
        return batch
    given = [
        {"kind": c.kind, "id": c.id, "action": c.action, "source": c.source, "spec": c.spec}
        for c in shown
    ]
    left = before_apply(settings, bootstrap, codec, given)
    if left == given:
        return batch
    changed = {}
    for change, after in zip(shown, left, strict=True):
        spec = after["spec"]
        record = {"id": change.id, "spec": json.dumps(spec), "file": change.file}
        if change.action == "upsert":  # checked again, as the file was
            if change.kind == "monitor":
                check_monitor(monitor_from_record(record).monitor)
            else:
                channel_from_record(record)
        changed[(change.kind, change.id)] = dataclasses.replace(change, spec=spec)
    return [changed.get((c.kind, c.id), c) for c in batch]


def apply_project(
    settings: Settings, bootstrap: str, codec: Codec, project: Project, *, dry_run: bool = False
) -> list[Planned]:
    """Make the config topics say what ``project`` says; returns what it did (or would do)."""
    planned = plan(project, read_current(settings, bootstrap, codec))
    if not dry_run:
        publish(settings, bootstrap, codec, [p.change for p in planned if p.effect != "unchanged"])
    return planned


def applied_monitors(settings: Settings, bootstrap: str, codec: Codec) -> dict[str, dict[str, Any]]:
    """The live config record of each applied monitor, by id."""
    return applied(settings, bootstrap, codec, "monitor")


def applied(
    settings: Settings, bootstrap: str, codec: Codec, kind: str
) -> dict[str, dict[str, Any]]:
    """The live config record of each applied object of ``kind`` (monitor, channel), by id."""
    current = read_current(settings, bootstrap, codec)
    return {key[1]: record for key, record in current.items() if key[0] == kind}


def set_paused(
    settings: Settings, bootstrap: str, codec: Codec, monitor_id: str, paused: bool
) -> bool:
    """Pause or resume an applied monitor; False when it already was. An unknown id is
    NotFound naming the applied ones."""
    monitors = applied_monitors(settings, bootstrap, codec)
    if monitor_id not in monitors:
        raise NotFound(
            f"no applied monitor {monitor_id!r}; applied: {', '.join(sorted(monitors)) or 'none'}"
        )
    record = monitors[monitor_id]
    if json.loads(record["spec"])["config"]["paused"] == paused:
        return False
    publish(
        settings, bootstrap, codec, [with_paused(record, paused, "pause" if paused else "resume")]
    )
    return True


def set_channel_paused(
    settings: Settings, bootstrap: str, codec: Codec, alias: str, paused: bool
) -> list[str]:
    """Pause or resume every applied channel of ``alias``; the ids that changed (none when
    all already were). An unknown alias is NotFound naming the applied ones."""
    channels = applied(settings, bootstrap, codec, "channel")
    mine = {
        channel_id: record
        for channel_id, record in channels.items()
        if json.loads(record["spec"])["config"]["alias"] == alias
    }
    if not mine:
        known = sorted({json.loads(r["spec"])["config"]["alias"] for r in channels.values()})
        raise NotFound(f"no applied channel alias {alias!r}; applied: {', '.join(known) or 'none'}")
    changes = [
        with_paused(record, paused, "pause" if paused else "resume", kind="channel")
        for record in mine.values()
        if json.loads(record["spec"])["config"].get("paused", False) != paused
    ]
    if changes:
        publish(settings, bootstrap, codec, changes)
    return sorted(change.id for change in changes)


def put_object(settings: Settings, bootstrap: str, codec: Codec, change: Change) -> str:
    """Write one object (created, updated, or unchanged when its version is the same)."""
    current = read_current(settings, bootstrap, codec).get((change.kind, change.id))
    if current is not None and current["version"] == change.version:
        return "unchanged"
    publish(settings, bootstrap, codec, [change])
    return "updated" if current is not None else "created"


def monitor_change(
    settings: Settings, bootstrap: str, codec: Codec, monitor_id: str, data: Any
) -> Change:
    """The upsert of the monitor ``data`` (a monitor file's content as JSON) under
    ``monitor_id``, checked as `vigil apply` checks files: against the project's networks
    and defaults and the applied channels, its conditions compiled. Errors are ConfigErrors
    naming the field."""
    origin = Path(f"PUT /monitors/{monitor_id}")
    config = load_project_config(settings.project_dir)
    loaded = monitor_from_data(data, origin, monitor_id, abi_files=False)
    monitor = routed(with_contracts(loaded, config, settings.project_dir), config)
    if monitor.id != monitor_id:
        raise ConfigError(
            f"the id {monitor.id!r} differs from the path's {monitor_id!r}",
            file=str(origin),
            field="id",
        )
    channels = applied(settings, bootstrap, codec, "channel").values()
    aliases = {json.loads(record["spec"])["config"]["alias"] for record in channels}
    tasks = set(applied(settings, bootstrap, codec, "task"))
    cross_check(monitor, config, aliases, "the applied channels are", tasks=tasks)
    check_monitor(monitor)
    project = Project(settings.project_dir, config, [monitor], {}, [])
    return Change("monitor", monitor_id, "upsert", monitor_spec(monitor, project), "api")


def task_change(
    settings: Settings,
    bootstrap: str,
    codec: Codec,
    task_id: str,
    data: Any,
    files: dict[str, bytes],
    origin: str,
) -> Change:
    """The upsert of a task given whole (its definition and its files), checked as `vigil
    apply` checks a project's tasks, its failure channels against the applied ones."""
    channels = applied(settings, bootstrap, codec, "channel").values()
    aliases = {json.loads(record["spec"])["config"]["alias"] for record in channels}
    task = task_from_data(data, Path(origin), task_id, files, aliases)
    return Change("task", task_id, "upsert", task_spec(task), "deploy", origin)


def channel_change(channel_id: str, data: Any) -> Change:
    """The upsert of the channel ``data`` (a channel file's content as JSON)."""
    channel = channel_from_data(data, Path(f"PUT /channels/{channel_id}"), channel_id)
    return Change("channel", channel_id, "upsert", channel_spec(channel), "api")


def _names(monitor: dict[str, Any], name: str) -> bool:
    """Whether a monitor's config names a channel alias or task id ``name``."""
    return name in monitor["channels"] or name in monitor.get("tasks", [])


def delete_object(
    settings: Settings, bootstrap: str, codec: Codec, kind: str, object_id: str
) -> None:
    """Remove an applied monitor or channel; a channel a monitor still names is refused."""
    current = read_current(settings, bootstrap, codec)
    record = current.get((kind, object_id))
    if record is None:
        known = sorted(i for k, i in current if k == kind)
        raise NotFound(f"no applied {kind} {object_id!r}; applied: {', '.join(known) or 'none'}")
    if kind in ("channel", "task"):
        config = json.loads(record["spec"])["config"]
        name = config["alias"] if kind == "channel" else object_id
        users = sorted(
            i
            for (k, i), r in current.items()
            if k == "monitor" and _names(json.loads(r["spec"])["config"], name)
        )
        if users:
            raise ConfigError(
                f"{kind} {object_id!r} ({name!r}) is named by monitor(s) "
                f"{', '.join(users)}; change or delete them first"
            )
    publish(settings, bootstrap, codec, [Change(kind, object_id, "delete", None, "api")])
