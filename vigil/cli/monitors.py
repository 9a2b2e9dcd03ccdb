"""`vigil monitors ...`: test, list, pause, resume, and monitors made from templates."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from vigil.cli.common import (
    console,
    err,
    settings,
    stack_bootstrap,
    stack_codec,
)
from vigil.cli.templates import templates_app
from vigil.errors import VigilError

monitors_app = typer.Typer(
    help="Monitors: test on past blocks, list, pause, resume, make from templates.",
    no_args_is_help=True,
)


def _local_filter(monitor: Any) -> Any:
    """The monitor's custom filter run by the local runner (as `vigil runner` runs it), or
    None. A failed call keeps nothing and says why on stderr."""
    if monitor.config.filter is None:
        return None
    from vigil.cli.common import err
    from vigil.config.loader import load_project
    from vigil.connectors.tasks.envs import for_files
    from vigil.connectors.tasks.kv import LocalApi
    from vigil.connectors.tasks.runner import Limits, run
    from vigil.processors.filters import FilterAnswerError, kept, request_body, requests

    files, limits = monitor.filter_files, Limits(timeout=30.0)
    if files is None:
        tasks = {t.id: t for t in load_project(settings().project_dir).tasks}
        task = tasks.get(monitor.config.filter)
        if task is None:
            raise VigilError(
                f"{monitor.file}: filter: no task {monitor.config.filter!r} in the project "
                f"({settings().project_dir}); tasks: {', '.join(sorted(tasks)) or 'none'}"
            )
        files = task.files
        limits = Limits(timeout=task.config.timeout, memory_mb=task.config.memory_mb)
    python = for_files(settings().data_dir / "task-envs", files)
    built = settings()
    secrets = {n: v.get_secret_value() for n, v in built.secrets.items()}

    def keep(matches: list[Any]) -> list[Any]:
        chosen = []
        for group in requests(matches):
            event = {
                "request": {
                    "body": request_body(group, monitor.abi),
                    "headers": {},
                    "queryParameters": {},
                },
                "secrets": secrets,
                "trigger": "filter",
                "runId": "local",
            }
            record = run(files, event, LocalApi(), limits, secrets, python)
            if record.status != "success":
                err.print(f"filter: {record.error_type}: {record.error_message}", markup=False)
                continue
            try:
                chosen += kept(group, record.result)
            except FilterAnswerError as exc:
                err.print(f"filter: {exc}", markup=False)
        return chosen

    return keep


@monitors_app.command("test")
def monitors_test(
    monitor_file: str = typer.Argument(
        ..., help="a monitor YAML file (no project needed), or a monitor id of the project"
    ),
    blocks: str = typer.Option(
        None,
        "--blocks",
        help="JSON file: a block or an array of blocks in eth_getBlockByNumber(…, true) shape; "
        "with --network: a range A..B",
    ),
    receipts: Path = typer.Option(
        None, "--receipts", help="JSON array of receipts in eth_getBlockReceipts shape"
    ),
    network: str = typer.Option(
        None, "--network", help="a project network: its blocks from history, else its nodes"
    ),
    block: int = typer.Option(None, "--block", min=0, help="with --network: the block"),
    tx: str = typer.Option(None, "--tx", help="with --network: one transaction, by hash"),
    alerts: Path = typer.Option(
        None,
        "--alerts",
        help="Forta monitors: JSON alerts (a list, a Local Mode batch, an API page)",
    ),
    fmt: str = typer.Option("table", "--format", help="table | json"),
) -> None:
    """Run one monitor over blocks (or alerts), without Kafka, with the worker's matching code
    (and its custom filter, in the local sandbox: kept matches carry their metadata). With
    --network, the blocks come from history when it holds them all, else from the nodes."""
    from vigil.processors.checks import check_monitor

    if fmt not in ("table", "json"):
        raise VigilError(f"--format: expected table or json, got {fmt!r}")
    monitor = check_monitor(_monitor(monitor_file))
    if monitor.is_forta or alerts is not None:
        _test_forta(monitor, alerts, fmt)
        return
    events = _events(monitor, blocks, receipts, network, block, tx)
    if fmt == "json":
        print(json.dumps(events))
        return
    table = Table(
        "block", "transaction", "reasons", title=f"{monitor.config.name}: {len(events)} match(es)"
    )
    for event in events:
        reasons = (
            "; ".join(
                f"{r['type']} {r['signature'] or r['condition'] or ''} "
                f"{json.dumps(r['params']) if r['params'] else ''}".strip()
                for r in event["matchReasons"]
            )
            or "touches a monitored address"
        )
        table.add_row(str(int(event["blockNumber"], 16)), event["hash"], reasons)
    console.print(table)


def _events(
    monitor: Any,
    blocks: str | None,
    receipts: Path | None,
    network: str | None,
    block: int | None,
    tx: str | None,
) -> list[dict[str, Any]]:
    """The monitor's match events over the blocks the options name (files, or a network's)."""
    from vigil.processors.replay import load_blocks, run_monitor

    if network is None and (block is not None or tx is not None):
        raise VigilError("--block and --tx need --network NAME")
    if network is None and blocks is None:
        raise VigilError(
            "give either --blocks FILE [--receipts FILE] or --network NAME with --block N, "
            "--blocks A..B or --tx HASH"
        )
    if network is not None:
        return _from_network(monitor, network, blocks, block, tx)
    path = Path(str(blocks))
    pairs = load_blocks(path, receipts)
    if receipts is None:
        _receipts_needed(monitor, path)
    return run_monitor(monitor, pairs, keep=_local_filter(monitor))


@monitors_app.command("preview")
def monitors_preview(
    monitor_id: str = typer.Argument(..., help="a monitor id of the project, or its file"),
    blocks: str = typer.Option(
        None, "--blocks", help="JSON block(s) as for `monitors test`; with --network: A..B"
    ),
    receipts: Path = typer.Option(None, "--receipts", help="JSON receipts, as for `test`"),
    network: str = typer.Option(None, "--network", help="a project network, as for `test`"),
    block: int = typer.Option(None, "--block", min=0, help="with --network: the block"),
    tx: str = typer.Option(None, "--tx", help="with --network: one transaction, by hash"),
    channel: str = typer.Option(
        None, "--channel", help="only this alias (default: the monitor's channels)"
    ),
    number: int = typer.Option(1, "--match", min=1, help="which match to show (1: the first)"),
    fmt: str = typer.Option("text", "--format", help="text | json"),
) -> None:
    """The monitor's message for a real match, exactly as each of its channels would send it
    (the same rendering, escaping and truncation as a delivery), credentials left out."""
    from vigil.config.loader import load_project, routed
    from vigil.config.state import default_explorer
    from vigil.connectors.notify.channels import channel_class
    from vigil.connectors.notify.delivery import Messages
    from vigil.connectors.notify.render import with_links
    from vigil.processors.checks import check_monitor

    if fmt not in ("text", "json"):
        raise VigilError(f"--format: expected text or json, got {fmt!r}")
    project = load_project(settings().project_dir)
    monitor = routed(check_monitor(_monitor(monitor_id)), project.config)
    aliases = [channel] if channel else list(monitor.config.channels)
    unknown = [a for a in aliases if a not in project.channels]
    if unknown or not aliases:
        raise VigilError(
            f"--channel: no channel {unknown[0]!r} in {project.root}; it has: "
            f"{', '.join(sorted(project.channels)) or 'none'}"
            if unknown
            else f"monitor {monitor.id!r} sends to no channel; give --channel ALIAS"
        )
    events = _events(monitor, blocks, receipts, network, block, tx)
    if len(events) < number:
        raise VigilError(
            f"--match {number}: monitor {monitor.id!r} matched {len(events)} time(s) in "
            "those blocks; nothing to preview" + (" (try other blocks)" if not events else "")
        )
    event = events[number - 1]
    net = project.config.networks.get(monitor.config.network or "")
    chain_id = event["monitor"].get("chainId") or (net.chain_id if net else 0)
    explorer = (net.explorer_url if net else None) or default_explorer(int(chain_id))
    shown = []
    for alias in aliases:
        for loaded in project.channels[alias]:
            cls = channel_class(loaded.config.type)
            messages = Messages.choose(monitor.config.message, loaded.config.template, cls.chat)
            linked = with_links(event, explorer) if cls.linked else event
            sent = cls.preview(loaded.config, [linked], messages)
            shown.append({"channel": alias, "type": loaded.config.type, "sends": sent})
    if fmt == "json":
        print(json.dumps(shown, default=str))
        return
    for item in shown:
        console.print(f"[bold]── {item['channel']} ({item['type']}) ──[/]", highlight=False)
        parts = item["sends"]
        for key in ("subject", "text", "content", "html", "message", "description"):
            if isinstance(parts.get(key), str):
                console.print(f"[bold]{key}[/]", highlight=False)
                console.print(parts[key], markup=False, highlight=False)
        if not any(isinstance(parts.get(k), str) for k in ("text", "content", "html")):
            console.print_json(json.dumps(parts, default=str))


def _monitor(given: str) -> Any:
    """The monitor in file ``given``, or the project's monitor of that id."""
    from vigil.config.loader import load_monitor_file, load_project

    path = Path(given)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return load_monitor_file(path)
    project = load_project(settings().project_dir)
    found = {m.id: m for m in project.monitors}
    if given not in found:
        raise VigilError(
            f"{given!r} is neither a monitor file nor a monitor of {project.root}; it has: "
            f"{', '.join(sorted(found)) or 'none'}"
        )
    return found[given]


