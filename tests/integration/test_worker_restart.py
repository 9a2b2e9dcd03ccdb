"""Records that arrive while a restarted worker recovers its tables are all processed.

Faust empties its agents' queues when flow resumes at the end of a recovery, after it has
already sought to the committed offsets; without vigil's re-read, the queued match batches
of a partition were lost (55 to 145 in a row, in most restarts). This drives a real worker
through restarts while batches keep arriving and counts every delivery.
"""

import copy
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import FIXTURES, USDC, ApiServer, api_app, load_json
from vigil.config.loader import load_project
from vigil.schemas.catalogue import REGISTRY_TOPIC
from vigil.schemas.codec import Codec
from vigil.settings import Settings, load_settings
from vigil.stack import process
from vigil.streams.config_topics import apply_project
from vigil.streams.kafka import ensure_topics, producer
from vigil.streams.registry_log import kafka_backed_store
from vigil.testing import WebhookReceiver, wait_for

pytestmark = pytest.mark.integration
MONITORS = ("m1", "m2", "m3", "m4")  # spread over the topic's partitions
RESTARTS = 3


def project(root: Path, url: str) -> Path:
    (root / "monitors").mkdir(parents=True)
    (root / "channels").mkdir()
    (root / "vigil.yaml").write_text(
        "networks:\n  mainnet:\n    chain_id: 1\n    rpc_urls: ['http://127.0.0.1:9']\n"
    )
    for name in MONITORS:
        (root / "monitors" / f"{name}.yaml").write_text(
            f"name: {name}\nnetwork: mainnet\naddresses: ['{USDC}']\nchannels: [hook]\n"
        )
    (root / "channels" / "hook.yaml").write_text(f"alias: hook\ntype: webhook\nurl: {url}\n")
    return root


def test_batches_arriving_during_worker_restarts_are_all_delivered(
    settings: Settings, kafka: str, tmp_path: Path
) -> None:
    receiver = WebhookReceiver().start()
    delivered: set[str] = set()
    receiver.on_receive = lambda post: delivered.update(e["id"] for e in post.json()["events"])
    root = project(tmp_path / "project", receiver.url)
    settings = load_settings(**{**settings.model_dump(), "project_dir": root, "secrets": {}})
    ensure_topics(settings, kafka)
    store = kafka_backed_store(settings, kafka, settings.topic(REGISTRY_TOPIC))
    golden = load_json(FIXTURES / "avro" / "MatchBatch.json")
    sent: set[str] = set()
    worker = None
    try:
        with ApiServer(api_app(store=store)) as api:
            codec = Codec(store)
            apply_project(settings, kafka, codec, load_project(root))
            topic = settings.topic("monitor.match-batches")
            sink = producer(settings, kafka, linger_ms=0)
            env = {**os.environ, **settings.child_env(), **api.env}

            def produce(rounds: int, gap: float) -> None:
                for _ in range(rounds):
                    for name in MONITORS:
                        batch: dict[str, Any] = copy.deepcopy(golden)
                        number = len(sent)
                        batch["id"] = f"{name}:mainnet:b{number}"
                        batch["monitorId"] = name
                        for match in batch["matches"]:
                            match["id"] = f"{name}:mainnet:b{number}:-"
                            match["monitor"] = {
                                **match["monitor"],
                                "id": name,
                                "channels": ["hook"],
                            }
                        sent.add(batch["matches"][0]["id"])
                        sink.send(
                            topic, key=name.encode(), value=codec.encode(topic, "MatchBatch", batch)
                        )
                    sink.flush()
                    time.sleep(gap)

            def start(n: int) -> Any:
                log = tmp_path / f"worker{n}.log"
                return process.spawn(
                    [sys.executable, "-m", "vigil", "worker"], env=env, log_file=log
                )

            worker = start(0)
            produce(5, 0.1)
            wait_for(lambda: delivered >= sent, 120, "the first deliveries")
            for n in range(1, RESTARTS + 1):
                process.stop(worker, "worker")
                worker = start(n)
                produce(120, 0.02)  # keeps arriving across the new worker's recovery
                wait_for(lambda: delivered >= sent, 60, f"every batch after restart {n}")
            sink.close()
    finally:
        if worker is not None:
            process.stop(worker, "worker")
        receiver.stop()
    assert delivered == sent
