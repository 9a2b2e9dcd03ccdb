"""`vigil validate` and `vigil apply`: check a project's files, publish them as config events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from vigil.cli.common import (
    check_format,
    console,
    err,
    print_rows,
    stack_bootstrap,
    stack_codec,
)
from vigil.cli.common import settings as _settings
from vigil.errors import VigilError

project_app = typer.Typer()


def _fetch_abis(settings: Any, root: Path) -> list[str]:
    """Fetch (and cache in the project) the ABIs of monitors that give none; prints what it
    fetched on stderr and returns the warnings (a contract no source knows)."""
    from vigil.connectors.abis import IMPLEMENTATION_SLOT, fetch_missing, slot_address
    from vigil.errors import ConfigError
    from vigil.streams.evm.rpc import RpcPool

    def implementation(name: str, network: Any, address: str) -> str | None:
        pool = RpcPool.for_network(name, network, settings)
        try:
            return slot_address(
                pool.call("eth_getStorageAt", address, IMPLEMENTATION_SLOT, "latest")
            )
        finally:
            pool.close()

    try:
        said = fetch_missing(settings, root, implementation)
    except ConfigError:
        return []  # vigil.yaml does not load: the load says why
    warnings = []
    for line in said:
        if line.startswith("warning: "):
            warnings.append(line.removeprefix("warning: "))
        else:
            err.print(f"[dim]{line}[/]", highlight=False, soft_wrap=True)
    return warnings


@project_app.command()
def validate(
    project: Path = typer.Argument(None, help="project dir (default VIGIL_PROJECT_DIR)"),
    strict: bool = typer.Option(
        False, "--strict", help="a secret a channel names but VIGIL_SECRETS lacks is an error"
    ),
    fmt: str = typer.Option("text", "--format", help="text or json"),
) -> None:
    """Check a project's files without applying anything; report every failing file.

    Every secret a channel names, or an RPC URL refers to, that this environment does not
    set is named too (an error with --strict)."""
    from vigil.config.loader import load_each, load_project
    from vigil.config.secrets import missing_secrets
    from vigil.errors import ConfigError
    from vigil.processors.checks import check_monitor, check_project

    if fmt not in ("text", "json"):
        raise VigilError(f"--format: expected text or json, got {fmt!r}")
    settings = _settings()
    root = project or settings.project_dir
    if not (root / "vigil.yaml").exists():
        load_project(root)  # raises the error that says this is not a project
    errors: list[str] = []
    warnings: list[str] = _fetch_abis(settings, root)
    counts = {"networks": 0, "monitors": 0, "channels": 0, "tasks": 0}
    try:
        loaded = check_project(load_project(root))
    except ConfigError as first:
        monitors, found = load_each(root)
        for monitor in monitors:
            try:
                check_monitor(monitor)
            except ConfigError as exc:
                found.append(exc)
        errors = [str(e) for e in found] or [str(first)]
    else:
        warnings += loaded.warnings
        secrets = [str(e) for e in missing_secrets(loaded, settings)]
        if strict:
            errors.extend(secrets)
        else:
            warnings.extend(
                f"{s} (or set it where the stack runs; --strict fails)" for s in secrets
            )
        counts = {
            "networks": len(loaded.config.networks),
            "monitors": len(loaded.monitors),
            "channels": sum(len(g) for g in loaded.channels.values()),
            "tasks": len(loaded.tasks),
        }
    if fmt == "json":
        print(json.dumps({"ok": not errors, "errors": errors, "warnings": warnings, **counts}))
    else:
        for warning in warnings:
            err.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
        for error in errors:
            err.print(f"[red]error:[/] {error}", highlight=False, soft_wrap=True)
        if errors:
            err.print(f"{len(errors)} error(s) in {root}", highlight=False, soft_wrap=True)
        else:
            tasks = f", {counts['tasks']} tasks" if counts.get("tasks") else ""
            console.print(
                f"ok: {counts['networks']} networks, {counts['monitors']} monitors, "
                f"{counts['channels']} channels{tasks}"
            )
    if errors:
        raise typer.Exit(2)


@project_app.command()
def apply(
    project: Path = typer.Argument(None, help="project dir (default VIGIL_PROJECT_DIR)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="show the changes, publish nothing"),
    fmt: str = typer.Option("table", "--format", help="table | json | csv"),
) -> None:
    """Validate a project and publish its changes to the running stack, all or nothing."""
    from vigil.config.loader import load_project
    from vigil.processors.checks import check_project
    from vigil.streams.config_topics import apply_project

    check_format(fmt)
    settings = _settings()
    root = project or settings.project_dir
    fetched = _fetch_abis(settings, root) if (root / "vigil.yaml").exists() else []
    loaded = check_project(load_project(root))  # nothing is published if invalid
    for warning in [*fetched, *loaded.warnings]:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    bootstrap = stack_bootstrap(settings, "apply to")
    codec = stack_codec(settings)
    planned = apply_project(settings, bootstrap, codec, loaded, dry_run=dry_run)
    changes = [p for p in planned if p.effect != "unchanged"]
    rows = [[p.change.kind, p.change.id, p.effect, p.detail] for p in planned]
    print_rows(["kind", "id", "change", "detail"], rows, fmt, title=f"apply {loaded.root}")
    if fmt != "table":
        return  # the rows say it all; nothing else goes to stdout
    if dry_run:
        console.print(f"dry run: {len(changes)} change(s) not published")
        return
    console.print(f"applied {len(changes)} change(s)" if changes else "nothing to change")
