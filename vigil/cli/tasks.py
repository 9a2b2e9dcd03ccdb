"""`vigil tasks run PATH --local`: one run of a task file or folder, in the same sandbox and
limits the stack's runner uses, without the stack."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from vigil.cli.common import console, settings
from vigil.errors import VigilError

tasks_app = typer.Typer(help="User tasks: run one locally.", no_args_is_help=True)


def _payload(text: str | None) -> Any:
    if text is None:
        return {}
    where = "--payload"
    if text.startswith("@"):
        path = Path(text[1:])
        where = f"--payload {path}"
        try:
            text = path.read_text()
        except OSError as exc:
            raise VigilError(f"{where}: cannot read it: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise VigilError(f"{where}: expected JSON (or @file of JSON): {exc}") from None


@tasks_app.command("run")
def tasks_run(
    path: Path = typer.Argument(..., help="a task: a .py file or a folder with main.py"),
    local: bool = typer.Option(False, "--local", help="run here, without the stack"),
    payload: str = typer.Option(None, "--payload", help="the request body: JSON or @file"),
    timeout: float = typer.Option(300.0, "--timeout", min=0.1, max=900, help="seconds"),
    memory: int = typer.Option(256, "--memory", min=32, max=4096, help="MB"),
    fmt: str = typer.Option("table", "--format", help="table | json (the run record only)"),
) -> None:
    """Run a task once: handler(event, context) gets the payload as event.request.body.
    Exit status: 0 the task succeeded, 1 it failed (error, timeout, killed), 2 bad input."""
    from vigil.config.tasks import package
    from vigil.connectors.tasks.kv import LocalApi
    from vigil.connectors.tasks.runner import Limits, run

    if fmt not in ("table", "json"):
        raise VigilError(f"--format: expected table or json, got {fmt!r}")
    if not local:
        raise VigilError(
            "give --local: runs through the stack's task runner are not built yet (issue 14)"
        )
    files = package(path)
    body = _payload(payload)
    built = settings()
    secrets = {name: value.get_secret_value() for name, value in built.secrets.items()}
    event = {
        "request": {"body": body, "headers": {}, "queryParameters": {}},
        "secrets": secrets,
        "taskId": path.stem,
        "taskName": path.stem,
        "runId": "local",
        "trigger": "manual",
    }
    api = LocalApi()
    record = run(files, event, api, Limits(timeout=timeout, memory_mb=memory), secrets)
    if fmt == "json":
        print(json.dumps(record.as_json(), default=str))
    else:
        colour = "green" if record.status == "success" else "red"
        console.print(f"[{colour}]{record.status}[/] in {record.duration_ms} ms")
        if record.logs:
            console.print(record.logs.rstrip(), highlight=False, markup=False)
        for sent in record.notifications:
            console.print(f"notification (not sent: a local run): {json.dumps(sent)}")
        if record.status == "success":
            console.print(f"result: {json.dumps(record.result, default=str)}", highlight=False)
        else:
            console.print(f"{record.error_type}: {record.error_message}", highlight=False)
    raise typer.Exit(0 if record.status == "success" else 1)
