"""Reads a project directory (or one monitor file) into validated, resolved objects."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from vigil.config.channels import CHANNEL, CHANNEL_MODELS, CHANNEL_TYPES, ChannelConfig
from vigil.config.fragments import is_fragment, with_fragments
from vigil.config.message import Template
from vigil.config.models import (
    ID,
    FortaMonitorConfig,
    MonitorConfig,
    ProjectConfig,
    TaskConfig,
)
from vigil.config.problems import plain, suggestion
from vigil.config.tasks import checked, package
from vigil.errors import ConfigError

AnyMonitor = MonitorConfig | FortaMonitorConfig

M = TypeVar("M", bound=BaseModel)
MAX_CONFIRM_BLOCKS = 250  # below the worker's 256-block memory of recent match batches


@dataclass(frozen=True)
class LoadedMonitor:
    """A monitor with its id, resolved ABI and the file it came from."""

    id: str
    config: AnyMonitor
    abi: list[dict[str, Any]]
    file: Path
    filter_files: dict[str, bytes] | None = None  # a filter given as a path: its code

    @property
    def is_forta(self) -> bool:
        return isinstance(self.config, FortaMonitorConfig)


@dataclass(frozen=True)
class LoadedChannel:
    """A channel with the file it came from; ``id`` is unique even when aliases are shared."""

    id: str
    config: ChannelConfig
    file: Path


@dataclass(frozen=True)
class Project:
    """Everything a project directory defines."""

    root: Path
    config: ProjectConfig
    monitors: list[LoadedMonitor] = field(default_factory=list)
    channels: dict[str, list[LoadedChannel]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    tasks: list[LoadedTask] = field(default_factory=list)


@dataclass(frozen=True)
class LoadedTask:
    """A task with its id (the file's stem), its code's files and the file it came from."""

    id: str
    config: TaskConfig
    files: dict[str, bytes]
    file: Path


def load_task_file(path: Path, aliases: set[str]) -> LoadedTask:
    """One task file; its code is read (and size-checked), its failure channels checked."""
    task_id = path.stem.lower().replace(".", "-")
    config = _validate(TaskConfig, _read_yaml(path), path, f"task {task_id!r}")
    _check_failure_channels(config, path, aliases)
    obj = f"task {config.name!r}"
    files = package((path.parent / config.code).resolve(), obj=obj, field="code")
    return LoadedTask(task_id, config, files, path)


def task_from_data(
    data: Any,
    origin: Path,
    task_id: str,
    files: dict[str, bytes],
    aliases: set[str],
    known: str = "the applied channels are",
) -> LoadedTask:
    """A task given whole (`vigil tasks deploy`, ``PUT /tasks/{id}``): its definition as a
    task file's content, its code's files, checked as a project's tasks are."""
    if not ID.match(task_id):
        raise ConfigError(
            f"expected lowercase letters, digits, - and _, got {task_id!r}",
            file=str(origin),
            field="id",
        )
    config = _validate(TaskConfig, data, origin, f"task {task_id!r}")
    _check_failure_channels(config, origin, aliases, known)
    return LoadedTask(task_id, config, checked(files, origin), origin)


def _check_failure_channels(
    config: TaskConfig, path: Path, aliases: set[str], known: str = "channels/ defines"
) -> None:
    """The channels a task names (failure channels, its hooks' channels) exist."""
    named = [("failure_channels", a) for a in config.failure_channels] + [
        (f"hooks[{n}].channels", a) for n, hook in enumerate(config.hooks) for a in hook.channels
    ]
    for where, alias in named:
        if alias not in aliases:
            raise ConfigError(
                f"unknown channel alias {alias!r}; {known}: {', '.join(sorted(aliases)) or 'none'}",
                file=str(path),
                obj=f"task {config.name!r}",
                field=where,
            )


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read the file: {exc.strerror}", file=str(path)) from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", file=str(path)) from exc


