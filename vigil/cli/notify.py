"""`vigil deliveries` (failed ones, resend by hand) and `vigil channels test`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import typer

from vigil.cli.common import (
    check_format,
    console,
    history_query,
    print_rows,
    settings,
    stack_bootstrap,
    stack_codec,
)
from vigil.clock import SYSTEM
from vigil.errors import VigilError

deliveries_app = typer.Typer(
    help="Notification deliveries: list them (--failed), resend a failed one.",
    invoke_without_command=True,
)
channels_app = typer.Typer(
    help="Notification channels: list, pause, resume, send a test message.", no_args_is_help=True
)


@deliveries_app.callback()
def deliveries(
    ctx: typer.Context,
    failed: bool = typer.Option(False, "--failed", help="only deliveries that failed"),
    limit: int = typer.Option(50, "--limit", min=1, max=10_000),
    fmt: str = typer.Option("table", "--format", help="table | json | csv"),
) -> None:
    """The latest deliveries from the history (newest first)."""
    if ctx.invoked_subcommand is not None:
        return
    check_format(fmt)
    from vigil.connectors.history.queries import deliveries_sql

    columns, rows = history_query(settings(), deliveries_sql(failed, limit))
    print_rows(columns, rows, fmt, title="failed deliveries" if failed else "deliveries")


@deliveries_app.command("retry")
def deliveries_retry(
    wanted: str = typer.Argument(..., help="a failed delivery's id or request id"),
) -> None:
    """Send a failed delivery again (its dead letter goes back to the worker, once)."""
    from vigil.streams.dlq import resend

    built = settings()
    batch = resend(built, stack_bootstrap(built, "resend through"), stack_codec(built), wanted)
    console.print(
        f"resent {len(batch['matches'])} match(es) to channel {batch['channel']}; "
        "`vigil deliveries` shows the outcome"
    )


def sample_event(now: int) -> dict[str, Any]:
    """A made-up match event in the event schema, for `vigil channels test`."""
    zero = "0x" + "0" * 64
    monitor = {
        "id": "vigil-test",
        "name": "vigil test notification",
        "network": "test",
        "chainId": 0,
        "addresses": [],
        "confirmBlocks": 0,
        "abi": [],
        "severity": "low",
    }
    return {
        "id": f"vigil-test:{now}",
        "type": "TEST",
        "hash": zero,
        "blockHash": zero,
        "blockNumber": "0x0",
        "timestamp": now,
        "matchReasons": [
            {
                "type": "transaction",
                "address": None,
                "signature": None,
                "condition": "a test sent by `vigil channels test`",
                "args": [],
                "params": {},
            }
        ],
        "matchedAddresses": [],
        "matchedChecksumAddresses": [],
        "monitor": monitor,
        "sentinel": monitor,
        "transaction": {"transactionHash": zero, "hash": zero, "logs": []},
        "value": "0x0",
        "metadata": None,
    }


@channels_app.command("test")
def channels_test(
    alias: str = typer.Argument(..., help="a channel alias of the project"),
    project: Path = typer.Option(None, "--project", help="project dir (default VIGIL_PROJECT_DIR)"),
    monitor: str = typer.Option(
        None, "--monitor", help="a monitor id: its message, as its matches would be sent"
    ),
) -> None:
    """Send a test notification to every channel with ALIAS (secrets from VIGIL_SECRETS)."""
    import httpx

    from vigil.config.loader import load_project
    from vigil.connectors.notify.channels import build_channel
    from vigil.connectors.notify.delivery import Messages

    built = settings()
    loaded = load_project(project or built.project_dir)
    if alias not in loaded.channels:
        raise VigilError(
            f"no channel alias {alias!r}; channels/ defines: "
            f"{', '.join(sorted(loaded.channels)) or 'none'}"
        )
    monitors = {m.id: m for m in loaded.monitors}
    if monitor is not None and monitor not in monitors:
        raise VigilError(
            f"--monitor: no monitor {monitor!r} in {loaded.root}; it has: "
            f"{', '.join(sorted(monitors)) or 'none'}"
        )
    message = monitors[monitor].config.message if monitor is not None else None
    now = int(SYSTEM.time())

    async def run() -> list[tuple[str, Any]]:
        async with httpx.AsyncClient() as client:
            results = []
            for channel in loaded.channels[alias]:
                sender = build_channel(channel.config, built, client)
                messages = Messages.choose(message, channel.config.template, sender.chat)
                request = f"vigil-test:{now}:{channel.id}"
                results.append(
                    (channel.id, await sender.send([sample_event(now)], request, messages))
                )
            return results

    failed = 0
    for channel_id, outcome in asyncio.run(run()):
        if outcome.ok:
            console.print(f"{channel_id}: sent ({outcome.attempts} attempt(s))")
        else:
            failed += 1
            console.print(f"[red]{channel_id}: failed[/] after {outcome.attempts}: {outcome.error}")
    if failed:
        raise typer.Exit(1)


def _channels_stack() -> tuple[Any, str, Any]:
    built = settings()
    return built, stack_bootstrap(built, "read the applied channels from"), stack_codec(built)


@channels_app.command("list")
def channels_list(fmt: str = typer.Option("table", "--format", help="table | json | csv")) -> None:
    """The channels applied to the running stack: id, alias, type, paused (never a secret)."""
    from vigil.config.state import channel_summary
    from vigil.streams.config_topics import applied

    check_format(fmt)
    records = applied(*_channels_stack(), "channel")
    rows = [channel_summary(record) for _, record in sorted(records.items())]
    columns = ["id", "alias", "type", "paused", "version", "source", "at"]
    print_rows(columns, [[row[c] for c in columns] for row in rows], fmt, "applied channels")


def _set_channel_paused(alias: str, paused: bool) -> None:
    from vigil.streams.config_topics import set_channel_paused

    changed = set_channel_paused(*_channels_stack(), alias, paused)
    state = "paused" if paused else "resumed"
    if changed:
        console.print(f"channel alias {alias} {state}: {', '.join(changed)}")
    else:
        console.print(f"channel alias {alias} is already {'paused' if paused else 'running'}")


@channels_app.command("pause")
def channels_pause(alias: str = typer.Argument(..., help="a channel alias")) -> None:
    """Pause every channel of ALIAS.

    Monitors' deliveries to it are suppressed (reason: channel) and tasks' sends to it
    fail, until it is resumed or its file's paused changes."""
    _set_channel_paused(alias, True)


@channels_app.command("resume")
def channels_resume(alias: str = typer.Argument(..., help="a channel alias")) -> None:
    """Resume every channel of ALIAS."""
    _set_channel_paused(alias, False)
