"""The whole stack: anvil → ingester → Kafka → Faust worker → webhook + ClickHouse."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from kafka import KafkaConsumer

from tests.e2e.stack import LARGE, SECRET, Running, write_project
from tests.helpers import run_vigil
from vigil.connectors.notify.webhook import (
    REQUEST_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify,
)
from vigil.demo.chain import Anvil, Token
from vigil.stack.access import api_headers
from vigil.stack.broker import free_port, port_in_use
from vigil.stack.supervisor import Stack
from vigil.streams.kafka import producer
from vigil.testing import WebhookReceiver, wait_for

pytestmark = pytest.mark.e2e


def scrape(url: str, headers: dict[str, str] | None = None) -> dict[str, float]:
    """Prometheus text format as {series with sorted labels: value}."""
    from prometheus_client.parser import text_string_to_metric_families

    response = httpx.get(url, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    found = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            found[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return found


def test_transfers_reach_the_webhook_once_per_block_and_clickhouse(running: Running) -> None:
    block = running.mine_transfers(LARGE, 5 * 10**18, LARGE + 1)
    wait_for(lambda: running.stack.check() or running.receiver.received, 60, "the first POST")
    [post] = running.receiver.received
    assert verify(SECRET, post.headers[TIMESTAMP_HEADER], post.body, post.headers[SIGNATURE_HEADER])
    events = post.json()["events"]
    assert [int(e["blockNumber"], 16) for e in events] == [
        block,
        block,
    ]  # the small one did not match
    assert sorted(int(e["matchReasons"][0]["params"]["value"]) for e in events) == [
        LARGE,
        LARGE + 1,
    ]
    assert post.headers[REQUEST_HEADER].endswith(":hook")

    rows = wait_for(
        lambda: (
            running.sql(
                "SELECT count() FROM matches FINAL UNION ALL "
                "SELECT countIf(status = 'SENT') FROM deliveries FINAL UNION ALL "
                f"SELECT count() FROM transactions FINAL WHERE block_number = {block}"
            )
            == [[2], [2], [3]]
            or None
        ),
        60,
        "matches, deliveries and transactions in ClickHouse",
    )
    assert rows
    # each process serves its metrics: the worker's matches and deliveries, the ingester's
    # head and RPC endpoint (host only), the API's history rows (behind a key)
    settings = running.stack.settings
    worker = scrape(f"http://{settings.worker_metrics_bind}/metrics")
    assert worker['vigil_matches_total{monitor="large"}'] == 2
    assert worker['vigil_deliveries_total{channel="hook",status="SENT",type="webhook"}'] == 2
    ingest = scrape(f"http://{settings.ingest_metrics_bind}/metrics")
    assert ingest['vigil_ingest_head_block{network="anvil"}'] >= block
    host = running.anvil.url.split("//")[1].rstrip("/")
    assert ingest[f'vigil_rpc_requests_total{{endpoint="{host}"}}'] > 0
    assert httpx.get(f"{settings.api_url}/metrics").status_code == 401
    api = scrape(f"{settings.api_url}/metrics", api_headers(settings))
    assert api['vigil_history_rows_total{table="matches"}'] == 2
    assert api["vigil_dlq_records"] == 0
    # the CLI reaches chDB through the running API (chDB lets one process open its data)
    env = {**os.environ, **running.stack.settings.child_env()}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "vigil",
            "sql",
            "--format",
            "json",
            "SELECT transaction_hash, block_number FROM matches FINAL ORDER BY transaction_hash",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert sorted(r["transaction_hash"] for r in printed) == sorted(e["hash"] for e in events)
    assert {r["block_number"] for r in printed} == {block}


def test_a_reorg_retracts_a_delivered_match_once(running: Running) -> None:
    anvil = running.anvil
    snapshot = anvil.rpc("evm_snapshot")
    orphaned = running.mine_transfers(LARGE)
    wait_for(lambda: running.stack.check() or len(running.receiver.received) == 1, 60, "POST 1")
    [event] = running.receiver.received[0].json()["events"]
    anvil.rpc("evm_revert", snapshot)
    timestamp = int(anvil.rpc("eth_getBlockByNumber", hex(orphaned - 1), False)["timestamp"], 16)
    anvil.rpc("evm_setNextBlockTimestamp", hex(timestamp + 1000))
    anvil.rpc("anvil_mine", hex(3))  # a longer chain without the transfer
    wait_for(
        lambda: running.stack.check() or len(running.receiver.received) >= 2, 60, "the retraction"
    )
    follow_up = running.receiver.received[1]
    [retraction] = follow_up.json()["events"]
    assert retraction["type"] == "RETRACTION" and retraction["retracted"] is True
    assert retraction["id"] == event["id"]
    assert int(retraction["blockNumber"], 16) == orphaned
    assert verify(
        SECRET,
        follow_up.headers[TIMESTAMP_HEADER],
        follow_up.body,
        follow_up.headers[SIGNATURE_HEADER],
    )
    assert follow_up.headers[REQUEST_HEADER].endswith(":hook:retracted")
    rows = wait_for(
        lambda: (
            running.sql(
                f"SELECT retracted FROM matches FINAL WHERE id = '{event['id']}' UNION ALL "
                f"SELECT count() FROM deliveries FINAL WHERE match_id = '{event['id']}'"
            )
            == [[1], [2]]
            or None
        ),
        60,
        "the match retracted in ClickHouse, two deliveries",
    )
    assert rows
    anvil.rpc("anvil_mine", hex(3))
    time.sleep(2)
    assert len(running.receiver.received) == 2  # the retraction went out once


@pytest.mark.parametrize("running", [2], indirect=True)
def test_a_deeper_monitor_is_notified_only_once_its_block_is_confirmed(running: Running) -> None:
    block = running.mine_transfers(LARGE)  # the network emits at 0 confirmations
    time.sleep(2)
    running.anvil.rpc("anvil_mine", hex(1))
    time.sleep(2)
    assert running.receiver.received == []  # one block on top: not yet
    rows = wait_for(
        lambda: running.sql("SELECT count() FROM matches FINAL") == [[1]] or None,
        60,
        "the match in history meanwhile",
    )
    assert rows
    running.anvil.rpc("anvil_mine", hex(1))
    wait_for(lambda: running.stack.check() or running.receiver.received, 60, "the POST")
    [event] = running.receiver.received[0].json()["events"]
    assert int(event["blockNumber"], 16) == block
    assert event["monitor"]["confirmBlocks"] == 2


def test_a_node_on_another_chain_stops_vigil_up_before_anything_starts(
    tmp_path: Path, kafka: str, anvil: Anvil, prefix: str
) -> None:
    token = Token(anvil.url)
    receiver = WebhookReceiver().start()
    try:
        write_project(tmp_path / "project", anvil, token, receiver, 0)
    finally:
        receiver.stop()
    vigil_yaml = tmp_path / "project" / "vigil.yaml"
    vigil_yaml.write_text(vigil_yaml.read_text().replace("chain_id: 31337", "chain_id: 1"))
    env = {
        **os.environ,
        "VIGIL_PROJECT_DIR": str(tmp_path / "project"),
        "VIGIL_DATA_DIR": str(tmp_path / "data"),
        "VIGIL_KAFKA_BOOTSTRAP": kafka,
        "VIGIL_SECRETS": json.dumps({"hook": SECRET}),
    }
    done = subprocess.run(
        [sys.executable, "-m", "vigil", "up"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert (
        f"network 'anvil': {anvil.url} is on chain 31337, but vigil.yaml says chain_id 1"
        in done.stderr
    )
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "data" / "logs").exists()  # nothing was started


def test_worker_restart_and_redelivered_batches_send_nothing_twice(running: Running) -> None:
    running.mine_transfers(LARGE)
    wait_for(lambda: running.stack.check() or len(running.receiver.received) == 1, 60, "POST 1")
    # restart the worker; a block mined while it is down is delivered once it is back
    stack = running.stack
    from vigil.stack import process

    process.stop(stack.children.pop("worker"), "worker")
    second = running.mine_transfers(LARGE + 2)
    stack.start_role("worker")
    wait_for(lambda: stack.check() or len(running.receiver.received) == 2, 90, "POST 2")
    assert int(running.receiver.received[1].json()["events"][0]["blockNumber"], 16) == second

    # the same match batches arrive again (a replayed partition): no POST may follow
    topic = stack.settings.topic("monitor.match-batches")
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=stack.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=3000,
    )
    replayed = [(r.key, r.value) for r in consumer]
    consumer.close()
    # at least one per block; the restart may already have re-emitted one (at-least-once)
    assert len(replayed) >= 2
    sink = producer(stack.settings, stack.bootstrap)
    for key, value in replayed:
        sink.send(topic, key=key, value=value)
    sink.flush()
    sink.close()
    marker = running.mine_transfers(LARGE + 3)  # processed after the replayed records
    wait_for(lambda: stack.check() or len(running.receiver.received) >= 3, 60, "POST 3")
    blocks = [int(p.json()["events"][0]["blockNumber"], 16) for p in running.receiver.received]
    assert blocks[2:] == [marker], blocks
    sent = wait_for(
        lambda: (
            running.sql("SELECT count() FROM deliveries FINAL WHERE status = 'SENT'") == [[3]]
            or None
        ),
        60,
        "three deliveries in ClickHouse",
    )
    assert sent


@pytest.mark.skipif(
    port_in_use(8545) or port_in_use(8901),
    reason="the demo needs ports 8545 and 8901 (examples/ is written for them)",
)
def test_make_up_demo_runs_on_the_embedded_stack(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "VIGIL_DATA_DIR": str(tmp_path),
        "VIGIL_API_BIND": f"127.0.0.1:{free_port()}",
    }
    done = subprocess.run(
        [sys.executable, "-m", "vigil", "demo", "--exit"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "starting the embedded Kafka broker" in output
    assert output.count("webhook received (signature ok)") >= 3
    # the monitor's task ran on the match and its notification came through the channel
    assert "task large transfers tally says large transfers: 1 large transfer(s)" in output
    assert "/tasks/counter/webhook/" in output
    assert "BAD SIGNATURE" not in output
    assert "matches in ClickHouse" in output


def _vigil(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return run_vigil(stack.settings, *args)  # type: ignore[no-any-return]


def _worker_logged(stack: Stack, text: str) -> bool:
    stack.check()
    return text in (stack.logs / "worker.log").read_text()


def test_monitors_applied_paused_and_resumed_while_the_worker_runs(running: Running) -> None:
    stack = running.stack
    monitor = stack.settings.project_dir / "monitors" / "every.yaml"
    monitor.write_text(
        f"name: every token transaction\nid: every\nnetwork: anvil\n"
        f"addresses: ['{running.token.address}']\nchannels: [hook]\n"
        "risk_category: suspicious\n"
    )
    planned = _vigil(stack, "apply", "--dry-run", "--format", "json")
    assert planned.returncode == 0, planned.stderr
    [every] = [row for row in json.loads(planned.stdout) if row["id"] == "every"]
    assert (every["kind"], every["change"]) == ("monitor", "create")
    applied = _vigil(stack, "apply")
    assert applied.returncode == 0, applied.stderr
    assert "every" in applied.stdout and "create" in applied.stdout
    wait_for(lambda: _worker_logged(stack, "config: monitor every active"), 30, "the new monitor")

    small = running.mine_transfers(5 * 10**18)  # only the new monitor matches a small transfer
    wait_for(lambda: stack.check() or running.receiver.received, 60, "the new monitor's POST")
    [event] = running.receiver.received[0].json()["events"]
    assert event["monitor"]["id"] == "every" and int(event["blockNumber"], 16) == small

    paused = _vigil(stack, "monitors", "pause", "every")
    assert paused.returncode == 0 and "paused" in paused.stdout, paused.stderr
    wait_for(lambda: _worker_logged(stack, "config: monitor every paused"), 30, "the pause")
    witness = running.mine_transfers(LARGE)  # both would match; the paused one must not
    wait_for(lambda: stack.check() or len(running.receiver.received) >= 2, 60, "the large POST")
    time.sleep(2)
    later = [e for p in running.receiver.received[1:] for e in p.json()["events"]]
    assert [(e["monitor"]["id"], int(e["blockNumber"], 16)) for e in later] == [("large", witness)]
    listed = _vigil(stack, "monitors", "list", "--format", "json")
    assert {m["id"]: m["paused"] for m in json.loads(listed.stdout)} == {
        "every": True,
        "large": False,
    }
    suspicious = _vigil(stack, "monitors", "list", "--category", "suspicious", "--format", "json")
    assert [(m["id"], m["category"]) for m in json.loads(suspicious.stdout)] == [
        ("every", "suspicious")
    ]
    typo = _vigil(stack, "monitors", "list", "--category", "finance")
    assert typo.returncode == 2 and "expected one of governance" in typo.stderr

    # a pause by hand outlives a re-apply of unchanged files
    again = _vigil(stack, "apply")
    assert again.returncode == 0 and "nothing to change" in again.stdout, again.stdout
    resumed = _vigil(stack, "monitors", "resume", "every")
    assert resumed.returncode == 0, resumed.stderr
    wait_for(lambda: _worker_logged(stack, "(resume)"), 30, "the resume")
    back = running.mine_transfers(6 * 10**18)
    wait_for(lambda: stack.check() or len(running.receiver.received) >= 3, 60, "POST after resume")
    [event] = running.receiver.received[2].json()["events"]
    assert event["monitor"]["id"] == "every" and int(event["blockNumber"], 16) == back

    # deleting the file and applying removes the monitor
    monitor.unlink()
    removed = _vigil(stack, "apply")
    assert removed.returncode == 0 and "delete" in removed.stdout, removed.stdout
    wait_for(lambda: _worker_logged(stack, "config: monitor every deleted"), 30, "the delete")
    audit = wait_for(
        lambda: (
            running.sql(
                "SELECT action, source FROM config_changes FINAL WHERE kind = 'monitor' "
                "AND id = 'every' ORDER BY at"
            )
            == [["upsert", "apply"], ["upsert", "pause"], ["upsert", "resume"], ["delete", "apply"]]
            or None
        ),
        60,
        "the monitor's changes in ClickHouse",
    )
    assert audit


def test_status_shows_processes_lag_networks_and_dead_letters(running: Running) -> None:
    stack = running.stack
    block = running.mine_transfers(LARGE)
    wait_for(lambda: stack.check() or running.receiver.received, 60, "the large transfer's POST")
    worker_group = stack.settings.group("worker")

    def reported() -> dict[str, Any] | None:
        done = _vigil(stack, "status", "--format", "json")
        assert done.returncode == 0, done.stderr
        found: dict[str, Any] = json.loads(done.stdout)
        # the worker commits its offsets every second: its group shows once it has
        return found if worker_group in {row["group"] for row in found["lag"]} else None

    report = wait_for(reported, 30, "the worker's group in vigil status")
    up = {p["process"]: p["up"] for p in report["processes"]}
    assert up == {"serve": True, "worker": True, "runner": True, "ingest": True, "api": True}
    [anvil] = report["networks"]
    assert anvil["network"] == "anvil" and anvil["emitted"] >= block
    assert anvil["head"] >= anvil["emitted"] and anvil["lag"] == anvil["head"] - anvil["emitted"]
    assert all(row["lag"] >= 0 for row in report["lag"])
    assert report["dead_letters"] == 0
    table = _vigil(stack, "status")
    assert table.returncode == 0 and "processes" in table.stdout and "anvil" in table.stdout