def _validate(model: type[M] | TypeAdapter[M], data: Any, path: Path, obj: str) -> M:
    if not isinstance(data, dict):
        raise ConfigError(
            f"expected a mapping of keys, found {type(data).__name__}", file=str(path), obj=obj
        )
    try:
        if isinstance(model, TypeAdapter):
            return model.validate_python(data)
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        if isinstance(model, TypeAdapter) and data.get("type") not in CHANNEL_TYPES:
            raise ConfigError(
                f"expected one of {', '.join(CHANNEL_TYPES)}; found {data.get('type')!r}"
                + suggestion(str(data.get("type")), CHANNEL_TYPES),
                file=str(path),
                obj=obj,
                field="type",
            ) from None
        if isinstance(model, TypeAdapter):  # the union's tag (the channel type) is no field
            errors = [_untagged(e, data.get("type")) for e in errors]
            target: Any = CHANNEL_MODELS.get(str(data.get("type")))
        else:
            target = model
        loc, message = plain(errors, target)
        raise ConfigError(message, file=str(path), obj=obj, field=loc) from None


def _untagged(error: ErrorDetails, tag: Any) -> ErrorDetails:
    loc = tuple(error["loc"])
    return {**error, "loc": loc[1:]} if loc and loc[0] == tag else error


def _load_abi(
    abi: str | list[dict[str, Any]] | None, base: Path, where: Path, obj: str
) -> list[dict[str, Any]]:
    if abi is None:
        return []
    if isinstance(abi, list):
        return abi
    path = (base / abi).resolve()
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(
            f"cannot read ABI file {path}: {exc.strerror}", file=str(where), obj=obj, field="abi"
        ) from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"ABI file {path} is not JSON: {exc}", file=str(where), obj=obj, field="abi"
        ) from exc
    if isinstance(data, dict) and isinstance(data.get("abi"), list):
        data = data["abi"]  # a compiler artifact
    if not isinstance(data, list) or not all(isinstance(i, dict) for i in data):
        raise ConfigError(
            f"ABI file {path} must hold a JSON list of ABI entries",
            file=str(where),
            obj=obj,
            field="abi",
        )
    return data


def load_monitor_file(path: Path) -> LoadedMonitor:
    """One monitor file; an ``abi`` path is relative to the file.

    Conditions are compiled by ``processors.checks``, which callers run before acting.
    """
    return monitor_from_data(_read_yaml(path), path, path.stem.lower().replace(".", "-"))


def monitor_from_data(
    data: Any, origin: Path, monitor_id: str, *, abi_files: bool = True
) -> LoadedMonitor:
    """A monitor from its file's content (or the same as JSON, from the API), named
    ``origin`` in errors; ``abi_files`` False refuses an ``abi`` path (give it inline)."""
    name = data.get("name", monitor_id) if isinstance(data, dict) else monitor_id
    obj = f"monitor {name!r}"
    if isinstance(data, dict) and data.get("type") == "forta":
        forta = _validate(FortaMonitorConfig, data, origin, obj)
        files = _filter_files(forta, origin, obj, abi_files)
        return LoadedMonitor(forta.id or monitor_id, forta, [], origin, files)
    config = _validate(MonitorConfig, data, origin, obj)
    files = _filter_files(config, origin, obj, abi_files)
    if isinstance(config.abi, str) and not abi_files:
        raise ConfigError(
            "give the ABI inline, as a JSON list of ABI entries (or human-readable "
            "signatures in the conditions): there is no file to read it from",
            file=str(origin),
            obj=obj,
            field="abi",
        )
    abi = _load_abi(config.abi, origin.parent, origin, obj)
    config, abi = with_fragments(config, abi, origin, obj)
    return LoadedMonitor(config.id or monitor_id, config, abi, origin, files)


def _filter_files(
    config: AnyMonitor, origin: Path, obj: str, from_file: bool
) -> dict[str, bytes] | None:
    """The code of a filter given as a path (relative to the monitor file)."""
    path = config.filter_path
    if path is None:
        return None
    if not from_file:
        raise ConfigError(
            "name a task (its id): there is no file for a path to be relative to",
            file=str(origin),
            obj=obj,
            field="filter",
        )
    return package((origin.parent / path).resolve(), obj=obj, field="filter")


def channel_from_data(data: Any, origin: Path, channel_id: str) -> LoadedChannel:
    """A channel from its file's content (or the same as JSON, from the API)."""
    channel = _validate(CHANNEL, data, origin, f"channel {channel_id!r}")
    return LoadedChannel(channel_id, channel, origin)


