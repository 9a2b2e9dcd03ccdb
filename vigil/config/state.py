"""Configuration as events: project objects as ConfigChange records, diffed and published.

A monitor or channel is applied by writing its resolved form (the monitor's ABI read, its
network's chain id and confirmation level looked up) to a compacted config topic keyed by
id. The latest record per id is the object's state; workers follow the topics and change
what they do without a restart. `vigil apply` publishes all of a project's changes in one
Kafka transaction, so readers see all of them or none.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vigil.config.channels import CHANNEL
from vigil.config.loader import LoadedChannel, LoadedMonitor, LoadedTask, Project
from vigil.config.models import FortaMonitorConfig, MonitorConfig
from vigil.errors import ConfigError

TOPICS = {"monitor": "config.monitors", "channel": "config.channels", "task": "config.tasks"}
VERSIONS_TOPIC = "tasks.versions"  # every version of every task, kept: a run names its own
SCHEMA = "ConfigChange"
Key = tuple[str, str]  # (kind, id)


def version_of(spec: dict[str, Any]) -> str:
    """Content hash of a spec: two equal objects have the same version."""
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Change:
    """One object to write (upsert) or remove (delete) on its config topic."""

    kind: str
    id: str
    action: str
    spec: dict[str, Any] | None
    source: str
    file: str | None = None

    @property
    def version(self) -> str:
        return version_of(self.spec) if self.spec is not None else ""

    def record(self, at_ms: int) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.id,
            "action": self.action,
            "version": self.version,
            "spec": None if self.spec is None else json.dumps(self.spec, sort_keys=True),
            "source": self.source,
            "file": self.file,
            "at": at_ms,
        }


def monitor_spec(monitor: LoadedMonitor, project: Project) -> dict[str, Any]:
    """The self-contained form of a monitor: no file or project needed to run it."""
    network = project.config.networks.get(monitor.config.network or "")
    chain_id = network.chain_id if network else 0
    return {
        "config": monitor.config.model_dump(mode="json", exclude={"abi"}),
        "abi": monitor.abi,
        "chainId": chain_id,
        "networkConfirmations": network.confirmations if network else 0,
        "explorerUrl": (network.explorer_url if network else None) or default_explorer(chain_id),
        "filePaused": monitor.config.paused,  # what the file said; `paused` may be overridden
        "filterFiles": None
        if monitor.filter_files is None
        else {n: base64.b64encode(c).decode() for n, c in monitor.filter_files.items()},
    }


EXPLORERS = {  # transaction URLs of well-known chains, when vigil.yaml gives none
    1: "https://etherscan.io/tx/{hash}",
    10: "https://optimistic.etherscan.io/tx/{hash}",
    56: "https://bscscan.com/tx/{hash}",
    137: "https://polygonscan.com/tx/{hash}",
    8453: "https://basescan.org/tx/{hash}",
    42161: "https://arbiscan.io/tx/{hash}",
    43114: "https://snowtrace.io/tx/{hash}",
    11155111: "https://sepolia.etherscan.io/tx/{hash}",
    17000: "https://holesky.etherscan.io/tx/{hash}",
}


def default_explorer(chain_id: int) -> str | None:
    return EXPLORERS.get(chain_id)


def task_spec(task: LoadedTask) -> dict[str, Any]:
    """A task's config and its code's files (base64): everything a runner needs."""
    files = {name: base64.b64encode(content).decode() for name, content in task.files.items()}
    return {"config": task.config.model_dump(mode="json"), "files": files}


def channel_spec(channel: LoadedChannel) -> dict[str, Any]:
    # what the file said; `paused` may be overridden by hand
    return {"config": channel.config.model_dump(mode="json"), "filePaused": channel.config.paused}


@dataclass(frozen=True)
class AppliedMonitor:
    """A monitor as read back from its config record."""

    monitor: LoadedMonitor
    chain_id: int
    network_confirmations: int | str
    explorer_url: str | None = None


def monitor_from_record(record: dict[str, Any]) -> AppliedMonitor:
    """Rebuild a monitor from its record; a record that does not validate is a ConfigError."""
    spec = json.loads(record["spec"])
    origin = record.get("file") or f"<config topic: monitor {record['id']}>"
    try:
        model = FortaMonitorConfig if spec["config"].get("type") == "forta" else MonitorConfig
        config: MonitorConfig | FortaMonitorConfig = model.model_validate(spec["config"])
        files = spec.get("filterFiles")
        monitor = LoadedMonitor(
            record["id"],
            config,
            list(spec["abi"]),
            Path(origin),
            {n: base64.b64decode(c) for n, c in files.items()} if files else None,
        )
        return AppliedMonitor(
            monitor, int(spec["chainId"]), spec["networkConfirmations"], spec.get("explorerUrl")
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"config record does not hold a valid monitor: {exc}",
            file=origin,
            obj=f"monitor {record['id']!r}",
        ) from exc


def channel_from_record(record: dict[str, Any]) -> LoadedChannel:
    spec = json.loads(record["spec"])
    origin = record.get("file") or f"<config topic: channel {record['id']}>"
    try:
        return LoadedChannel(record["id"], CHANNEL.validate_python(spec["config"]), Path(origin))
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"config record does not hold a valid channel: {exc}",
            file=origin,
            obj=f"channel {record['id']!r}",
        ) from exc


def desired(project: Project, source: str = "apply") -> dict[Key, Change]:
    """Every object of ``project`` as an upsert."""
    wanted: dict[Key, Change] = {}
    for monitor in project.monitors:
        spec = monitor_spec(monitor, project)
        wanted[("monitor", monitor.id)] = Change(
            "monitor", monitor.id, "upsert", spec, source, str(monitor.file)
        )
    for group in project.channels.values():
        for channel in group:
            wanted[("channel", channel.id)] = Change(
                "channel", channel.id, "upsert", channel_spec(channel), source, str(channel.file)
            )
    for task in project.tasks:
        wanted[("task", task.id)] = Change(
            "task", task.id, "upsert", task_spec(task), source, str(task.file)
        )
    return wanted


@dataclass(frozen=True)
class Planned:
    """A change with what it does to the running configuration."""

    change: Change
    effect: str  # create | update | delete | unchanged
    detail: str = ""


def _difference(old: dict[str, Any], new: dict[str, Any]) -> str:
    """The fields that differ, as `vigil apply` shows them."""
    before, after = old.get("config", {}), new.get("config", {})
    keys = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    if keys == ["paused"]:
        return f"paused: {before.get('paused')} → {after.get('paused')}"
    for key, label in (("abi", "abi"), ("chainId", "network chain id")):
        if old.get(key) != new.get(key):
            keys.append(label)
    if old.get("networkConfirmations") != new.get("networkConfirmations"):
        keys.append("network confirmations")
    if old.get("filePaused") != new.get("filePaused"):
        keys.append(f"paused in file: {old.get('filePaused')} → {new.get('filePaused')}")
    return ", ".join(keys)


def _keep_override(change: Change, record: dict[str, Any] | None) -> Change:
    """A pause or resume by hand outlives an apply, unless the file's ``paused`` changed."""
    if change.kind not in ("monitor", "channel") or change.spec is None or record is None:
        return change
    before = json.loads(record["spec"])
    if before.get("filePaused", False) != change.spec["filePaused"]:
        return change  # the file changed its mind: it wins
    spec = copy.deepcopy(change.spec)
    spec["config"]["paused"] = before["config"]["paused"]
    return Change(change.kind, change.id, change.action, spec, change.source, change.file)


