"""`vigil relayers`: relayers of the running stack (create, list, show, pause, resume), their
API keys (the secret shown once) and a transaction sent by hand. The relayer owner in
`vigil runner` signs and follows what is sent."""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

import typer

from vigil.cli.common import check_format, console, print_rows, settings, stack_bootstrap
from vigil.errors import VigilError

relayers_app = typer.Typer(
    help="Relayers: send transactions with keys vigil keeps sealed.", no_args_is_help=True
)
keys_app = typer.Typer(help="A relayer's API keys: create, list, delete.", no_args_is_help=True)
relayers_app.add_typer(keys_app, name="keys")
FORMAT = typer.Option("table", "--format", help="table | json")


def _relay(purpose: str) -> Any:
    """The stack's relayers, read to their latest (networks from the project)."""
    from vigil.cli.common import stack_codec
    from vigil.stack.roles import project_networks
    from vigil.streams.relayers import Relay

    built = settings()
    bootstrap = stack_bootstrap(built, purpose)
    return Relay(built, bootstrap, stack_codec(built), project_networks(built))


def _find(relay: Any, name: str) -> Any:
    found = relay.registry.by_name(name)
    if found is None:
        names = ", ".join(r.name for r in relay.registry.all()) or "none"
        raise VigilError(f"RELAYER: no relayer named or with id {name!r}; relayers: {names}")
    return found


def _invalid(exc: Any, what: str) -> VigilError:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or what
    return VigilError(f"{what}: {field}: {first['msg']}")


@relayers_app.command("create")
def create(
    name: str = typer.Argument(..., help="the relayer's name"),
    network: str = typer.Option(..., "--network", help="a network of the project"),
    min_balance: str = typer.Option("0", "--min-balance", help="wei; sends are refused below"),
    receivers: list[str] = typer.Option([], "--whitelist", help="repeatable: the only receivers"),
    cap: str = typer.Option(None, "--gas-price-cap", help="wei: the most per unit of gas"),
    eip1559: bool = typer.Option(False, "--eip1559", help="price speeds as EIP-1559"),
    clone: str = typer.Option(
        None, "--clone", help="take this relayer's address (another network)"
    ),
    import_key: bool = typer.Option(
        False, "--import-key", help="read a private key from stdin instead of making one"
    ),
    fmt: str = FORMAT,
) -> None:
    """Make a relayer with a new signing key (sealed with VIGIL_SECRETS_KEY), an imported one,
    or the address of another relayer on another network."""
    from pydantic import ValidationError

    from vigil.config.relayers import CreateRelayerRequest

    check_format(fmt)
    policies: dict[str, Any] = {}
    if receivers:
        policies["whitelistReceivers"] = receivers
    if cap is not None:
        policies["gasPriceCap"] = cap
    if eip1559:
        policies["EIP1559Pricing"] = True
    body: dict[str, Any] = {
        "name": name,
        "network": network,
        "minBalance": min_balance,
        "policies": policies,
    }
    try:  # the input first: a mistake is told without a stack
        wanted = CreateRelayerRequest.model_validate(body)
    except ValidationError as exc:
        raise _invalid(exc, "relayer") from None
    relay = _relay("keep the relayer in")
    if clone is not None:
        original = _find(relay, clone).relayer_id
        wanted = wanted.model_copy(update={"use_address_from_relayer_id": original})
    private_key = None
    if import_key:  # never an argument: argv shows in `ps` and shell history
        tty = sys.stdin.isatty()
        private_key = typer.prompt("private key", hide_input=True) if tty else sys.stdin.read()
    made = relay.registry.create(wanted, private_key)
    _show([made.model()], fmt)


def _show(models: list[dict[str, Any]], fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(models if len(models) != 1 else models[0]))
        return
    rows = [
        [m["relayerId"], m["name"], m["network"], m["address"], m["paused"], m["minBalance"]]
        for m in models
    ]
    print_rows(
        ["relayerId", "name", "network", "address", "paused", "minBalance"],
        rows,
        fmt,
        title="relayers",
    )


@relayers_app.command("list")
def list_relayers(fmt: str = FORMAT) -> None:
    """Every relayer: id, name, network, address, paused, minBalance."""
    check_format(fmt)
    relay = _relay("read the relayers of")
    _show([r.model() for r in relay.registry.all()], fmt)


@relayers_app.command("show")
def show(name: str = typer.Argument(..., help="a relayer's name or id"), fmt: str = FORMAT) -> None:
    """One relayer, its policies and its latest transactions."""
    from vigil.streams.relayers import transaction_model

    check_format(fmt)
    relay = _relay("read the relayers of")
    relayer = _find(relay, name)
    relay.transactions.load()
    txs = [transaction_model(t) for t in relay.transactions.of(relayer.relayer_id)[:20]]
    model = relayer.model(relay.transactions.pending_cost(relayer.relayer_id))
    if fmt == "json":
        print(json.dumps(model | {"transactions": txs}))
        return
    _show([model], fmt)
    console.print(f"policies: {json.dumps(model['policies']) or '{}'}")
    rows = [[t["transactionId"], t["nonce"], t["status"], t["hash"], t["to"]] for t in txs]
    print_rows(["transactionId", "nonce", "status", "hash", "to"], rows, fmt, title="transactions")


