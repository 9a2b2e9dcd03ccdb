"""Three workers in one group share one busy chain (``spread: true``): blocks spread over
the partitions by number. One worker is killed mid-stream; its partitions move to the
other two, and every match is delivered, none twice under a new request id, held ones
released on time."""

import copy
import os
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from kafka import KafkaAdminClient
from kafka.errors import KafkaError
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import MAINNET, USDC, USDT, ApiServer, RunningIngester, api_app, load_json
from tests.rpc_server import JsonRpcServer
from vigil.config.loader import load_project
from vigil.schemas.catalogue import REGISTRY_TOPIC
from vigil.schemas.codec import Codec
from vigil.schemas.evm import block_record
from vigil.settings import Settings, load_settings
from vigil.stack import process
from vigil.stack.broker import free_port
from vigil.streams.config_topics import apply_project
from vigil.streams.evm.ingester import Ingester
from vigil.streams.kafka import BatchProducer, ensure_topics
from vigil.streams.live_config import LiveConfig
from vigil.streams.registry_log import kafka_backed_store
from vigil.testing import WebhookReceiver, wait_for

pytestmark = pytest.mark.integration
FIRST, BLOCKS, WORKERS = 18_000_000, 36, 3


def chain() -> dict[int, tuple[dict[str, Any], list[dict[str, Any]]]]:
    """``BLOCKS`` blocks made from block 18,000,000: same transactions, own numbers and hashes."""
    raw, receipts = (
        load_json(MAINNET / "18000000.block.json"),
        load_json(MAINNET / "18000000.receipts.json"),
    )
    blocks = {}
    parent = raw["parentHash"]
    for number in range(FIRST, FIRST + BLOCKS):
        block_hash = f"0x{number:064x}"
        block = {
            **copy.deepcopy(raw),
            "number": hex(number),
            "hash": block_hash,
            "parentHash": parent,
        }
        mine = copy.deepcopy(receipts)
        for receipt in mine:
            receipt.update(blockNumber=hex(number), blockHash=block_hash)
            for log in receipt["logs"]:
                log.update(blockNumber=hex(number), blockHash=block_hash)
        blocks[number] = (block, mine)
        parent = block_hash
    return blocks


def project(root: Path, rpc: str, hook: str) -> Path:
    (root / "monitors").mkdir(parents=True)
    (root / "channels").mkdir()
    (root / "vigil.yaml").write_text(
        f"networks:\n  mainnet:\n    chain_id: 1\n    rpc_urls: ['{rpc}']\n"
        f"    start_block: {FIRST}\n    poll_interval: 0.05\n    confirmations: 0\n"
        "    spread: true\n"
    )
    for name, address, depth in (("usdt", USDT, 0), ("usdc", USDC, 0), ("usdt-deep", USDT, 3)):
        (root / "monitors" / f"{name}.yaml").write_text(
            f"name: {name}\nnetwork: mainnet\naddresses: ['{address}']\nchannels: [hook]\n"
            f"confirm_blocks: {depth}\n"
        )
    (root / "channels" / "hook.yaml").write_text(f"alias: hook\ntype: webhook\nurl: {hook}\n")
    return root


def members(kafka: str, group: str) -> int:
    admin = KafkaAdminClient(bootstrap_servers=kafka)
    try:
        described = admin.describe_groups([group])[group]
    except KafkaError:  # the group's coordinator is not there yet
        return 0
    else:
        return len(described.get("members") or [])
    finally:
        admin.close()


