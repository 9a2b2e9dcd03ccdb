"""What `vigil status` shows: each process up or down, consumer-group lag per topic, each
network's head and lag, DLQ counts and the last errors in the logs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
from kafka import TopicPartition
from kafka.admin import OffsetSpec
from kafka.errors import KafkaError

from vigil.config.loader import Project
from vigil.errors import ConfigError, RpcError, VigilError
from vigil.schemas.codec import Codec
from vigil.settings import Settings
from vigil.stack.access import api_headers
from vigil.streams.evm.rpc import RpcPool
from vigil.streams.kafka import admin_client, read_compacted

GROUPS = ("worker", "history", "tasks")  # the consumer groups of vigil's roles
LAST_ERRORS = 3  # per log file


def processes(settings: Settings) -> list[dict[str, Any]]:
    """The roles `vigil up` runs (from its status file), each with its pid and whether the
    pid is alive; the API answers or not."""
    found: list[dict[str, Any]] = []
    path = settings.data_dir / "logs" / "supervisor.json"
    try:
        recorded = json.loads(path.read_text())
    except (OSError, ValueError):
        recorded = {}
    for role, entry in recorded.items():
        pid = entry.get("pid")
        found.append(
            {"process": role, "pid": pid, "up": _alive(pid), "restarts": entry.get("restarts", 0)}
        )
    try:
        headers = api_headers(settings)
        health = httpx.get(f"{settings.api_url}/health", headers=headers, timeout=3).json()
        api = {"process": "api", "pid": None, "up": health.get("status") == "ok", "restarts": 0}
    except (httpx.HTTPError, ValueError):
        api = {"process": "api", "pid": None, "up": False, "restarts": 0}
    return [*found, {**api, "url": settings.api_url}]


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def group_lag(settings: Settings, bootstrap: str) -> list[dict[str, Any]]:
    """Per consumer group and topic: committed offsets behind the end, summed over partitions."""
    admin = admin_client(settings, bootstrap, client_id="vigil-status")
    rows: list[dict[str, Any]] = []
    try:
        groups = [settings.group(role) for role in GROUPS]
        listed = admin.list_group_offsets({group: None for group in groups})
        for group in groups:
            committed = listed.get(group) or {}
            mine = {
                tp: meta.offset
                for tp, meta in committed.items()
                if tp.topic.startswith(f"{settings.topic_prefix}.")
            }
            if not mine:
                continue
            wanted = {TopicPartition(tp.topic, tp.partition): OffsetSpec.LATEST for tp in mine}
            ends = {
                (tp.topic, tp.partition): found.offset
                for tp, found in admin.list_partition_offsets(wanted).items()
            }
            by_topic: dict[str, int] = {}
            for tp, offset in mine.items():
                end = ends.get((tp.topic, tp.partition), 0)
                by_topic[tp.topic] = by_topic.get(tp.topic, 0) + max(0, end - max(offset, 0))
            rows.extend(
                {"group": group, "topic": topic, "lag": lag}
                for topic, lag in sorted(by_topic.items())
            )
    finally:
        admin.close()
    return rows


def dead_letters(settings: Settings, bootstrap: str) -> int:
    """Records on the dead-letter topic (what failed to process, kept for `deliveries retry`)."""
    topic = settings.topic("dlq")
    admin = admin_client(settings, bootstrap, client_id="vigil-status")
    try:
        partitions = admin.describe_topics([topic])[0].get("partitions") or []
        tps = [TopicPartition(topic, p["partition_index"]) for p in partitions]
        if not tps:
            return 0
        ends = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in tps})
        starts = admin.list_partition_offsets({tp: OffsetSpec.EARLIEST for tp in tps})
        return sum(ends[tp].offset - starts[tp].offset for tp in tps)
    finally:
        admin.close()


def networks(
    project: Project, settings: Settings, bootstrap: str, codec: Codec
) -> list[dict[str, Any]]:
    """Each network's last emitted block (the checkpoint), the node's head and the lag."""
    topic = settings.topic("chain.checkpoints")
    saved = read_compacted(settings, bootstrap, topic)
    rows = []
    for name, config in project.config.networks.items():
        raw = saved.get(name.encode())
        emitted = int(codec.decode(raw, "Checkpoint", where=topic)["number"]) if raw else None
        head: int | None = None
        problem = None
        try:
            pool = RpcPool.for_network(name, config, settings, attempts=1, timeout=3.0)
            try:
                head = int(pool.call("eth_blockNumber"), 16)
            finally:
                pool.close()
        except (RpcError, ConfigError) as exc:
            problem = str(exc)
        lag = head - emitted if head is not None and emitted is not None else None
        rows.append(
            {"network": name, "emitted": emitted, "head": head, "lag": lag, "error": problem}
        )
    return rows


def last_errors(logs: Path) -> list[dict[str, str]]:
    """The last error lines of each log file, newest last."""
    found: list[dict[str, str]] = []
    for path in sorted(logs.glob("*.log")):
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        errors = [line for line in lines if " ERROR " in line or "[ERROR]" in line]
        found.extend({"log": path.name, "line": line[:300]} for line in errors[-LAST_ERRORS:])
    return found


def status(
    project: Project, settings: Settings, bootstrap: str | None, codec: Codec | None
) -> dict[str, Any]:
    """Everything `vigil status` shows; the Kafka parts are absent when no broker answers."""
    report: dict[str, Any] = {"processes": processes(settings)}
    if bootstrap is not None and codec is not None:
        try:
            report["lag"] = group_lag(settings, bootstrap)
            report["dead_letters"] = dead_letters(settings, bootstrap)
            report["networks"] = networks(project, settings, bootstrap, codec)
        except (VigilError, KafkaError) as exc:
            report["kafka_error"] = str(exc)
    report["errors"] = last_errors(settings.data_dir / "logs")
    return report
