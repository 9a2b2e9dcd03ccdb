"""`vigil secrets`: secrets sealed at rest with the operator's key (VIGIL_SECRETS_KEY).

A value comes from stdin or a hidden prompt, never from the command line (argv is visible
to every user of the machine, and kept in shell history); listings show names only."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import typer

from vigil.cli.common import check_format, console, print_rows, settings, stack_bootstrap
from vigil.clock import SYSTEM
from vigil.errors import SettingsError, VigilError

secrets_app = typer.Typer(
    help="Secrets sealed at rest: set (from stdin or a prompt), list names, delete.",
    no_args_is_help=True,
)


def _key() -> bytes:
    from vigil.connectors.tasks.secrets import parse_key

    built = settings()
    if built.secrets_key is None:
        raise SettingsError(
            "VIGIL_SECRETS_KEY is not set: the operator's key seals the secrets; "
            "`vigil secrets new-key` prints one (keep it safe: without it they do not open)"
        )
    return parse_key(built.secrets_key.get_secret_value())


@secrets_app.command("new-key")
def secrets_new_key() -> None:
    """Print a new operator key for VIGIL_SECRETS_KEY (vigil keeps no copy)."""
    from vigil.connectors.tasks.secrets import new_key

    print(new_key())


@secrets_app.command("set")
def secrets_set(name: str = typer.Argument(..., help="the secret's name")) -> None:
    """Seal a secret: its value from stdin (`… | vigil secrets set NAME`) or a prompt."""
    from vigil.connectors.tasks.secrets import check_name, seal
    from vigil.streams.secrets import write

    key = _key()
    check_name(name)
    if sys.stdin.isatty():
        value = typer.prompt(f"value of {name}", hide_input=True, confirmation_prompt=True)
    else:
        value = sys.stdin.read().rstrip("\n")
    if not value:
        raise VigilError(f"no value for {name!r} on stdin; pipe it in, or run in a terminal")
    built = settings()
    write(
        built,
        stack_bootstrap(built, "keep the secret in"),
        name,
        seal(key, name, value, SYSTEM.ms()),
    )
    console.print(f"secret {name} set (processes read it at their next start)")


@secrets_app.command("list")
def secrets_list(fmt: str = typer.Option("table", "--format", help="table | json | csv")) -> None:
    """The secrets' names and when each was set (never a value)."""
    from vigil.streams.secrets import stored

    check_format(fmt)
    built = settings()
    found = stored(built, stack_bootstrap(built, "read the secrets from"))
    rows = [
        [name, datetime.fromtimestamp(s.updated_ms / 1000, UTC).isoformat(timespec="seconds")]
        for name, s in sorted(found.items())
    ]
    print_rows(["name", "set"], rows, fmt, title="secrets")


@secrets_app.command("delete")
def secrets_delete(name: str = typer.Argument(..., help="the secret's name")) -> None:
    """Remove a secret."""
    from vigil.streams.secrets import stored, write

    built = settings()
    bootstrap = stack_bootstrap(built, "delete the secret in")
    found = stored(built, bootstrap)
    if name not in found:
        raise VigilError(f"no secret {name!r}; secrets: {', '.join(sorted(found)) or 'none'}")
    write(built, bootstrap, name, None)
    console.print(f"secret {name} deleted")
