"""The `vigil` command line."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer

from vigil.cli.common import (
    check_format,
    console,
    err,
    history_query,
    print_rows,
    stack_bootstrap,
    stack_codec,
    state,
)
from vigil.cli.common import settings as _settings
from vigil.cli.keys import keys_app
from vigil.cli.monitors import monitors_app
from vigil.cli.notify import channels_app, deliveries_app
from vigil.cli.project import project_app
from vigil.cli.relayers import relayers_app
from vigil.cli.replay import replay
from vigil.cli.secrets import secrets_app
from vigil.cli.subscribe import tail
from vigil.cli.tasks import tasks_app
from vigil.errors import VigilError

app = typer.Typer(
    help="vigil: watch EVM chains, match monitors, notify, keep history.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from vigil import __version__

        console.print(f"vigil {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    debug: bool = typer.Option(False, "--debug", help="show tracebacks"),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="print the version and exit"
    ),
) -> None:
    state["debug"] = debug


@app.command()
def up() -> None:
    """Run vigil: embedded Kafka (unless VIGIL_KAFKA_BOOTSTRAP), API, worker, ingester."""
    from vigil.stack.supervisor import up as run_up

    raise typer.Exit(run_up(_settings(), say=lambda text: console.print(f"[bold]vigil[/] {text}")))


@app.command()
def serve() -> None:
    """API, schema registry and history sink (started by `vigil up`)."""
    from vigil.stack.roles import serve as run

    run(_settings())


@app.command()
def worker() -> None:
    """The Faust worker: matching and notifications (started by `vigil up`)."""
    from vigil.stack.roles import worker as run

    sys.argv = [sys.argv[0], "worker"]  # faust's Worker parses argv itself
    run(_settings())


@app.command()
def runner() -> None:
    """The task runner: runs requested tasks in the sandbox (started by `vigil up`)."""
    from vigil.stack.roles import runner as run

    run(_settings())


@app.command()
def ingest() -> None:
    """The block ingester (started by `vigil up`)."""
    from vigil.stack.roles import ingest as run

    run(_settings())


@app.command()
def backfill(
    network: str = typer.Option(..., "--network", help="a network of the project"),
    first: int = typer.Option(None, "--from", min=0, help="first block"),
    last: int = typer.Option(None, "--to", min=0, help="last block (inclusive)"),
    reorg: int = typer.Option(
        None,
        "--reorg",
        min=1,
        help="repair a reorg deeper than the window: retract what vigil emitted from this "
        "block on that the node no longer has, and resume ingestion there",
    ),
) -> None:
    """Re-ingest a block range into the running stack (effects stay once: they are keyed)."""
    from vigil.config.loader import load_project
    from vigil.streams.evm.ingester import Ingester
    from vigil.streams.kafka import BatchProducer

    settings = _settings()
    if reorg is not None and (first is not None or last is not None):
        raise VigilError("give either --reorg FROM or --from A --to B, not both")
    if reorg is None and (first is None or last is None):
        raise VigilError("give --from A --to B (a range to re-emit) or --reorg FROM (a repair)")
    if reorg is None and last < first:
        raise VigilError(f"--to {last} is before --from {first}")
    project = load_project(settings.project_dir)
    if network not in project.config.networks:
        raise VigilError(
            f"--network: unknown network {network!r}; the project defines: "
            f"{', '.join(sorted(project.config.networks)) or 'none'}"
        )
    bootstrap = stack_bootstrap(settings, "backfill into")
    codec = stack_codec(settings)
    sink = BatchProducer(settings, bootstrap, client_id="vigil-backfill")
    ingester = Ingester(settings, network, project.config.networks[network], sink, codec, bootstrap)
    try:
        if reorg is not None:
            count = ingester.repair(reorg, _emitted_blocks(settings, network, reorg))
            console.print(
                f"repaired {network}: {count} block(s) retracted; ingestion resumes at {reorg}"
            )
            return
        _re_emit(ingester, network, first, last)
    finally:
        sink.close()


def _emitted_blocks(settings: Any, network: str, first: int) -> list[tuple[int, str]]:
    """The live blocks of ``network`` from ``first`` on that history recorded."""
    query = (
        "SELECT number, hash FROM blocks FINAL WHERE network = "
        f"'{network.replace(chr(39), '')}' AND number >= {int(first)} AND retracted = 0"
    )
    try:
        _, rows = history_query(settings, query)
    except VigilError as exc:
        err.print(f"[yellow]warning:[/] history not read ({exc}); using the checkpoint's window")
        return []
    return [(int(number), str(block_hash)) for number, block_hash in rows]


def _re_emit(ingester: Any, network: str, first: int, last: int) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err) as bar:
        task = bar.add_task(f"backfill {network}", total=last - first + 1)
        count = ingester.backfill(first, last, lambda n: bar.advance(task, n))
    console.print(f"re-emitted {count} blocks of {network} ({first}..{last})")


app.add_typer(monitors_app, name="monitors")
app.add_typer(deliveries_app, name="deliveries")
app.add_typer(channels_app, name="channels")
app.add_typer(keys_app, name="keys")
app.add_typer(tasks_app, name="tasks")
app.add_typer(secrets_app, name="secrets")
app.add_typer(relayers_app, name="relayers")
app.add_typer(project_app)  # validate, apply: top-level commands


@app.command()
def status(
    fmt: str = typer.Option("table", "--format", help="table | json"),
) -> None:
    """One screen: processes up or down, consumer lag, network head and lag, DLQ, errors."""
    from vigil.config.loader import load_project
    from vigil.stack.status import status as gather

    if fmt not in ("table", "json"):
        raise VigilError(f"--format: expected table or json, got {fmt!r}")
    settings = _settings()
    bootstrap, codec = None, None
    try:
        bootstrap = stack_bootstrap(settings, "read the status of")
        codec = stack_codec(settings)
    except VigilError as exc:
        err.print(f"[yellow]note:[/] {exc}", highlight=False, soft_wrap=True)
    report = gather(load_project(settings.project_dir), settings, bootstrap, codec)
    if fmt == "json":
        print(json.dumps(report, default=str))
        return
    sections = [
        ("processes", ["process", "pid", "up", "restarts"]),
        ("networks", ["network", "emitted", "head", "lag", "error"]),
        ("lag", ["group", "topic", "lag"]),
        ("errors", ["log", "line"]),
    ]
    for key, columns in sections:
        rows = [[row.get(c) for c in columns] for row in report.get(key) or []]
        if rows:
            print_rows(columns, rows, "table", title=key)
    if "dead_letters" in report:
        console.print(f"dead letters: {report['dead_letters']}")
    if "kafka_error" in report:
        err.print(f"[red]Kafka:[/] {report['kafka_error']}", highlight=False, soft_wrap=True)


@app.command()
def topics(
    fmt: str = typer.Option("table", "--format", help="table | json | csv"),
) -> None:
    """The topic catalogue: names, keys, value schemas and their registry subjects, partitions,
    order, retention, who writes each and what it holds."""
    from vigil.schemas.catalogue import CATALOGUE

    check_format(fmt)
    settings = _settings()
    rows = [
        [
            settings.topic(t.suffix),
            t.key,
            f"vigil.{t.schema}",
            f"{settings.topic(t.suffix)}-value",
            t.partitions(settings.kafka_partitions),
            t.order,
            "compacted" if t.compacted else f"{t.retention_ms // 86_400_000} days",
            t.writer,
            t.doc,
        ]
        for t in CATALOGUE
    ]
    columns = ["topic", "key", "schema", "subject", "partitions", "order", "kept", "writer"]
    print_rows([*columns, "what"], rows, fmt)


app.command()(tail)
app.command()(replay)


@app.command()
def sql(
    query: str | None = typer.Argument(None, help="a read-only SELECT (or --query NAME)"),
    name: str | None = typer.Option(
        None, "--query", help="a ready-made query instead (`--queries` lists them)"
    ),
    params: list[str] = typer.Option(
        [], "--param", help="NAME=VALUE for --query, repeatable (e.g. hours=6)"
    ),
    listed: bool = typer.Option(False, "--queries", help="list the ready-made queries"),
    fmt: str = typer.Option("table", "--format", help="table | json | csv"),
) -> None:
    """Run read-only SQL over the history (through the running API when vigil is up), or a
    ready-made query: `vigil sql --query matches-per-monitor-per-day --param days=7`."""
    check_format(fmt)
    if listed:
        _list_queries(fmt)
        return
    if (query is None) == (name is None):
        raise VigilError("give either a SELECT or --query NAME (`vigil sql --queries` lists them)")
    if name is None and params:
        raise VigilError("--param goes with --query NAME; a SELECT of your own takes none")
    if name is not None:
        _run_query(name, params, fmt)
        return
    assert query is not None
    columns, rows = history_query(_settings(), query)
    print_rows(columns, rows, fmt)


def _list_queries(fmt: str) -> None:
    from vigil.connectors.history.queries import QUERIES

    rows = [
        [
            q.name,
            q.doc,
            " ".join(f"{p.name}={p.shown_default if p.kind == 'int' else ''}" for p in q.params),
        ]
        for q in QUERIES.values()
    ]
    print_rows(["name", "answers", "params (defaults)"], rows, fmt, title="ready-made queries")


def _run_query(name: str, params: list[str], fmt: str) -> None:
    from vigil.connectors.history.queries import ready_query

    given = {}
    for param in params:
        key, sep, value = param.partition("=")
        if not sep or not key:
            raise VigilError(f"--param: expected NAME=VALUE such as hours=6, got {param!r}")
        given[key] = value
    columns, rows = history_query(_settings(), ready_query(name).render(given))
    print_rows(columns, rows, fmt)


queries_app = typer.Typer(
    help="Ready-made queries over the history: list them, run one (also `vigil sql --query`).",
    no_args_is_help=True,
)
app.add_typer(queries_app, name="queries")


@queries_app.command("list")
def queries_list(fmt: str = typer.Option("table", "--format", help="table | json | csv")) -> None:
    """The ready-made queries, what each answers and its parameters."""
    check_format(fmt)
    _list_queries(fmt)


@queries_app.command("run")
def queries_run(
    name: str = typer.Argument(..., help="a query from `vigil queries list`"),
    params: list[str] = typer.Option([], "--param", help="NAME=VALUE, repeatable"),
    fmt: str = typer.Option("table", "--format", help="table | json | csv"),
) -> None:
    """Run a ready-made query (read-only, under the SQL limits)."""
    check_format(fmt)
    _run_query(name, params, fmt)


@app.command()
def demo(
    exit_after: bool = typer.Option(False, "--exit", help="stop once the matches show"),
) -> None:
    """The local demo: anvil, a deployed OpenZeppelin ERC20+Ownable token, vigil, a webhook."""
    from vigil.demo import run_demo

    raise typer.Exit(run_demo(_settings(), console, exit_after=exit_after))


def main() -> None:
    """Entry point: errors print as one line unless --debug."""
    try:
        code = app(standalone_mode=False)  # click returns a command's typer.Exit code here
    except VigilError as exc:
        if state["debug"]:
            raise
        err.print(f"[red]error:[/] {exc}", highlight=False, markup=True, soft_wrap=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:
        # typer 0.29 ships its own copy of click (pinned in pyproject.toml): its exceptions,
        # not click's, are what a usage error raises
        from typer._click.exceptions import ClickException, UsageError

        if isinstance(exc, ClickException) and not state["debug"]:
            hint = ""
            if isinstance(exc, UsageError) and exc.ctx is not None:
                names, ctx = [], exc.ctx
                while ctx.parent is not None:  # the root's name may be `python -m vigil`
                    names.append(str(ctx.info_name))
                    ctx = ctx.parent
                hint = f" (see `{' '.join(['vigil', *reversed(names)])} --help`)"
            err.print(
                f"[red]error:[/] {exc.format_message()}{hint}", highlight=False, soft_wrap=True
            )
            sys.exit(2)
        if isinstance(exc, typer.Abort):
            sys.exit(130)
        raise
    sys.exit(code if isinstance(code, int) else 0)
