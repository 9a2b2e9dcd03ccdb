"""A channel's secret kept only in the sealed store: `vigil up` checks it is there, the
worker opens it with the operator's key, and the webhook is signed with it."""

import json
from pathlib import Path

import pytest

from tests.e2e.stack import LARGE, SECRET, Running, stack_settings, write_project
from tests.helpers import vigil_cli
from vigil.connectors.notify.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from vigil.connectors.tasks.secrets import new_key, parse_key, seal
from vigil.demo.chain import Anvil, Token
from vigil.errors import ConfigError
from vigil.settings import Settings
from vigil.stack.supervisor import Stack
from vigil.streams.kafka import ensure_topics
from vigil.streams.secrets import write
from vigil.testing import WebhookReceiver, wait_for

pytestmark = pytest.mark.e2e


def test_a_webhook_is_signed_with_a_secret_from_the_store(
    tmp_path: Path, kafka: str, anvil: Anvil, prefix: str
) -> None:
    token = Token(anvil.url)
    start = int(anvil.rpc("eth_blockNumber"), 16) + 1
    receiver = WebhookReceiver().start()
    write_project(tmp_path / "project", anvil, token, receiver, start)
    key = new_key()
    settings = stack_settings(tmp_path, kafka, prefix, secrets_key=key)
    settings = settings.model_copy(update={"secrets": {}})  # the HMAC key is not in the env
    ensure_topics(settings, kafka)
    missing = Stack(settings, say=print)
    with pytest.raises(ConfigError, match="secret 'hook' is not set"):
        missing.start()  # checked against the store, after the broker is up
    write(settings, kafka, "hook", seal(parse_key(key), "hook", SECRET, 0))
    stack = Stack(settings, say=print)
    stack.start()
    try:
        running = Running(stack, token, receiver, anvil)
        running.mine_transfers(LARGE)
        wait_for(lambda: stack.check() or receiver.received, 60, "the signed POST")
        [post] = receiver.received
        headers = post.headers
        assert verify(SECRET, headers[TIMESTAMP_HEADER], post.body, headers[SIGNATURE_HEADER])
        relayer_by_hand(settings, running)
    finally:
        stack.stop()
        receiver.stop()


def relayer_by_hand(settings: Settings, running: Running) -> None:
    """A relayer made, funded, used, paused and read back as a user does with the CLI (the
    operator's key of this stack seals its signing key)."""
    env = settings.child_env()
    made = vigil_cli("relayers", "create", "ops", "--network", "anvil", "--format", "json", env=env)
    assert made.returncode == 0, made.stderr
    address = json.loads(made.stdout)["address"]
    running.anvil.rpc("anvil_setBalance", address, hex(10**18))
    receiver = "0x" + "42" * 20
    sent = vigil_cli(
        "relayers", "send", "ops", "--to", receiver, "--value", "7", "--format", "json", env=env
    )
    assert sent.returncode == 0, sent.stderr + sent.stdout
    tx = json.loads(sent.stdout)
    assert tx["status"] in ("mined", "confirmed") and tx["nonce"] == 0
    assert int(running.anvil.rpc("eth_getBalance", receiver, "latest"), 16) == 7
    shown = json.loads(vigil_cli("relayers", "show", "ops", "--format", "json", env=env).stdout)
    assert [t["transactionId"] for t in shown["transactions"]] == [tx["transactionId"]]
    task_sends_through(settings, running, receiver)
    assert vigil_cli("relayers", "pause", "ops", env=env).returncode == 0
    refused = vigil_cli("relayers", "send", "ops", "--to", receiver, env=env)
    assert refused.returncode == 2 and "paused" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr
    typo = vigil_cli("relayers", "send", "opz", "--to", receiver, env=env)
    assert typo.returncode == 2 and "no relayer named or with id 'opz'" in typo.stderr
    # nothing of the key in the history, and the transaction there
    query = "SELECT nonce, status FROM relayer_transactions FINAL ORDER BY nonce"
    rows = wait_for(
        lambda: r if len(r := running.sql(query)) == 2 else None,
        60,
        "the relayer's two transactions in ClickHouse (the CLI's, the task's)",
    )
    assert [n for n, _ in rows] == [0, 1]
    assert {status for _, status in rows} <= {"submitted", "inmempool", "mined", "confirmed"}


PAYER = """
import os


def handler(event, context):
    to = event["request"]["body"]["to"]
    tx = context.relayer.send_transaction({"to": to, "value": "3", "gasLimit": 21000})
    me = context.relayer.get_relayer()
    balance = context.relayer.call("eth_getBalance", [me["address"], "latest"])
    signed = context.relayer.sign("0x00")
    return {"tx": tx, "address": me["address"], "balance": balance, "sig": signed["sig"],
            "env": sorted(os.environ)}
"""


def task_sends_through(settings: Settings, running: Running, receiver: str) -> None:
    """A task linked to relayer ops sends with it; nothing of the key reaches the run."""
    env = settings.child_env()
    code = running.stack.settings.data_dir.parent / "payer.py"
    code.write_text(PAYER)
    deployed = vigil_cli(
        "tasks", "deploy", str(code), "--name", "payer", "--relayer", "ops", env=env
    )
    assert deployed.returncode == 0, deployed.stderr
    ran = vigil_cli(
        "tasks",
        "run",
        "payer",
        "--payload",
        json.dumps({"to": receiver}),
        "--format",
        "json",
        env=env,
    )
    assert ran.returncode == 0, ran.stderr + ran.stdout
    result = json.loads(json.loads(ran.stdout)["result"])
    assert result["tx"]["nonce"] == 1 and result["tx"]["hash"].startswith("0x")
    assert int(result["balance"], 16) > 0 and result["sig"].startswith("0x")
    assert not [name for name in result["env"] if "SECRET" in name or "KEY" in name]
    wait_for(
        lambda: int(running.anvil.rpc("eth_getBalance", receiver, "latest"), 16) == 10,
        30,
        "the task's transaction mined",
    )
