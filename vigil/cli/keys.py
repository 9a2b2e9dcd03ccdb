"""`vigil keys`: API keys for vigil's HTTP API: create (the secret is shown once), list,
revoke. Keys are kept as hashes on the stack's keys topic, which every API process follows."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import typer

from vigil.cli.common import check_format, console, print_rows, settings, stack_bootstrap
from vigil.clock import SYSTEM
from vigil.config.access import SCOPES
from vigil.errors import VigilError

keys_app = typer.Typer(help="API keys: create, list, revoke.", no_args_is_help=True)


def _when(ms: int | None) -> str:
    return (
        "" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")
    )


@keys_app.command("create")
def keys_create(
    name: str = typer.Option(..., "--name", help="who or what the key is for"),
    scopes: list[str] = typer.Option(
        ..., "--scope", help=f"repeatable: {', '.join(SCOPES)}, or '*' for every scope"
    ),
    fmt: str = typer.Option("table", "--format", help="table | json"),
) -> None:
    """Make a key; its secret is printed once (only its hash is kept)."""
    from vigil.config.access import new_key
    from vigil.streams.api_keys import publish_key

    if fmt not in ("table", "json"):
        raise VigilError(f"--format: expected table or json, got {fmt!r}")
    if not name.strip():
        raise VigilError("--name: expected a name for the key, got an empty one")
    key, record = new_key(name.strip(), scopes, SYSTEM.ms())
    built = settings()
    publish_key(built, stack_bootstrap(built, "keep the key in"), record)
    if fmt == "json":
        print(
            json.dumps(
                {
                    "keyId": record.key_id,
                    "name": record.name,
                    "scopes": list(record.scopes),
                    "key": key,
                }
            )
        )
        return
    console.print(f"key {record.key_id} ({record.name}): {', '.join(record.scopes)}")
    console.print("the secret, shown this once; send it as Authorization: Bearer <key>:")
    print(key)


@keys_app.command("list")
def keys_list(
    fmt: str = typer.Option("table", "--format", help="table | json | csv"),
    revoked: bool = typer.Option(False, "--revoked", help="include revoked keys"),
) -> None:
    """The keys: id, name, scopes, created, revoked (never a secret)."""
    from vigil.streams.api_keys import read_keys

    check_format(fmt)
    built = settings()
    keys = read_keys(built, stack_bootstrap(built, "read the keys from"))
    rows = [
        [k.key_id, k.name, " ".join(k.scopes), _when(k.created_ms), _when(k.revoked_ms)]
        for k in sorted(keys.values(), key=lambda k: k.created_ms)
        if revoked or k.revoked_ms is None
    ]
    print_rows(["key_id", "name", "scopes", "created", "revoked"], rows, fmt, title="API keys")


@keys_app.command("revoke")
def keys_revoke(
    key_id: str = typer.Argument(..., help="the key's id, from `vigil keys list`"),
) -> None:
    """Revoke a key: the API refuses it from the next second on."""
    from vigil.streams.api_keys import publish_key, read_keys

    built = settings()
    bootstrap = stack_bootstrap(built, "revoke the key in")
    keys = read_keys(built, bootstrap)
    record = keys.get(key_id)
    if record is None:
        live = sorted(k for k, r in keys.items() if r.revoked_ms is None)
        raise VigilError(f"no API key {key_id!r}; keys: {', '.join(live) or 'none'}")
    if record.revoked_ms is not None:
        console.print(f"key {key_id} was already revoked at {_when(record.revoked_ms)}")
        return
    publish_key(built, bootstrap, record.model_copy(update={"revoked_ms": SYSTEM.ms()}))
    console.print(f"key {key_id} ({record.name}) revoked")
