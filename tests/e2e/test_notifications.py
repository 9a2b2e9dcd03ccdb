"""Notifications through the whole stack: thresholds and timeouts that survive a worker
restart, retries, the dead-letter topic and a resend by hand, and no second send after a
kill between sending and committing."""

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import run_vigil
from vigil.config.channels import CHANNEL_TYPES
from vigil.demo.chain import ACCOUNTS, Anvil, Token
from vigil.settings import REPO_ROOT, load_settings
from vigil.stack import process
from vigil.stack.access import api_headers
from vigil.stack.broker import free_port
from vigil.stack.supervisor import Stack
from vigil.testing import WebhookReceiver, wait_for

pytestmark = pytest.mark.e2e
LARGE = 2_000 * 10**18


class Setup:
    """A running stack on a fresh token, with one webhook receiver per channel name."""

    def __init__(self, stack: Stack, token: Token, anvil: Anvil, hooks: dict[str, Any]) -> None:
        self.stack, self.token, self.anvil, self.hooks = stack, token, anvil, hooks
        self.clock = int(anvil.rpc("eth_getBlockByNumber", "latest", False)["timestamp"], 16) + 100

    def mine(self, at: int | None = None) -> int:
        """One block with one large transfer, at block time ``at`` (seconds after the start)."""
        if at is not None:
            self.anvil.rpc("evm_setNextBlockTimestamp", hex(self.clock + at))
        receipt = self.token.transfer(ACCOUNTS[1], LARGE)
        return int(receipt["blockNumber"])

    def sql(self, query: str) -> list[list[Any]]:
        url = f"{self.stack.settings.api_url}/sql"
        response = httpx.post(
            url, json={"query": query}, headers=api_headers(self.stack.settings), timeout=30
        )
        assert response.status_code == 200, response.text
        return response.json()["rows"]  # type: ignore[no-any-return]

    def posts(self, name: str) -> list[int]:
        """Block numbers of the events each POST to ``name`` carried, one list per POST."""
        return [
            int(e["blockNumber"], 16) for p in self.hooks[name].received for e in p.json()["events"]
        ]

    def vigil(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_vigil(self.stack.settings, *args)  # type: ignore[no-any-return]


def start(
    tmp_path: Path,
    kafka: str,
    anvil: Anvil,
    prefix: str,
    monitors: dict[str, str],
    hooks: dict[str, dict[str, Any]],
    channels: dict[str, str] | None = None,
    monitor_files: dict[str, str] | None = None,
    **settings: Any,
) -> tuple[Stack, Token, dict[str, WebhookReceiver]]:
    token = Token(anvil.url)
    begin = int(anvil.rpc("eth_blockNumber"), 16) + 1
    root = tmp_path / "project"
    (root / "monitors").mkdir(parents=True)
    (root / "channels").mkdir()
    shutil.copytree(REPO_ROOT / "examples" / "abis", root / "abis")
    (root / "vigil.yaml").write_text(
        f"networks:\n  anvil:\n    chain_id: 31337\n    rpc_urls: ['{anvil.url}']\n"
        f"    poll_interval: 0.2\n    start_block: {begin}\n"
    )
    for name, extra in monitors.items():
        (root / "monitors" / f"{name}.yaml").write_text(
            f"name: {name}\nnetwork: anvil\naddresses: ['{token.address}']\n"
            "abi: ../abis/ERC20.json\nconditions:\n  events:\n"
            "    - signature: Transfer(address,address,uint256)\n"
            "      expression: value >= 1000 * 10^18\n" + extra
        )
    receivers = {}
    for name, options in hooks.items():
        receivers[name] = WebhookReceiver(statuses=list(options.get("statuses", []))).start()
        attempts = options.get("max_attempts", 5)
        (root / "channels" / f"{name}.yaml").write_text(
            f"alias: {name}\ntype: webhook\nurl: {receivers[name].url}\nmax_attempts: {attempts}\n"
        )
    for name, text in (channels or {}).items():
        (root / "channels" / f"{name}.yaml").write_text(text)
    for name, text in (monitor_files or {}).items():
        (root / "monitors" / f"{name}.yaml").write_text(text)
    stack = Stack(
        load_settings(
            data_dir=tmp_path / "data",
            project_dir=root,
            kafka_bootstrap=kafka,
            topic_prefix=prefix,
            group_prefix=prefix,
            api_bind=f"127.0.0.1:{free_port()}",
            **settings,
        ),
        say=print,
    )
    stack.start()
    return stack, token, receivers


@pytest.fixture
def gated(tmp_path: Path, kafka: str, anvil: Anvil, prefix: str) -> Iterator[Setup]:
    monitors = {
        "gated": "channels: [a]\nthreshold: {amount: 5, window_seconds: 3600}\n",
        "calm": "channels: [b]\ntimeout_seconds: 60\n",
    }
    stack, token, hooks = start(tmp_path, kafka, anvil, prefix, monitors, {"a": {}, "b": {}})
    try:
        yield Setup(stack, token, anvil, hooks)
    finally:
        stack.stop()
        for hook in hooks.values():
            hook.stop()


def test_threshold_and_timeout_hold_across_a_worker_restart(gated: Setup) -> None:
    stack = gated.stack
    blocks = [gated.mine(at) for at in (0, 10, 20, 30)]  # 4 of 5: nothing for `gated`
    wait_for(lambda: stack.check() or gated.posts("b") == [blocks[0]], 60, "calm's first POST")
    wait_for(
        lambda: gated.sql("SELECT count() FROM suppressed FINAL") == [[7]] or None,
        60,
        "4 threshold + 3 timeout suppressions in ClickHouse",
    )
    assert gated.posts("a") == []
    process.stop(stack.children.pop("worker"), "worker")  # restart between the 4th and 5th
    fifth = gated.mine(70)  # waits in Kafka for the worker to come back
    stack.start_role("worker")
    wait_for(lambda: stack.check() or gated.posts("a") == [fifth], 90, "the 5th notifies")
    wait_for(lambda: gated.posts("b") == [blocks[0], fifth], 30, "calm again after 60 s")
    sixth = gated.mine(80)
    wait_for(lambda: gated.posts("a") == [fifth, sixth], 60, "the window still holds 5")
    rows = wait_for(
        lambda: (
            gated.sql(
                "SELECT monitor_id, reason, count() FROM suppressed FINAL "
                "GROUP BY monitor_id, reason ORDER BY monitor_id"
            )
            == [["calm", "timeout", 4], ["gated", "threshold", 4]]
            or None
        ),
        60,
        "every suppression recorded once, with its reason",
    )
    assert rows
    assert gated.posts("b") == [blocks[0], fifth]  # the 6th is 10 s after a notification


@pytest.fixture
def failing(tmp_path: Path, kafka: str, anvil: Anvil, prefix: str) -> Iterator[Setup]:
    monitors = {"flaky": "channels: [flaky]\n", "down": "channels: [down]\n"}
    hooks = {
        "flaky": {"statuses": [500, 500, 500]},
        "down": {"statuses": [500] * 4, "max_attempts": 2},
    }
    stack, token, receivers = start(
        tmp_path, kafka, anvil, prefix, monitors, hooks, worker_commit_interval=60.0
    )
    try:
        yield Setup(stack, token, anvil, receivers)
    finally:
        stack.stop()
        for hook in receivers.values():
            hook.stop()


def test_retries_dead_letters_resend_and_a_kill_after_sending(failing: Setup) -> None:
    stack = failing.stack
    block = failing.mine()
    wait_for(lambda: stack.check() or failing.posts("flaky") == [block], 60, "flaky, 4th try")
    failed = wait_for(
        lambda: (
            json.loads(failing.vigil("deliveries", "--failed", "--format", "json").stdout) or None
        ),
        60,
        "the failed delivery listed",
    )
    [row] = failed
    assert row["channel"] == "down" and row["attempts"] == 2 and "HTTP 500" in row["error"]
    recorded = wait_for(
        lambda: (
            (
                failing.sql(
                    "SELECT channel, status, attempts FROM deliveries FINAL ORDER BY channel"
                )
                == [["down", "FAILED", 2], ["flaky", "SENT", 4]]
                and failing.sql("SELECT source, id FROM dead_letters FINAL")
                == [["notify", row["request_id"]]]
            )
            or None
        ),
        60,
        "one delivery sent after 4 attempts, one failed after 2 and dead-lettered",
    )
    assert recorded

    # the worker dies right after sending, long before it would commit (interval 60 s)
    process_ = stack.children.pop("worker")
    process_.kill()
    process_.wait(10)
    stack.start_role("worker")
    marker = failing.mine()  # processed after anything the restart replays
    wait_for(lambda: stack.check() or len(failing.posts("flaky")) == 2, 90, "the marker's POST")
    assert failing.posts("flaky") == [block, marker]  # the first block was not sent again

    failing.hooks["down"].statuses = []  # the receiver is back
    resent = failing.vigil("deliveries", "retry", row["id"])
    assert resent.returncode == 0, resent.stderr
    assert "resent 1 match(es) to channel down" in resent.stdout
    wait_for(lambda: block in failing.posts("down"), 60, "the resent delivery")
    status = wait_for(
        lambda: (
            failing.sql(f"SELECT status FROM deliveries FINAL WHERE id = '{row['id']}'")
            == [["SENT"]]
            or None
        ),
        60,
        "the delivery now SENT",
    )
    assert status
    again = failing.vigil("deliveries", "retry", row["id"])  # a second resend sends nothing
    assert again.returncode == 0
    failing.mine()
    wait_for(lambda: len(failing.posts("flaky")) == 3, 60, "the next block")
    assert failing.posts("down").count(block) == 1


def test_one_transaction_reaches_every_channel_type(
    tmp_path: Path, kafka: str, anvil: Anvil, prefix: str
) -> None:
    from aiosmtpd.controller import Controller

    mails: list[Any] = []

    class Mailbox:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            mails.append(envelope)
            return "250 OK"

    smtp_port = free_port()
    smtp = Controller(Mailbox(), hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    chat = {name: WebhookReceiver().start() for name in ("slack", "discord")}
    api = WebhookReceiver(reply=b'{"ok": true, "result": {}}').start()
    base = f"http://127.0.0.1:{api.port}"
    channels = {
        "slack": f"alias: all\ntype: slack\nurl: {chat['slack'].url}\n",
        "discord": f"alias: all\ntype: discord\nurl: {chat['discord'].url}\n",
        "telegram": "alias: all\ntype: telegram\nbot_token_secret: tg\nchat_id: 42\n",
        "datadog": "alias: all\ntype: datadog\napi_key_secret: dd\n",
        "pagerduty": "alias: all\ntype: pagerduty\nrouting_key_secret: pd\n",
        "opsgenie": "alias: all\ntype: opsgenie\napi_key_secret: og\n",
        "email": (
            f"alias: all\ntype: email\nhost: 127.0.0.1\nport: {smtp_port}\nsecurity: none\n"
            "sender: vigil@example.com\nrecipients: ops@example.com\n"
        ),
    }
    secrets = {"tg": "1:tok", "dd": "ddkey", "pd": "P" * 32, "og": "ogkey", "hook": "s"}
    stack, token, hooks = start(
        tmp_path,
        kafka,
        anvil,
        prefix,
        {"everywhere": "channels: [all, hook]\n"},
        {"hook": {}},
        channels,
        secrets=secrets,
        telegram_api_url=base,
        datadog_api_url=base,
        pagerduty_api_url=base,
        opsgenie_api_url=base,
    )
    try:
        setup = Setup(stack, token, anvil, hooks)
        block = setup.mine()
        paths = {"/bot1:tok/sendMessage", "/api/v2/series", "/v2/enqueue", "/v2/alerts"}
        wait_for(
            lambda: (
                stack.check()
                or (
                    {p.path for p in api.received} == paths
                    and all(r.received for r in chat.values())
                    and mails
                    and setup.posts("hook") == [block]
                )
            ),
            90,
            "every channel type",
        )
        assert len(api.received) == 4 and len(mails) == 1  # once each
        assert "everywhere" in chat["slack"].received[0].json()["text"]
        assert "everywhere" in chat["discord"].received[0].json()["content"]
        sent = wait_for(
            lambda: (
                setup.sql("SELECT channel_type, status FROM deliveries FINAL ORDER BY channel_type")
                == [[kind, "SENT"] for kind in sorted(CHANNEL_TYPES)]
                or None
            ),
            60,
            "a SENT delivery per channel in ClickHouse",
        )
        assert sent
    finally:
        stack.stop()
        smtp.stop()
        for receiver in [*chat.values(), api, *hooks.values()]:
            receiver.stop()