def _from_network(
    monitor: Any, network: str, blocks: str | None, block: int | None, tx: str | None
) -> list[dict[str, Any]]:
    """The monitor over a network's blocks: read from history when it holds them all (fast,
    and for blocks the node pruned), else fetched from the network's nodes."""
    from vigil.cli.replay import block_range
    from vigil.config.loader import load_project
    from vigil.processors.matching import compile_monitor
    from vigil.processors.replay import run_monitor_on
    from vigil.streams.evm.rpc import RpcPool
    from vigil.streams.replay import node_blocks

    if sum(x is not None for x in (blocks, block, tx)) != 1:
        raise VigilError("with --network, give one of --block N, --blocks A..B or --tx HASH")
    if tx is not None and not re.fullmatch(r"0x[0-9a-fA-F]{64}", tx):
        raise VigilError(f"--tx: expected a 0x-prefixed 64-hex-digit hash, got {tx!r}")
    networks = load_project(settings().project_dir).config.networks
    if network not in networks:
        raise VigilError(
            f"--network: unknown network {network!r}; the project defines: "
            f"{', '.join(sorted(networks)) or 'none'}"
        )
    chain_id = networks[network].chain_id
    tx = tx.lower() if tx else None
    first, last = block_range(blocks) if blocks else (block, block) if block is not None else (0, 0)
    addresses = compile_monitor(monitor, chain_id).addresses
    records = _history_blocks(network, chain_id, first, last, tx, addresses)
    keep = _local_filter(monitor)
    if records is not None:
        err.print(f"[dim]blocks read from history ({len(records)})[/]", highlight=False)
        return run_monitor_on(monitor, records, chain_id, keep=keep, only_tx=tx)
    if tx is not None:
        pool = RpcPool.for_network(network, networks[network], settings())
        try:
            found = pool.call("eth_getTransactionByHash", [tx])
        finally:
            pool.close()
        if not found or found.get("blockNumber") is None:
            raise VigilError(f"--tx: the nodes of {network} know no mined transaction {tx}")
        first = last = int(found["blockNumber"], 16)
    records = list(node_blocks(settings(), network, networks[network], first, last))
    err.print(
        f"[dim]blocks fetched from the nodes of {network} ({len(records)})[/]", highlight=False
    )
    return run_monitor_on(monitor, records, chain_id, keep=keep, only_tx=tx)