def load_project_config(root: Path) -> ProjectConfig:
    """``root``'s vigil.yaml alone: its networks and defaults."""
    main = root / "vigil.yaml"
    if not main.exists():
        raise ConfigError(
            f"no vigil.yaml in {root.resolve()}; is this a vigil project?", file=str(main)
        )
    return _validate(ProjectConfig, _read_yaml(main) or {}, main, "project")


def _yaml_files(folder: Path) -> list[Path]:
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]) if folder.is_dir() else []


def _check_confirmations(monitor: MonitorConfig, network: int | str, path: Path) -> None:
    """A monitor may wait longer than its network emits, if the two levels compare."""
    wanted = monitor.confirm_blocks
    if isinstance(wanted, str) and wanted != network:
        raise ConfigError(
            f"{wanted!r} needs network {monitor.network!r} to emit at {wanted!r} "
            f"(its confirmations are {network!r}); set that, or give a number of blocks",
            file=str(path),
            obj=f"monitor {monitor.name!r}",
            field="confirm_blocks",
        )
    if isinstance(wanted, int) and wanted > MAX_CONFIRM_BLOCKS:
        raise ConfigError(
            f"at most {MAX_CONFIRM_BLOCKS} blocks (the worker holds notifications that long); "
            f"got {wanted}",
            file=str(path),
            obj=f"monitor {monitor.name!r}",
            field="confirm_blocks",
        )


def load_project(root: Path) -> Project:
    """Load and cross-check ``root``: networks exist, channel aliases exist, ids are unique."""
    main = root / "vigil.yaml"
    config = load_project_config(root)
    channels: dict[str, list[LoadedChannel]] = {}
    for path in _yaml_files(root / "channels"):
        channel = channel_from_data(_read_yaml(path), path, path.stem)
        channels.setdefault(channel.config.alias, []).append(channel)
    for severity, aliases in config.defaults:
        for alias in aliases:
            if alias not in channels:
                raise ConfigError(
                    f"unknown channel alias {alias!r}; channels/ defines: "
                    f"{', '.join(sorted(channels)) or 'none'}",
                    file=str(main),
                    obj="project",
                    field=f"defaults.{severity}",
                )
    warnings = [
        f"{channel.file}: channel {channel.config.alias!r}: {warning}"
        for group in channels.values()
        for channel in group
        for warning in channel.config.warnings()
    ]
    warnings += [
        warning
        for group in channels.values()
        for channel in group
        for warning in _template_warnings(
            channel.config.template, channel.file, "channel", [channel.config]
        )
    ]
    monitors: list[LoadedMonitor] = []
    seen: dict[str, Path] = {}
    for path in _yaml_files(root / "monitors"):
        loaded = with_fetched_abi(with_contracts(load_monitor_file(path), config, root), root)
        monitor = routed(loaded, config)
        obj = f"monitor {monitor.config.name!r}"
        targets = [c.config for a in monitor.config.channels for c in channels.get(a, [])]
        warnings.extend(_template_warnings(monitor.config.message, path, obj, targets))
        if monitor.id in seen:
            raise ConfigError(
                f"monitor id {monitor.id!r} is also used by {seen[monitor.id]}",
                file=str(path),
                obj=obj,
                field="id",
            )
        seen[monitor.id] = path
        monitors.append(monitor)
    tasks = [load_task_file(path, set(channels)) for path in _yaml_files(root / "tasks")]
    for monitor in monitors:
        cross_check(monitor, config, set(channels), tasks={task.id for task in tasks})
    return Project(root, config, monitors, channels, warnings, tasks)