def test_three_workers_share_a_chain_and_survive_losing_one(
    settings: Settings, kafka: str, tmp_path: Path
) -> None:
    blocks = chain()
    server = JsonRpcServer(blocks=blocks, head=FIRST + 5).start()
    receiver = WebhookReceiver().start()
    posts: list[tuple[str, list[str]]] = []  # (request id, event ids) of every POST
    lock = threading.Lock()

    def received(post: Any) -> None:
        with lock:
            posts.append(
                (post.headers["X-Vigil-Request-Id"], [e["id"] for e in post.json()["events"]])
            )

    receiver.on_receive = received
    root = project(tmp_path / "project", server.url, receiver.url)
    settings = load_settings(**{**settings.model_dump(), "project_dir": root, "secrets": {}})
    ensure_topics(settings, kafka)
    store = kafka_backed_store(settings, kafka, settings.topic(REGISTRY_TOPIC))
    codec = Codec(store)
    apply_project(settings, kafka, codec, load_project(root))
    live = LiveConfig(settings, kafka, codec)
    matcher = live.load().matcher
    expected = {
        m["id"]
        for number, (raw, receipts) in blocks.items()
        for m in matcher.match_block(block_record("mainnet", 1, raw, receipts))
    }
    assert len(expected) > 3 * BLOCKS  # every block matches, for every monitor
    workers: list[Any] = []
    try:
        with ApiServer(api_app(store=store)) as api:
            env = {**os.environ, **settings.child_env(), **api.env}

            ports = [free_port() for _ in range(WORKERS)]

            def start(n: int) -> Any:
                own = {
                    "VIGIL_DATA_DIR": str(tmp_path / f"worker{n}"),
                    "VIGIL_WORKER_METRICS_BIND": f"127.0.0.1:{ports[n]}",
                }
                log = tmp_path / f"worker{n}.log"
                return process.spawn(
                    [sys.executable, "-m", "vigil", "worker"], env={**env, **own}, log_file=log
                )

            workers = [start(n) for n in range(WORKERS)]
            group = settings.group("worker")
            wait_for(lambda: members(kafka, group) == WORKERS, 90, "three workers in the group")
            sink = BatchProducer(settings, kafka)
            ingester = Ingester(settings, "mainnet", settings_network(root), sink, codec, kafka)
            with RunningIngester(ingester):
                delivered = lambda: {i for _, ids in posts for i in ids}  # noqa: E731
                wait_for(lambda: len(delivered()) > 20, 90, "the first deliveries")
                for head in range(FIRST + 6, FIRST + BLOCKS // 2):  # the chain grows
                    server.head = head
                    time.sleep(0.1)
                # the chain is shared: more than one worker matches blocks of its partitions
                busy = wait_for(
                    lambda: (
                        b if len(b := [n for n, p in enumerate(ports) if matched(p)]) > 1 else None
                    ),
                    60,
                    "two workers to match",
                )
                os.kill(workers[busy[0]].pid, signal.SIGKILL)  # mid-stream, without leaving
                for head in range(FIRST + BLOCKS // 2, FIRST + BLOCKS):
                    server.head = head
                    time.sleep(0.1)
                wait_for(lambda: members(kafka, group) == WORKERS - 1, 60, "the group to shrink")
                wait_for(
                    lambda: delivered() >= expected - deep_tail(expected), 120, "every delivery"
                )
            sink.close()
    finally:
        for worker in workers:
            if worker.poll() is None:
                process.stop(worker, "worker")
        receiver.stop()
        server.stop()
    delivered_ids = {i for _, ids in posts for i in ids}
    # usdt-deep waits 3 blocks: the last 3 blocks' matches are held, none sent early
    assert delivered_ids == expected - deep_tail(expected)
    # nothing sent twice, unless the killed worker was sending it: then the repeat has the
    # request id of the first send (receivers drop it by X-Vigil-Request-Id)
    requests: dict[str, set[str]] = {}
    for request_id, ids in posts:
        for event in ids:
            requests.setdefault(event, set()).add(request_id)
    assert all(len(ids) == 1 for ids in requests.values())
    repeated = [r for r, n in Counter(r for r, _ in posts).items() if n > 1]
    assert len(repeated) <= 1, repeated


def matched(port: int) -> float:
    """The matches a worker counted (its /metrics), 0 before it answers."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.HTTPError:
        return 0
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "vigil_matches_total"
    )


def deep_tail(expected: set[str]) -> set[str]:
    """The usdt-deep matches of the last 3 blocks: their confirmations are not reached."""
    last = {f"0x{n:064x}" for n in range(FIRST + BLOCKS - 3, FIRST + BLOCKS)}
    return {m for m in expected if m.startswith("usdt-deep:") and m.split(":")[2] in last}


def settings_network(root: Path) -> Any:
    return load_project(root).config.networks["mainnet"]