def _history_blocks(
    network: str, chain_id: int, first: int, last: int, tx: str | None, addresses: Any
) -> list[Any] | None:
    """The blocks from history, or None when it does not hold every one (or there is none)."""
    from vigil.cli.common import history_rows
    from vigil.connectors.history.blocks import read_blocks, span

    built = settings()
    if built.clickhouse_dsn is None and not (built.data_dir / "clickhouse").exists():
        return None  # no vigil has run with this data dir: no history to read
    try:
        ask = history_rows(built)

        if tx is not None:
            found = ask(
                f"SELECT block_number FROM transactions FINAL WHERE network = '{network}' "
                f"AND hash = '{tx}' AND retracted = 0 LIMIT 1"
            )
            if not found:
                return None
            first = last = int(found[0][0])
        if span(ask, network, first, last).count != last - first + 1:
            return None
        return list(read_blocks(ask, network, chain_id, first, last, addresses=addresses))
    except (VigilError, ValueError):
        return None  # no history here (or none yet): the nodes answer


def _receipts_needed(monitor: Any, blocks: Path) -> None:
    """Events and a transaction's status live in receipts: without them a monitor that reads
    them would find nothing, silently. Refuse the first, warn about the second."""
    conditions = monitor.config.conditions
    if conditions.events:
        raise VigilError(
            f"{monitor.file}: the monitor selects events, which are in receipts, and "
            f"--blocks {blocks} comes without --receipts FILE; give the receipts "
            "(eth_getBlockReceipts shape), or --network NAME --block N to fetch both"
        )
    reads = conditions.transaction or ""
    if any(name in reads for name in ("status", "gasUsed", "gas_used")):
        err.print(
            f"[yellow]warning:[/] {monitor.file}: conditions.transaction reads the receipt "
            "(status, gasUsed) and no --receipts FILE is given: those values are empty",
            highlight=False,
            soft_wrap=True,
        )