def cross_check(
    monitor: LoadedMonitor,
    config: ProjectConfig,
    aliases: set[str],
    known: str = "channels/ defines",
    *,
    tasks: set[str],
) -> None:
    """The monitor's network is the project's, its channels and tasks exist (``known``
    says where the channels were looked for; a task id may stand among the channels),
    its depth fits."""
    obj, path = f"monitor {monitor.config.name!r}", monitor.file
    if monitor.config.network is not None and monitor.config.network not in config.networks:
        raise ConfigError(
            f"unknown network {monitor.config.network!r}; vigil.yaml defines: "
            f"{', '.join(sorted(config.networks)) or 'none'}",
            file=str(path),
            obj=obj,
            field="network",
        )
    for alias in monitor.config.channels:
        if alias not in aliases and alias not in tasks:
            raise ConfigError(
                f"unknown channel alias {alias!r}; {known}: {', '.join(sorted(aliases)) or 'none'}"
                f"; tasks: {', '.join(sorted(tasks)) or 'none'}",
                file=str(path),
                obj=obj,
                field="channels",
            )
    named = monitor.config.filter
    if named is not None and monitor.config.filter_path is None and named not in tasks:
        raise ConfigError(
            f"unknown task {named!r}; tasks: {', '.join(sorted(tasks)) or 'none'} "
            "(or give a path, such as ./filters/mine.py)",
            file=str(path),
            obj=obj,
            field="filter",
        )
    for task in monitor.config.tasks:
        if task not in tasks:
            raise ConfigError(
                f"unknown task {task!r}; tasks: {', '.join(sorted(tasks)) or 'none'}",
                file=str(path),
                obj=obj,
                field="tasks",
            )
    if isinstance(monitor.config, MonitorConfig):
        level = config.networks[monitor.config.network].confirmations
        _check_confirmations(monitor.config, level, path)


def address_book(root: Path) -> dict[str, dict[str, str]]:
    """The project's contracts by name (``{network, address}``), as tasks get them in
    ``event.contracts``; none when there is no vigil.yaml or it does not load."""
    try:
        config = load_project_config(root)
    except ConfigError:
        return {}
    return {
        name: {"network": contract.network, "address": contract.address}
        for name, contract in config.contracts.items()
    }


def with_contracts(monitor: LoadedMonitor, config: ProjectConfig, root: Path) -> LoadedMonitor:
    """``monitor`` with the address book's names in ``addresses`` made addresses, and, when
    it gives no ABI, the named contracts' ABIs. A name the book lacks, or a contract of
    another network, is a ConfigError naming the entry."""
    if not isinstance(monitor.config, MonitorConfig):
        return monitor
    names = [a for a in monitor.config.addresses if not a.startswith("0x")]
    if not names:
        return monitor
    obj = f"monitor {monitor.config.name!r}"
    addresses, abis = [], []
    for index, entry in enumerate(monitor.config.addresses):
        if entry.startswith("0x"):
            addresses.append(entry)
            continue
        contract = config.contracts.get(entry)
        where = {"file": str(monitor.file), "obj": obj, "field": f"addresses[{index}]"}
        if contract is None:
            known = list(config.contracts)
            hint = suggestion(entry, known) or (
                f"; vigil.yaml's contracts: {', '.join(sorted(known))}"
                if known
                else "; vigil.yaml has no contracts: add it there, or give its 0x address"
            )
            raise ConfigError(f"{entry!r} is not a contract of the address book{hint}", **where)
        if contract.network != monitor.config.network:
            raise ConfigError(
                f"contract {entry!r} is on network {contract.network!r}, the monitor on "
                f"{monitor.config.network!r}",
                **where,
            )
        addresses.append(contract.address)
        abis.append(_load_abi(contract.abi, root, root / "vigil.yaml", f"contract {entry!r}"))
    resolved = monitor.config.model_copy(update={"addresses": list(dict.fromkeys(addresses))})
    abi = monitor.abi
    if not abi and monitor.config.abi is None:  # the monitor's own ABI wins
        abi = [item for found in abis for item in found]
        abi = [item for n, item in enumerate(abi) if item not in abi[:n]]
    return dataclasses.replace(monitor, config=resolved, abi=abi)


def fetched_abi_path(root: Path, network: str, address: str) -> Path:
    """Where a fetched ABI of ``address`` on ``network`` is cached in the project."""
    return root / "abis" / "fetched" / network / f"{address.lower()}.json"


def needs_fetched_abi(config: AnyMonitor) -> bool:
    """A contract monitor that gives no ABI, yet selects events or functions by name."""
    if not isinstance(config, MonitorConfig) or config.abi is not None:
        return False
    selections = [*config.conditions.events, *config.conditions.functions]
    return any(not is_fragment(s.signature) for s in selections)


