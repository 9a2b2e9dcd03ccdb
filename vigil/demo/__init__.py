"""The local demo behind `make up`: anvil + the OZ v5 demo token + vigil + a webhook receiver."""

from __future__ import annotations

import shutil
from typing import Any

import httpx
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from vigil.connectors.notify.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from vigil.demo.chain import ACCOUNTS, Anvil, Token
from vigil.errors import BrokerError, VigilError
from vigil.settings import REPO_ROOT, Settings
from vigil.stack.access import api_headers
from vigil.stack.broker import port_in_use
from vigil.stack.supervisor import Stack
from vigil.streams.task_webhooks import new_webhook
from vigil.testing import Received, WebhookReceiver, wait_for

ANVIL_PORT, RECEIVER_PORT = 8545, 8901  # the addresses examples/ is written for
DEMO_SECRET = "demo-secret-not-for-production"
MATCH_QUERY = (
    "SELECT monitor_name, block_number, transaction_hash, "
    "JSONExtractString(reasons, -1, 'signature') AS signature "
    "FROM matches FINAL ORDER BY block_number"
)


def _settings(settings: Settings) -> Settings:
    secrets = dict(settings.secrets)
    secrets.setdefault("ops-webhook", SecretStr(DEMO_SECRET))
    return settings.model_copy(
        update={
            "data_dir": settings.data_dir / "demo",
            "project_dir": REPO_ROOT / "examples",
            "secrets": secrets,
        }
    )


def run_demo(base: Settings, console: Console, *, exit_after: bool = False) -> int:
    """Start everything, send a few transactions, show matches arriving; Ctrl-C stops."""
    settings = _settings(base)
    for port, what in ((ANVIL_PORT, "anvil"), (RECEIVER_PORT, "the webhook receiver")):
        if port_in_use(port):
            raise BrokerError(
                f"port {port} is in use, but the demo runs {what} there "
                "(examples/ is written for it); stop what listens there"
            )
    shutil.rmtree(settings.data_dir, ignore_errors=True)  # a fresh chain needs fresh state
    secret = settings.secrets["ops-webhook"].get_secret_value()

    def say(text: str) -> None:
        console.print(f"[bold cyan]demo[/] {text}")

    told: list[str] = []  # the tasks' notifications

    def on_receive(item: Received) -> None:
        ok = verify(
            secret,
            item.headers.get(TIMESTAMP_HEADER, ""),
            item.body,
            item.headers.get(SIGNATURE_HEADER, ""),
        )
        for event in item.json()["events"]:
            if event.get("type") == "TASK":  # a task's context.notify.send
                told.append(event["message"])
                say(
                    f"webhook received ({'signature ok' if ok else 'BAD SIGNATURE'}): task "
                    f"[green]{event['task']['name']}[/] says {event['subject']}: "
                    f"{event['message']}"
                )
                continue
            reason = event["matchReasons"][-1]
            say(
                f"webhook received ({'signature ok' if ok else 'BAD SIGNATURE'}): "
                f"[green]{event['monitor']['name']}[/] block {int(event['blockNumber'], 16)} "
                f"{reason.get('signature')} {reason.get('params')}"
            )

    anvil = Anvil(ANVIL_PORT, settings.data_dir / "logs" / "anvil.log")
    receiver = WebhookReceiver(RECEIVER_PORT, on_receive=on_receive)
    stack = Stack(settings, say=lambda text: console.print(f"[bold]vigil[/] {text}"))
    try:
        say(f"starting a local anvil chain on {anvil.url} (a local chain, not mainnet)")
        anvil.start()
        receiver.start()
        stack.start()
        token = Token(anvil.url)
        say(f"deployed VigilToken (OpenZeppelin v5 ERC20 + Ownable) at {token.address}")
        token.transfer(ACCOUNTS[1], 5_000 * 10**18)
        say("sent a 5,000 VDT transfer (matches: value >= 1000 VDT)")
        token.transfer(ACCOUNTS[1], 10 * 10**18)
        say("sent a 10 VDT transfer (no match: below the threshold)")
        token.transfer_ownership(ACCOUNTS[1])
        say("transferred ownership (matches: OwnershipTransferred)")
        wait_for(
            lambda: stack.check() or (len(receiver.received) >= 3 and bool(told)),
            90,
            "two matches' webhooks and the task's notification",
        )
        rows = wait_for(
            lambda: stack.check() or _rows(settings, MATCH_QUERY, 2), 60, "matches in ClickHouse"
        )
        table = Table(*rows["columns"], title="vigil sql: matches in ClickHouse")
        for row in rows["rows"]:
            table.add_row(*(str(v) for v in row))
        console.print(table)
        say(
            'try: [bold].venv/bin/vigil sql "SELECT * FROM deliveries FINAL"[/] '
            f"(with VIGIL_DATA_DIR={settings.data_dir})"
        )
        url = f"{settings.api_url}/tasks/counter/webhook/" + new_webhook(
            settings, stack.bootstrap, "counter"
        )
        say(
            "and the task counter's webhook: [bold]curl -s -X POST -H 'Content-Type: "
            f"application/json' -d '{{\"amount\": 5000}}' {url}[/]"
        )
        if exit_after:
            return 0
        say("vigil keeps watching the chain; press Ctrl-C to stop")
        return stack.watch()
    finally:
        stack.stop()
        receiver.stop()
        anvil.stop()


def _rows(settings: Settings, query: str, at_least: int) -> dict[str, Any] | None:
    try:
        response = httpx.post(
            f"{settings.api_url}/sql",
            json={"query": query},
            headers=api_headers(settings),
            timeout=10,
        )
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        raise VigilError(f"SQL failed: {response.text}")
    body: dict[str, Any] = response.json()
    return body if len(body["rows"]) >= at_least else None
