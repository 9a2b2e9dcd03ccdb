"""`vigil monitors templates | new | save-template`: monitors made from templates."""

from __future__ import annotations

from pathlib import Path

import typer

from vigil.cli.common import check_format, console, print_rows, settings
from vigil.errors import VigilError

templates_app = typer.Typer()


@templates_app.command("templates")
def monitors_templates(
    project: Path = typer.Option(None, "--project", help="also its templates/ folder"),
    fmt: str = typer.Option("table", "--format", help="table | json | csv"),
) -> None:
    """The monitor templates: vigil's library by risk category, and the project's own."""
    from vigil.config.templates import library

    check_format(fmt)
    rows = [
        [
            template.name,
            template.risk_category,
            ", ".join(f"{k}={v.default}" for k, v in template.params.items()),
            template.description,
        ]
        for template in library(project or settings().project_dir).values()
    ]
    columns = ["template", "risk category", "params", "what it watches"]
    print_rows(columns, rows, fmt, title="templates")


@templates_app.command("new")
def monitors_new(
    template: str = typer.Option(..., "--template", help="a name from `vigil monitors templates`"),
    addresses: list[str] = typer.Option(..., "--address", help="contract address (repeatable)"),
    network: str = typer.Option(..., "--network", help="a network of the project"),
    name: str = typer.Option(None, "--name", help="monitor name (default: from the template)"),
    params: list[str] = typer.Option([], "--set", help="template parameter, KEY=VALUE"),
    channels: list[str] = typer.Option([], "--channel", help="channel alias (repeatable)"),
    out: Path = typer.Option(None, "--out", help="file to write (default: PROJECT/monitors/)"),
    project: Path = typer.Option(None, "--project", help="project dir (default VIGIL_PROJECT_DIR)"),
) -> None:
    """Write a monitor file from a template, checked like any monitor file."""
    from vigil.config.templates import instantiate, library, parse_params

    root = project or settings().project_dir
    templates = library(root)
    if template not in templates:
        raise VigilError(
            f"--template: no template {template!r}; available: {', '.join(sorted(templates))}"
        )
    _known_to_project(root, network, channels)
    text, monitor_id = instantiate(
        templates[template], addresses, network, name, parse_params(params), channels
    )
    target = out or root / "monitors" / f"{monitor_id}.yaml"
    if target.exists():
        raise VigilError(f"{target} exists; choose another --name or --out")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    try:
        from vigil.config.loader import load_monitor_file
        from vigil.processors.checks import check_monitor

        check_monitor(load_monitor_file(target))
    except VigilError:
        target.unlink()
        raise
    console.print(f"wrote {target}; `vigil apply` starts it")


def _known_to_project(root: Path, network: str, channels: list[str]) -> None:
    """The network and channel aliases a new monitor names must be the project's."""
    from vigil.config.loader import load_project
    from vigil.config.problems import suggestion

    project = load_project(root)
    if network not in project.config.networks:
        known = sorted(project.config.networks)
        raise VigilError(
            f"--network: {root / 'vigil.yaml'} has no network {network!r}; it defines: "
            f"{', '.join(known) or 'none'}{suggestion(network, known)}"
        )
    for alias in channels:
        if alias not in project.channels:
            known = sorted(project.channels)
            raise VigilError(
                f"--channel: no channel alias {alias!r} in {root / 'channels'}; it defines: "
                f"{', '.join(known) or 'none'}{suggestion(alias, known)}"
            )


@templates_app.command("save-template")
def monitors_save_template(
    monitor_file: Path = typer.Argument(..., help="a monitor YAML file"),
    name: str = typer.Option(..., "--name", help="template name"),
    project: Path = typer.Option(None, "--project", help="project dir (default VIGIL_PROJECT_DIR)"),
) -> None:
    """Save a monitor as a template of the project (PROJECT/templates/NAME.yaml)."""
    from vigil.config.loader import load_monitor_file
    from vigil.config.templates import save_template
    from vigil.processors.checks import check_monitor

    check_monitor(load_monitor_file(monitor_file))  # only a valid monitor becomes a template
    target = save_template(monitor_file, name, project or settings().project_dir)
    console.print(f"wrote {target}; use it with `vigil monitors new --template {name}`")
