"""`vigil replay`: a block or time range run again through monitors."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from vigil.cli.common import console, err, history_rows
from vigil.cli.common import settings as _settings
from vigil.errors import VigilError

_RANGE = re.compile(r"^(\d+)\.\.(\d+)$")


def block_range(value: str) -> tuple[int, int]:
    found = _RANGE.match(value.strip())
    if not found:
        raise VigilError(f"--blocks: expected A..B such as 18000000..18000100, got {value!r}")
    first, last = int(found[1]), int(found[2])
    if first > last:
        raise VigilError(f"--blocks: expected A..B with A <= B, got {value!r}")
    return first, last


def _moment(option: str, value: str) -> datetime:
    try:
        at = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise VigilError(
            f"{option}: expected an ISO 8601 time such as 2026-11-30T09:00:00Z, got {value!r}"
        ) from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def replay(
    monitor_ids: list[str] = typer.Option(
        ..., "--monitor", help="a monitor id of the project (repeatable; one network)"
    ),
    blocks: str | None = typer.Option(None, "--blocks", help="A..B: the blocks, both included"),
    since: str | None = typer.Option(None, "--since", help="with --until: a time range (ISO)"),
    until: str | None = typer.Option(None, "--until", help="the end of the time range (ISO)"),
    source: str = typer.Option("history", "--source", help="history | kafka | rpc"),
    notify: bool = typer.Option(
        False, "--notify", help="send through the live path (nothing already sent is sent again)"
    ),
    show_diff: bool = typer.Option(
        False, "--diff", help="the matches added and removed against what history recorded"
    ),
    fmt: str = typer.Option("table", "--format", help="table | json"),
) -> None:
    """Run a block or time range through monitors again, in this process: a dry run by
    default (the matches are printed and kept under a replay id in the replays table)."""
    from vigil.config.loader import load_project
    from vigil.streams.replay import (
        SOURCES,
        Replay,
        diff,
        new_replay_id,
        pick_monitors,
        recorded_matches,
        time_range,
    )

    if fmt not in ("table", "json"):
        raise VigilError(f"--format: expected table or json, got {fmt!r}")
    if source not in SOURCES:
        raise VigilError(f"--source: expected one of {', '.join(SOURCES)}, got {source!r}")
    if (blocks is None) == (since is None and until is None):
        raise VigilError("give either --blocks A..B or --since TIME --until TIME")
    if blocks is None and (since is None or until is None):
        raise VigilError("--since and --until go together: give both")
    if blocks is not None:
        block_range(blocks)  # a mistake is named before any connection is made
    settings = _settings()
    project = load_project(settings.project_dir)
    monitors = pick_monitors(project, monitor_ids)
    network = monitors[0].config.network or ""
    ask = None
    if source != "rpc" or show_diff or blocks is None:
        ask = history_rows(settings)

    if blocks is not None:
        first, last = block_range(blocks)
    else:
        assert ask is not None and since is not None and until is not None
        first, last = time_range(ask, network, _moment("--since", since), _moment("--until", until))
    bootstrap, codec = _stack(settings, required=source == "kafka" or notify)
    replaying = Replay(
        settings, project, monitors, first, last, source, ask=ask, bootstrap=bootstrap, codec=codec
    )
    total, _ = replaying.total()
    replay_id = new_replay_id()
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} blocks/s"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task(f"{network} {first}..{last}", total=total, rate="-")
        started = datetime.now(UTC)

        def step(_: Any) -> None:
            done = bar.tasks[0].completed + 1
            seconds = max((datetime.now(UTC) - started).total_seconds(), 1e-6)
            bar.update(task, advance=1, rate=f"{done / seconds:,.0f}")

        found = replaying.run(replay_id, step)
    if bootstrap is not None and codec is not None:
        from vigil.streams.replay import publish

        publish(settings, bootstrap, codec, found, notify=notify)
        kept = f"kept as {replay_id}" + (" and sent through the live path" if notify else "")
    else:
        kept = "not kept: no running stack (start `vigil up` to keep replays)"
    summary = {
        "replayId": replay_id,
        "source": source,
        "network": network,
        "blocks": found.blocks,
        "transactions": found.transactions,
        "seconds": round(found.seconds, 3),
        "blocksPerSecond": round(found.blocks_per_s, 1),
    }
    if show_diff:
        assert ask is not None
        recorded = recorded_matches(ask, [m.id for m in monitors], network, first, last)
        added, removed = diff(found.matches, recorded)
        if fmt == "json":
            print(json.dumps({**summary, "added": _events(added), "removed": removed}))
            return
        _table(f"added: {len(added)} match(es) history did not record", added)
        removed_table = Table("monitor", "block", "transaction", title=f"removed: {len(removed)}")
        for _, monitor_id, number, tx in removed:
            removed_table.add_row(monitor_id, str(number), tx)
        console.print(removed_table)
    elif fmt == "json":
        print(json.dumps({**summary, "matches": _events(found.matches)}))
        return
    else:
        _table(f"{replay_id}: {len(found.matches)} match(es)", found.matches)
    err.print(
        f"{found.blocks} blocks, {found.transactions} transactions in {found.seconds:.2f} s "
        f"({found.blocks_per_s:,.0f} blocks/s) from {source}; {kept}",
        highlight=False,
        soft_wrap=True,
    )


def _events(matches: list[Any]) -> list[dict[str, Any]]:
    from vigil.schemas.events import match_event

    return [match_event(m) for m in matches]


def _table(title: str, matches: list[Any]) -> None:
    table = Table("monitor", "block", "transaction", "reasons", title=title)
    for match in matches:
        reasons = "; ".join(
            f"{r['type']} {r.get('signature') or r.get('condition') or ''}".strip()
            for r in match["matchReasons"]
        )
        table.add_row(
            match["monitor"]["id"], str(match["blockNumber"]), match["hash"], reasons or "-"
        )
    console.print(table)


def _stack(settings: Any, *, required: bool) -> tuple[str | None, Any]:
    """The running stack's Kafka and codec, or (None, None) when none runs and none is needed."""
    from vigil.cli.common import stack_bootstrap, stack_codec

    try:
        bootstrap = stack_bootstrap(settings, "read chain.blocks from and keep the replay in")
    except VigilError:
        if required:
            raise
        return None, None
    return bootstrap, stack_codec(settings)