def plan(project: Project, current: dict[Key, dict[str, Any]]) -> list[Planned]:
    """What applying ``project`` changes, given the ``current`` records (latest per key)."""
    planned = []
    wanted = desired(project)
    for key, wanted_change in sorted(wanted.items()):
        record = current.get(key)
        change = _keep_override(wanted_change, record)
        if record is None:
            planned.append(Planned(change, "create"))
        elif record["version"] == change.version:
            planned.append(Planned(change, "unchanged"))
        else:
            detail = _difference(json.loads(record["spec"]), change.spec or {})
            planned.append(Planned(change, "update", detail))
    for key in sorted(set(current) - set(wanted)):
        kind, object_id = key
        planned.append(Planned(Change(kind, object_id, "delete", None, "apply"), "delete"))
    return planned


def monitor_summary(record: dict[str, Any]) -> dict[str, Any]:
    """One applied monitor as `vigil monitors list` and ``GET /monitors`` show it."""
    config = json.loads(record["spec"])["config"]
    return {
        "id": record["id"],
        "name": config["name"],
        "network": config["network"],
        "addresses": len(config["addresses"]),
        "severity": config["severity"],
        "category": config.get("risk_category"),
        "paused": config["paused"],
        "version": record["version"][:12],
        "source": record["source"],
        "at": record["at"].isoformat(timespec="seconds"),
    }


def monitor_summaries(
    records: dict[str, dict[str, Any]], category: str | None = None
) -> list[dict[str, Any]]:
    """The applied monitors by id, those of risk ``category`` only when one is given (a
    category vigil does not know is a ValueError naming the known ones)."""
    from vigil.config.templates import RISK_CATEGORIES

    if category is not None and category not in RISK_CATEGORIES:
        raise ValueError(
            f"unknown risk category {category!r}; expected one of {', '.join(RISK_CATEGORIES)}"
        )
    rows = [monitor_summary(record) for _, record in sorted(records.items())]
    return [row for row in rows if category is None or row["category"] == category]


def channel_summary(record: dict[str, Any]) -> dict[str, Any]:
    """One applied channel as ``GET /channels`` shows it: never its URL or secrets."""
    config = json.loads(record["spec"])["config"]
    return {
        "id": record["id"],
        "alias": config["alias"],
        "type": config["type"],
        "paused": config.get("paused", False),
        "version": record["version"][:12],
        "source": record["source"],
        "at": record["at"].isoformat(timespec="seconds"),
    }


def with_paused(record: dict[str, Any], paused: bool, source: str, kind: str = "monitor") -> Change:
    """The monitor (or channel) of ``record`` with ``paused`` set: what pause and resume
    publish."""
    spec = json.loads(record["spec"])
    spec["config"]["paused"] = paused
    spec.setdefault("filePaused", False)  # applied before channels could be paused
    return Change(kind, record["id"], "upsert", spec, source, record.get("file"))