def monitor_files(root: Path) -> list[tuple[Path, MonitorConfig]]:
    """The project's contract monitors as their files say (those that validate)."""
    found = []
    for path in _yaml_files(root / "monitors"):
        try:
            data = _read_yaml(path)
            if isinstance(data, dict) and data.get("type", "contract") == "contract":
                found.append((path, _validate(MonitorConfig, data, path, "monitor")))
        except ConfigError:
            continue  # the load reports it
    return found


def with_fetched_abi(monitor: LoadedMonitor, root: Path) -> LoadedMonitor:
    """``monitor`` with the cached, fetched ABIs of its addresses when it gives none."""
    if not needs_fetched_abi(monitor.config):
        return monitor
    assert isinstance(monitor.config, MonitorConfig)
    abi = list(monitor.abi)
    for address in monitor.config.addresses:
        path = fetched_abi_path(root, monitor.config.network, address)
        if path.exists():
            obj = f"monitor {monitor.config.name!r}"
            abi += [i for i in _load_abi(str(path), root, monitor.file, obj) if i not in abi]
    return dataclasses.replace(monitor, abi=abi)


def routed(monitor: LoadedMonitor, config: ProjectConfig) -> LoadedMonitor:
    """A monitor naming no channels goes to the project's defaults for its severity."""
    if monitor.config.channels:
        return monitor
    routes = getattr(config.defaults, monitor.config.severity)
    if not routes:
        return monitor
    routed = monitor.config.model_copy(update={"channels": list(routes)})
    return dataclasses.replace(monitor, config=routed)


def _template_warnings(
    template: Any, path: Path, obj: str, targets: list[ChannelConfig]
) -> list[str]:
    """Paths a message template reads that the event schema lacks; bodies that run long;
    markdown the ``targets`` channels show unevenly; for Telegram, bodies that can render
    empty."""
    shown = [c for c in targets if c.type not in ("webhook", "datadog")]  # render no text
    telegram = any(c.type == "telegram" for c in targets)
    if template is None:
        return []
    found: list[str] = []
    for part in ("subject", "body"):
        source = getattr(template, part)
        if source:
            parsed = Template.parse(source)
            found.extend(
                f"{path}: {obj}: template.{part}: {problem}" for problem in parsed.warnings()
            )
            uneven = parsed.unsupported()
            if uneven and shown:
                names = ", ".join(sorted({f"{c.alias} ({c.type})" for c in shown}))
                found.append(
                    f"{path}: {obj}: template.{part}: uses {', '.join(uneven)}, which chat "
                    f"services show unevenly; vigil sends it as plain text to {names}. "
                    "Bold, italic and links render everywhere"
                )
            if telegram and part == "body" and not parsed.has_text():
                found.append(
                    f"{path}: {obj}: template.body: only values, no text of its own: with "
                    "the values missing it renders empty, which Telegram refuses (vigil then "
                    "sends the default message there)"
                )
    return found


def load_each(root: Path) -> tuple[list[LoadedMonitor], list[ConfigError]]:
    """Every file of ``root`` loaded on its own: the monitors that load, and the error of
    every file that does not (``vigil validate`` reports them all, not just the first)."""
    errors: list[ConfigError] = []
    main = root / "vigil.yaml"
    config = ProjectConfig()
    try:
        config = _validate(ProjectConfig, _read_yaml(main) or {}, main, "project")
    except ConfigError as exc:
        errors.append(exc)
    for path in _yaml_files(root / "channels"):
        try:
            _validate(CHANNEL, _read_yaml(path), path, f"channel {path.stem!r}")
        except ConfigError as exc:
            errors.append(exc)
    monitors: list[LoadedMonitor] = []
    for path in _yaml_files(root / "monitors"):
        try:
            loaded = with_contracts(load_monitor_file(path), config, root)
            monitors.append(with_fetched_abi(loaded, root))
        except ConfigError as exc:
            errors.append(exc)
    for path in _yaml_files(root / "tasks"):
        try:
            _validate(TaskConfig, _read_yaml(path), path, f"task {path.stem!r}")
        except ConfigError as exc:
            errors.append(exc)
    return monitors, errors
