"""`vigil tasks run NAME`: a run through the stack's runner; `vigil tasks run PATH --local`:
one run of a task file or folder, in the same sandbox and limits, without the stack."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from vigil.cli.common import console, err, settings
from vigil.errors import VigilError

tasks_app = typer.Typer(
    help="User tasks: list, run (in the stack or locally), make a webhook URL.",
    no_args_is_help=True,
)


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
    path: Path = typer.Argument(
        ..., help="an applied task's id; with --local, a .py file or a folder with main.py"
    ),
    local: bool = typer.Option(False, "--local", help="run PATH here, without the stack"),
    payload: str = typer.Option(None, "--payload", help="the request body: JSON or @file"),
    timeout: float = typer.Option(300.0, "--timeout", min=0.1, max=900, help="seconds"),
    memory: int = typer.Option(256, "--memory", min=32, max=4096, help="MB"),
    fmt: str = typer.Option("table", "--format", help="table | json (the run record only)"),
) -> None:
    """Run a task once: handler(event, context) gets the payload as event.request.body.
    Through the stack, the answer waits up to 25 s (VIGIL_TASK_WEBHOOK_WAIT); a longer run
    answers pending and goes on.
    Exit status: 0 the task succeeded (or is pending), 1 it failed, 2 bad input."""
    from vigil.config.loader import address_book
    from vigil.config.tasks import package
    from vigil.connectors.tasks.envs import for_files
    from vigil.connectors.tasks.kv import LocalApi
    from vigil.connectors.tasks.runner import Limits, run

    if fmt not in ("table", "json"):
        raise VigilError(f"--format: expected table or json, got {fmt!r}")
    body = _payload(payload)
    built = settings()
    if not local:
        _through_stack(built, str(path), body, fmt)
        return
    files = package(path)
    secrets = {name: value.get_secret_value() for name, value in built.secrets.items()}
    event = {
        "request": {"body": body, "headers": {}, "queryParameters": {}},
        "secrets": secrets,
        "taskId": path.stem,
        "taskName": path.stem,
        "runId": "local",
        "trigger": "manual",
        "contracts": address_book(built.project_dir),  # the project's, by name
    }
    api = LocalApi()
    python = for_files(built.data_dir / "task-envs", files)  # its requirements, built once
    limits = Limits(timeout=timeout, memory_mb=memory)
    record = run(files, event, api, limits, secrets, python)
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


def _through_stack(built: Any, task_id: str, body: Any, fmt: str) -> None:
    from vigil.cli.common import stack_bootstrap, stack_codec
    from vigil.streams.tasks import RunWatch, request_run

    bootstrap = stack_bootstrap(built, "request the run through")
    codec = stack_codec(built)
    watch = RunWatch(built, bootstrap, codec)
    run_id = request_run(built, bootstrap, codec, task_id, body)
    wait = built.task_webhook_wait
    record = watch.wait(run_id, wait) or {"runId": run_id, "status": "pending"}
    if fmt == "json":
        print(json.dumps(record, default=str))
    else:
        status = record["status"]
        colour = {"success": "green", "pending": "yellow"}.get(status, "red")
        console.print(f"run {run_id}: [{colour}]{status}[/]", highlight=False)
        if record.get("logs"):
            console.print(record["logs"].rstrip(), highlight=False, markup=False)
        if status == "success":
            console.print(f"result: {record['result']}", highlight=False)
        elif status == "pending":
            console.print("still running; its record lands in the task_runs table", highlight=False)
        else:
            console.print(f"{record['errorType']}: {record['errorMessage']}", highlight=False)
    raise typer.Exit(0 if record["status"] in ("success", "pending") else 1)


@tasks_app.command("list")
def tasks_list(fmt: str = typer.Option("table", "--format", help="table | json | csv")) -> None:
    """The applied tasks: id, name, version, schedule, limits, paused."""
    from vigil.cli.common import check_format, print_rows, stack_bootstrap, stack_codec
    from vigil.streams.tasks import applied_tasks

    check_format(fmt)
    built = settings()
    found = applied_tasks(built, stack_bootstrap(built, "read the tasks from"), stack_codec(built))
    rows = [
        [
            task_id,
            task["config"]["name"],
            task["version"][:12],
            _schedule(task["config"].get("schedule")),
            f"{task['config']['timeout']:g} s",
            f"{task['config']['memory_mb']} MB",
            "yes" if task["config"].get("paused") else "no",
        ]
        for task_id, task in sorted(found.items())
    ]
    headers = ["id", "name", "version", "schedule", "timeout", "memory", "paused"]
    print_rows(headers, rows, fmt, title="tasks")


def _schedule(schedule: dict[str, Any] | None) -> str:
    if not schedule:
        return ""
    return f"every {schedule['every']}" if schedule.get("every") else f"cron {schedule['cron']}"


@tasks_app.command("webhook")
def tasks_webhook(
    task_id: str = typer.Argument(..., help="an applied task's id"),
    base: str = typer.Option(
        None, "--base-url", help="the API's public address (default: http://VIGIL_API_BIND)"
    ),
) -> None:
    """Make the task's webhook URL and print it, once: vigil keeps only its hash. Running
    this again makes a new URL, and the old one answers 404 from then on."""
    from vigil.cli.common import stack_bootstrap, stack_codec
    from vigil.streams.task_webhooks import new_webhook
    from vigil.streams.tasks import applied_tasks

    built = settings()
    bootstrap = stack_bootstrap(built, "keep the webhook in")
    known = applied_tasks(built, bootstrap, stack_codec(built))
    if task_id not in known:
        raise VigilError(
            f"TASK: no applied task {task_id!r}; applied: {', '.join(sorted(known)) or 'none'}"
        )
    token = new_webhook(built, bootstrap, task_id)
    print(f"{(base or built.api_url).rstrip('/')}/tasks/{task_id}/webhook/{token}")
    err.print(
        "POST JSON to it; this is the only time it is shown (run again for a new one)",
        highlight=False,
    )


@tasks_app.command("deploy")
def tasks_deploy(
    path: Path = typer.Argument(..., help="a .py file, or a folder with main.py"),
    name: str = typer.Option(..., "--name", help="the task's name"),
    task_id: str = typer.Option(None, "--id", help="its id (default: the name, slugged)"),
    timeout: float = typer.Option(None, "--timeout", help="seconds a run may take (300)"),
    memory: int = typer.Option(None, "--memory", help="MB a run may use (256)"),
    every: str = typer.Option(None, "--every", help="run by itself: 90s, 5m, 2h"),
    cron: str = typer.Option(None, "--cron", help="run by itself: five cron fields (UTC)"),
    failure: list[str] = typer.Option([], "--failure-channel", help="told when a run fails"),
    relayer: str = typer.Option(None, "--relayer", help="context.relayer sends through it"),
) -> None:
    """Publish a task outside the project's files (every version is kept). The project's
    files stay the source of truth: a `vigil apply` of a project without this task removes
    it."""
    from vigil.cli.common import stack_bootstrap, stack_codec
    from vigil.config.tasks import package
    from vigil.config.templates import slug
    from vigil.streams.config_topics import put_object, task_change

    files = package(path)
    definition: dict[str, Any] = {"name": name, "code": path.name}
    for key, value in (("timeout", timeout), ("memory_mb", memory)):
        if value is not None:
            definition[key] = value
    if every is not None or cron is not None:
        definition["schedule"] = {"every": every, "cron": cron}
    if failure:
        definition["failure_channels"] = failure
    if relayer is not None:
        definition["relayer"] = relayer
    chosen = task_id or slug(name)
    built = settings()
    bootstrap = stack_bootstrap(built, "publish the task to")
    codec = stack_codec(built)
    change = task_change(built, bootstrap, codec, chosen, definition, files, f"deploy {path}")
    effect = put_object(built, bootstrap, codec, change)
    console.print(f"task {chosen}: {effect}, version {change.version[:12]}", highlight=False)


@tasks_app.command("route")
def tasks_route(
    task_id: str = typer.Argument(..., help="an applied task's id"),
    method: str = typer.Option("POST", "--method", help="the one method the route takes"),
    content_type: str = typer.Option(
        None, "--content-type", help="the one content type it takes (default: any)"
    ),
    path: str = typer.Option("", "--path", help="a path suffix the URL ends with"),
    base: str = typer.Option(
        None, "--base-url", help="the API's public address (default: http://VIGIL_API_BIND)"
    ),
) -> None:
    """Print a sink route's URL: a call runs the task and answers with what it returns
    (status, headers, body). Signed with the server secret, stored nowhere: a new
    VIGIL_ROUTE_SECRET invalidates every route."""
    from vigil.cli.common import stack_bootstrap, stack_codec
    from vigil.config.sink_routes import SinkRoute
    from vigil.stack.access import route_secret
    from vigil.streams.tasks import applied_tasks

    wanted = method.upper()
    if wanted not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        raise VigilError(f"--method: expected GET, POST, PUT, PATCH or DELETE, got {method!r}")
    built = settings()
    secret = route_secret(built)
    if secret is None:
        raise VigilError(
            f"no route secret: set VIGIL_ROUTE_SECRET, or start the stack once with `vigil up` "
            f"(it keeps one in {built.data_dir})"
        )
    known = applied_tasks(built, stack_bootstrap(built, "read the tasks from"), stack_codec(built))
    if task_id not in known:
        raise VigilError(
            f"TASK: no applied task {task_id!r}; applied: {', '.join(sorted(known)) or 'none'}"
        )
    route = SinkRoute(task_id, wanted, content_type, path.strip("/"))
    print(f"{(base or built.api_url).rstrip('/')}{route.path(secret)}")
