"""Monitor templates: vigil's library by risk category, a project's own, and instantiation.

A template is a YAML file with a ``template`` header (name, risk category, description,
parameters with defaults) and a ``monitor`` body without addresses or network. Strings of the
body may use ``{{ param }}``; ``{{ address }}`` is the first address, shortened.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from vigil.config.loader import load_monitor_file
from vigil.config.models import MonitorConfig
from vigil.errors import ConfigError

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
RISK_CATEGORIES = ("governance", "access-control", "suspicious", "financial", "technical")


@dataclass(frozen=True)
class Param:
    default: str
    description: str = ""


@dataclass(frozen=True)
class Template:
    """A monitor template and where it came from."""

    name: str
    risk_category: str
    description: str
    params: dict[str, Param]
    monitor: dict[str, Any]
    file: str


def _parse(text: str, origin: str) -> Template:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", file=origin) from exc
    header = data.get("template") if isinstance(data, dict) else None
    body = data.get("monitor") if isinstance(data, dict) else None
    if not isinstance(header, dict) or not isinstance(body, dict):
        raise ConfigError(
            "expected a mapping with `template` (name, risk_category, description, params) "
            "and `monitor` keys",
            file=origin,
        )
    name = str(header.get("name", Path(origin).stem))
    obj = f"template {name!r}"
    category = header.get("risk_category")
    if category not in RISK_CATEGORIES:
        raise ConfigError(
            f"expected one of {', '.join(RISK_CATEGORIES)}, got {category!r}",
            file=origin,
            obj=obj,
            field="template.risk_category",
        )
    params = {}
    for key, value in (header.get("params") or {}).items():
        if not isinstance(value, dict) or "default" not in value:
            raise ConfigError(
                "expected {default: ..., description: ...}",
                file=origin,
                obj=obj,
                field=f"template.params.{key}",
            )
        params[str(key)] = Param(str(value["default"]), str(value.get("description", "")))
    return Template(name, category, str(header.get("description", "")), params, body, origin)


def library(project: Path | None = None) -> dict[str, Template]:
    """vigil's templates, then the project's ``templates/`` (a project's own wins on a name)."""
    found: dict[str, Template] = {}
    folder = resources.files("vigil.config") / "library"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            template = _parse(entry.read_text(), f"vigil templates/{entry.name}")
            found[template.name] = template
    if project is not None and (project / "templates").is_dir():
        for path in sorted((project / "templates").glob("*.yaml")):
            template = _parse(path.read_text(), str(path))
            found[template.name] = template
    return found


def parse_params(pairs: list[str]) -> dict[str, str]:
    """``["k=v", ...]`` from repeated ``--set`` options."""
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set: expected KEY=VALUE, got {pair!r}")
        params[key.strip()] = value.strip()
    return params


def _substitute(node: Any, values: dict[str, str], template: Template) -> Any:
    if isinstance(node, str):

        def value(match: re.Match[str]) -> str:
            key = match.group(1)
            if key not in values:
                raise ConfigError(
                    f"uses {{{{ {key} }}}}, which is neither a parameter nor address",
                    file=template.file,
                    obj=f"template {template.name!r}",
                )
            return values[key]

        return _PLACEHOLDER.sub(value, node)
    if isinstance(node, list):
        return [_substitute(item, values, template) for item in node]
    if isinstance(node, dict):
        return {key: _substitute(item, values, template) for key, item in node.items()}
    return node


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "monitor"


def instantiate(
    template: Template,
    addresses: list[str],
    network: str,
    name: str | None,
    params: dict[str, str],
    channels: list[str],
) -> tuple[str, str]:
    """A monitor file's text and its id, made from ``template``."""
    unknown = sorted(set(params) - set(template.params))
    if unknown:
        raise ConfigError(
            f"--set: unknown parameter(s) {', '.join(unknown)}; template {template.name!r} "
            f"takes: {', '.join(sorted(template.params)) or 'none'}"
        )
    if not addresses:
        raise ConfigError("--address: give at least one contract address")
    first = addresses[0]
    values = {k: p.default for k, p in template.params.items()} | params
    values["address"] = f"{first[:6]}…{first[-4:]}" if len(first) > 12 else first
    monitor = _substitute(copy.deepcopy(template.monitor), values, template)
    monitor["name"] = name or monitor.get("name") or template.name
    monitor_id = slug(monitor["name"])
    ordered = {
        "name": monitor["name"],
        "id": monitor_id,
        "network": network,
        "addresses": list(addresses),
        **{k: v for k, v in monitor.items() if k not in ("name", "id")},
        "channels": list(channels) or monitor.get("channels", []),
    }
    try:
        MonitorConfig.model_validate(ordered)
    except ValueError as exc:
        raise ConfigError(f"the monitor it makes is invalid: {exc}", obj=template.name) from None
    header = f"# made from vigil template {template.name!r} ({template.risk_category})\n"
    return header + yaml.safe_dump(ordered, sort_keys=False, width=100, allow_unicode=True), (
        monitor_id
    )


def save_template(monitor_file: Path, name: str, project: Path) -> Path:
    """Save a monitor file as a template of ``project``: addresses and network left out."""
    if not _NAME.match(name):
        raise ConfigError(f"--name: expected lowercase letters, digits, - or _, got {name!r}")
    monitor = load_monitor_file(monitor_file)  # only a valid monitor becomes a template
    body = monitor.config.model_dump(
        mode="json", exclude={"id", "addresses", "network", "abi", "paused"}
    )
    body["name"] = f"{name} {{{{address}}}}"
    if monitor.abi:
        body["abi"] = monitor.abi
    document = {
        "template": {
            "name": name,
            "risk_category": monitor.config.risk_category or "technical",
            "description": f"saved from {monitor_file.name}: {monitor.config.name}",
            "params": {},
        },
        "monitor": body,
    }
    target = project / "templates" / f"{name}.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(document, sort_keys=False, width=100, allow_unicode=True))
    return target
