"""The end-to-end tests' stack on anvil: a project with a webhook channel, and its handles."""

import shutil
from pathlib import Path
from typing import Any

import httpx

from vigil.demo.chain import ACCOUNTS, Anvil, Token
from vigil.settings import REPO_ROOT, Settings, load_settings
from vigil.stack.access import api_headers
from vigil.stack.broker import free_port
from vigil.stack.supervisor import Stack
from vigil.testing import WebhookReceiver

SECRET = "e2e-secret"
LARGE = 2_000 * 10**18


class Running:
    def __init__(self, stack: Stack, token: Token, receiver: WebhookReceiver, anvil: Anvil) -> None:
        self.stack, self.token, self.receiver, self.anvil = stack, token, receiver, anvil

    def sql(self, query: str) -> list[list[Any]]:
        response = httpx.post(
            f"{self.stack.settings.api_url}/sql",
            json={"query": query},
            headers=api_headers(self.stack.settings),
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return response.json()["rows"]  # type: ignore[no-any-return]

    def mine_transfers(self, *amounts: int) -> int:
        """Send the transfers into one block; returns its number."""
        self.anvil.rpc("evm_setAutomine", False)
        hashes = [self.token.send_transfer(ACCOUNTS[1], amount) for amount in amounts]
        self.anvil.rpc("evm_mine")
        self.anvil.rpc("evm_setAutomine", True)
        receipts = [self.token.w3.eth.wait_for_transaction_receipt(h) for h in hashes]
        assert len({r["blockNumber"] for r in receipts}) == 1
        return int(receipts[0]["blockNumber"])


COUNTER = """def handler(event, context):
    seen = int(context.kv.get("e2e:count") or 0) + 1
    context.kv.put("e2e:count", str(seen))
    secrets = event["secrets"]
    print("run", seen, "with", event["request"]["body"], "key", secrets["hook"], sorted(secrets))
    return {"count": seen, "trigger": event["trigger"]}
"""


def stack_settings(root: Path, kafka: str, prefix: str, **extra: Any) -> Settings:
    """Settings of a test stack under ``root`` (project written there), on free ports."""
    return load_settings(
        data_dir=root / "data",
        project_dir=root / "project",
        kafka_bootstrap=kafka,
        topic_prefix=prefix,
        group_prefix=prefix,
        api_bind=f"127.0.0.1:{free_port()}",
        worker_metrics_bind=f"127.0.0.1:{free_port()}",
        ingest_metrics_bind=f"127.0.0.1:{free_port()}",
        secrets={"hook": SECRET},
        task_webhook_wait=6.0,  # a task's webhook answers pending after 6 s, not 25
        tick_interval=1.0,  # the scheduler's ticks every second: a due run starts at once
        **extra,
    )


def write_project(
    root: Path,
    anvil: Anvil,
    token: Token,
    receiver: WebhookReceiver,
    start: int,
    confirm_blocks: int = 0,
) -> None:
    (root / "monitors").mkdir(parents=True)
    (root / "channels").mkdir()
    shutil.copytree(REPO_ROOT / "examples" / "abis", root / "abis")
    (root / "vigil.yaml").write_text(
        f"networks:\n  anvil:\n    chain_id: 31337\n    rpc_urls: ['{anvil.url}']\n"
        f"    poll_interval: 0.2\n    start_block: {start}\n"
    )
    (root / "monitors" / "large.yaml").write_text(
        f"name: large transfers\nnetwork: anvil\naddresses: ['{token.address}']\n"
        "abi: ../abis/ERC20.json\nconditions:\n  events:\n"
        "    - signature: Transfer(address,address,uint256)\n"
        "      expression: value >= 1000 * 10^18\nchannels: [hook]\n"
        f"confirm_blocks: {confirm_blocks}\n"
    )
    (root / "channels" / "hook.yaml").write_text(
        f"alias: hook\ntype: webhook\nurl: {receiver.url}\nsecret: hook\n"
    )
    (root / "tasks").mkdir()
    (root / "tasks" / "counter.yaml").write_text("name: counter\ncode: counter.py\ntimeout: 30\n")
    (root / "tasks" / "counter.py").write_text(COUNTER)