def _set_paused(name: str, paused: bool) -> None:
    from vigil.config.relayers import UpdateRelayerRequest

    relay = _relay("change the relayer in")
    relayer = _find(relay, name)
    relay.registry.update(relayer, UpdateRelayerRequest(paused=paused))
    console.print(f"relayer {relayer.name} {'paused' if paused else 'resumed'}")


@relayers_app.command("pause")
def pause(name: str = typer.Argument(..., help="a relayer's name or id")) -> None:
    """Refuse the relayer's sends until it is resumed."""
    _set_paused(name, True)


@relayers_app.command("resume")
def resume(name: str = typer.Argument(..., help="a relayer's name or id")) -> None:
    """Take the relayer's sends again."""
    _set_paused(name, False)


@keys_app.command("create")
def keys_create(
    name: str = typer.Argument(..., help="a relayer's name or id"), fmt: str = FORMAT
) -> None:
    """A relayer API key for the Relay Signer routes; its secret is printed once."""
    from vigil.streams.relayers import key_model

    check_format(fmt)
    relay = _relay("keep the key in")
    relayer = _find(relay, name)
    secret, record = relay.registry.create_key(relayer)
    if fmt == "json":
        print(json.dumps(key_model(record, relayer.relayer_id, secret)))
        return
    console.print(f"key {record.key_id} of relayer {relayer.name}; the secret, shown this once:")
    print(secret)


@keys_app.command("list")
def keys_list(
    name: str = typer.Argument(..., help="a relayer's name or id"), fmt: str = FORMAT
) -> None:
    """The relayer's keys (never a secret)."""
    from vigil.streams.api_keys import read_keys
    from vigil.streams.relayers import key_model, relayer_of

    check_format(fmt)
    relay = _relay("read the keys of")
    relayer = _find(relay, name)
    keys = [
        key_model(k, relayer.relayer_id)
        for k in read_keys(relay.settings, relay.bootstrap).values()
        if k.revoked_ms is None and relayer_of(k) == relayer.relayer_id
    ]
    if fmt == "json":
        print(json.dumps(keys))
        return
    print_rows(["keyId", "createdAt"], [[k["keyId"], k["createdAt"]] for k in keys], fmt)


@keys_app.command("delete")
def keys_delete(
    name: str = typer.Argument(..., help="a relayer's name or id"),
    key_id: str = typer.Argument(..., help="the key's id, from `vigil relayers keys list`"),
) -> None:
    """Delete a relayer key: the Relay API refuses it from the next second on."""
    from vigil.streams.api_keys import publish_key, read_keys
    from vigil.streams.relayers import relayer_of

    relay = _relay("delete the key in")
    relayer = _find(relay, name)
    record = read_keys(relay.settings, relay.bootstrap).get(key_id)
    if record is None or record.revoked_ms is not None or relayer_of(record) != relayer.relayer_id:
        raise VigilError(f"KEY_ID: relayer {relayer.name} has no key {key_id!r}")
    publish_key(
        relay.settings, relay.bootstrap, record.model_copy(update={"revoked_ms": relay.clock.ms()})
    )
    console.print(f"{key_id} deleted")


@relayers_app.command("send")
def send(
    name: str = typer.Argument(..., help="a relayer's name or id"),
    to: str = typer.Option(..., "--to", help="the receiver's address"),
    value: str = typer.Option("0", "--value", help="wei"),
    data: str = typer.Option("0x", "--data", help="call data, 0x-hex"),
    gas_limit: str = typer.Option("21000", "--gas-limit"),
    speed: str = typer.Option("fast", "--speed", help="safeLow | average | fast | fastest"),
    valid_until: str = typer.Option(None, "--valid-until", help="ISO time with its zone"),
    wait: float = typer.Option(30.0, "--wait", help="seconds to wait for it to be mined"),
    fmt: str = FORMAT,
) -> None:
    """Send a transaction through the relayer (its policies first), and wait for it to be
    mined; `vigil runner` must run, as its owner signs."""
    from pydantic import ValidationError

    from vigil.config.relayers import SendTransactionRequest
    from vigil.processors.relayer import PolicyRefusal
    from vigil.streams.relayers import transaction_model

    check_format(fmt)
    body: dict[str, Any] = {
        "to": to,
        "value": value,
        "data": data,
        "gasLimit": gas_limit,
        "speed": speed,
    }
    if valid_until is not None:
        body["validUntil"] = valid_until
    try:
        wanted = SendTransactionRequest.model_validate(body)
    except ValidationError as exc:
        raise _invalid(exc, "transaction") from None
    relay = _relay("send through")
    relayer = _find(relay, name)
    reader = threading.Thread(target=relay.transactions.follow, daemon=True)
    reader.start()
    try:
        tx_id = relay.send(relayer, wanted)["transactionId"]
    except PolicyRefusal as exc:
        raise VigilError(f"relayer {relayer.name}: {exc}") from None
    done = relay.transactions.wait(
        lambda t: t["transactionId"] == tx_id and t["status"] in ("mined", "confirmed", "failed"),
        wait,
    )
    relay.close()
    if done is None:
        raise VigilError(
            f"transaction {tx_id} was not mined within {wait:.0f} s; is `vigil runner` running? "
            f"`vigil relayers show {relayer.name}` follows it"
        )
    shown = transaction_model(done)
    if fmt == "json":
        print(json.dumps(shown))
    else:
        console.print(
            f"transaction {tx_id}: {shown['status']}, nonce {shown['nonce']}, hash {shown['hash']}"
        )
    if done["status"] == "failed":
        raise typer.Exit(1)