def _test_forta(monitor: Any, alerts: Path | None, fmt: str) -> None:
    from vigil.config.loader import load_project
    from vigil.config.models import FortaMonitorConfig
    from vigil.processors.forta import FortaMatcher, FortaMonitor
    from vigil.schemas.events import match_event
    from vigil.schemas.forta import AlertError, alert_record

    if not isinstance(monitor.config, FortaMonitorConfig):
        raise VigilError(f"{monitor.file}: --alerts is for Forta monitors (type: forta)")
    if alerts is None:
        raise VigilError(f"{monitor.file}: a Forta monitor is tested with --alerts FILE")
    try:
        data = json.loads(alerts.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise VigilError(f"--alerts {alerts}: cannot read JSON: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("data"), dict):
        data = data["data"].get("alerts", {}).get("alerts")  # a GraphQL API response
    elif isinstance(data, dict):
        data = data.get("alerts")  # a Local Mode batch
    if not isinstance(data, list):
        raise VigilError(f"--alerts {alerts}: expected a list of alerts, a batch or an API page")
    try:
        records = [
            alert_record(a, origin="file", received_at=0, where=f"{alerts}: alerts[{i}]")
            for i, a in enumerate(data)
        ]
    except AlertError as exc:
        raise VigilError(str(exc)) from None
    chain_id = 0
    if monitor.config.network is not None:  # its chain id, to leave other chains' alerts out
        networks = load_project(settings().project_dir).config.networks
        if monitor.config.network not in networks:
            raise VigilError(
                f"{monitor.file}: network: {monitor.config.network!r} is not a network of "
                f"{settings().project_dir / 'vigil.yaml'}; it defines: "
                f"{', '.join(sorted(networks)) or 'none'}"
            )
        chain_id = networks[monitor.config.network].chain_id
    matcher = FortaMatcher(
        [FortaMonitor(monitor.id, monitor.config.model_copy(update={"paused": False}), chain_id)]
    )
    events = [match_event(m) for record in records for m in matcher.match(record)]
    if fmt == "json":
        print(json.dumps(events))
        return
    table = Table(
        "alert",
        "alert id",
        "severity",
        "reasons",
        title=f"{monitor.config.name}: {len(events)} match(es)",
    )
    for event in events:
        reasons = "; ".join(f"{r['type']} {r['value']}" for r in event["matchReasons"]) or "source"
        table.add_row(event["hash"], event["alert"]["alertId"], event["alert"]["severity"], reasons)
    console.print(table)


def _stack() -> tuple[Any, str, Any]:
    built = settings()
    return built, stack_bootstrap(built, "read the applied monitors from"), stack_codec(built)


@monitors_app.command("list")
def monitors_list(
    fmt: str = typer.Option("table", "--format", help="table | json"),
    category: str | None = typer.Option(
        None,
        "--category",
        help="only this risk category: governance, access-control, suspicious, financial, "
        "technical",
    ),
) -> None:
    """The monitors applied to the running stack (from the config topic)."""
    from vigil.config.state import monitor_summaries
    from vigil.streams.config_topics import applied_monitors

    if fmt not in ("table", "json"):
        raise VigilError(f"--format: expected table or json, got {fmt!r}")
    try:
        monitor_summaries({}, category)  # a wrong category is named before the stack is asked
    except ValueError as exc:
        raise VigilError(f"--category: {exc}") from None
    rows = monitor_summaries(applied_monitors(*_stack()), category)
    if fmt == "json":
        print(json.dumps(rows))
        return
    table = Table(*(rows[0] if rows else ["id", "name", "paused"]), title="applied monitors")
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    console.print(table)


def _set_paused(monitor_id: str, paused: bool) -> None:
    from vigil.streams.config_topics import set_paused

    if set_paused(*_stack(), monitor_id, paused):
        console.print(f"monitor {monitor_id} {'paused' if paused else 'resumed'}")
    else:
        console.print(f"monitor {monitor_id} is already {'paused' if paused else 'running'}")


@monitors_app.command("pause")
def monitors_pause(monitor_id: str = typer.Argument(..., help="monitor id")) -> None:
    """Pause a monitor: it matches nothing until resumed (or re-applied unpaused)."""
    _set_paused(monitor_id, True)


@monitors_app.command("resume")
def monitors_resume(monitor_id: str = typer.Argument(..., help="monitor id")) -> None:
    """Resume a paused monitor."""
    _set_paused(monitor_id, False)


monitors_app.add_typer(templates_app)  # templates, new, save-template
