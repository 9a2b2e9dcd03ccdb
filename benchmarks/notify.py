"""Delivery latency: a match batch on Kafka → the webhook request arriving at a receiver.

Starts the embedded KRaft broker, vigil's registry, a worker with one applied webhook channel
and a local receiver; produces one match batch every 50 ms (each with a new match id, so the
delivered-keys table lets it through) and measures, per batch, the time from its produce to
the receiver getting the signed POST: p50 and p99. The baseline, measured in the same run, is
the same POST sent straight from this process with httpx (the HTTP cost alone).
Run with ``make bench``.
"""

from __future__ import annotations

import copy
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import FIXTURES, USDC, ApiServer, api_app  # noqa: E402
from vigil.config.loader import load_project  # noqa: E402
from vigil.schemas.catalogue import REGISTRY_TOPIC  # noqa: E402
from vigil.schemas.codec import Codec  # noqa: E402
from vigil.settings import load_settings  # noqa: E402
from vigil.stack import process  # noqa: E402
from vigil.stack.broker import EmbeddedKafka  # noqa: E402
from vigil.streams.config_topics import apply_project  # noqa: E402
from vigil.streams.kafka import ensure_topics, producer  # noqa: E402
from vigil.streams.registry_log import kafka_backed_store  # noqa: E402
from vigil.testing import WebhookReceiver, wait_for  # noqa: E402

BATCHES = int(os.environ.get("BENCH_NOTIFY", "200"))
WARMUP = 20


def project(root: Path, url: str) -> Path:
    (root / "monitors").mkdir(parents=True)
    (root / "channels").mkdir()
    (root / "vigil.yaml").write_text(
        "networks:\n  mainnet:\n    chain_id: 1\n    rpc_urls: ['http://127.0.0.1:9']\n"
    )
    (root / "monitors" / "usdc.yaml").write_text(
        f"name: usdc\nnetwork: mainnet\naddresses: ['{USDC}']\nchannels: [bench]\n"
    )
    (root / "channels" / "bench.yaml").write_text(
        f"alias: bench\ntype: webhook\nurl: {url}\nsecret: bench\n"
    )
    return root


def batches(count: int) -> list[dict[str, Any]]:
    golden = json.loads((FIXTURES / "avro" / "MatchBatch.json").read_text())
    out = []
    for i in range(count):
        batch = copy.deepcopy(golden)
        batch["id"] = f"usdc:mainnet:bench-{i}"
        for j, match in enumerate(batch["matches"]):
            match["id"] = f"usdc:mainnet:bench-{i}:{j}:-"
            match["monitor"]["channels"] = ["bench"]
        out.append(batch)
    return out


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * share) - 1)]


def main() -> None:
    receiver = WebhookReceiver().start()
    arrived: dict[str, float] = {}
    receiver.on_receive = lambda post: arrived.setdefault(
        post.headers["X-Vigil-Request-Id"].rsplit(":", 1)[0], time.time()
    )
    # baseline: the same signed-size POST straight from here
    body = json.dumps({"events": batches(1)[0]["matches"]}).encode()
    direct = []
    with httpx.Client() as client:
        for _ in range(BATCHES):
            started = time.time()
            client.post(receiver.url, content=body, headers={"X-Vigil-Request-Id": "x:y"})
            direct.append((time.time() - started) * 1000)
    receiver.received.clear()
    arrived.clear()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        broker = EmbeddedKafka(load_settings(data_dir=root / "broker"))
        bootstrap = broker.start()
        settings = load_settings(
            data_dir=root / "data",
            project_dir=project(root / "p", receiver.url),
            kafka_bootstrap=bootstrap,
            secrets={"bench": "bench-secret"},
        )
        worker = None
        try:
            ensure_topics(settings, bootstrap)
            store = kafka_backed_store(settings, bootstrap, settings.topic(REGISTRY_TOPIC))
            with ApiServer(api_app(store=store)) as api:
                codec = Codec(store)
                apply_project(settings, bootstrap, codec, load_project(settings.project_dir))
                env = {**os.environ, **settings.child_env(), **api.env}
                worker = process.spawn(
                    [sys.executable, "-m", "vigil", "worker"], env=env, log_file=root / "worker.log"
                )
                topic = settings.topic("monitor.match-batches")
                sink = producer(settings, bootstrap, linger_ms=0)
                records = batches(BATCHES + WARMUP)
                encoded = [(b["id"], codec.encode(topic, "MatchBatch", b)) for b in records]
                sent: dict[str, float] = {}
                # the first batches wait for the worker's start; they are not measured
                for _, value in encoded[:WARMUP]:
                    sink.send(topic, key=b"usdc", value=value)
                sink.flush()
                wait_for(lambda: len(arrived) >= WARMUP, 180, "the warm-up deliveries")
                for batch_id, value in encoded[WARMUP:]:
                    sent[batch_id] = time.time()
                    sink.send(topic, key=b"usdc", value=value)
                    sink.flush()
                    time.sleep(0.05)
                wait_for(lambda: len(arrived) >= BATCHES + WARMUP, 120, "every delivery")
                sink.close()
        finally:
            if worker is not None:
                process.stop(worker, "worker")
            broker.stop()
            receiver.stop()
    latencies = [(arrived[b] - sent[b]) * 1000 for b in sent]
    p50, p99 = statistics.median(latencies), percentile(latencies, 0.99)
    base50, base99 = statistics.median(direct), percentile(direct, 0.99)
    print(f"notification latency, match batch produced → webhook POST received ({BATCHES} batches)")
    print(f"  direct httpx POST (baseline)    p50 {base50:6.1f} ms   p99 {base99:6.1f} ms")
    print(f"  through Kafka + Faust + notify  p50 {p50:6.1f} ms   p99 {p99:6.1f} ms")
    result = {
        "p50_ms": round(p50, 1),
        "p99_ms": round(p99, 1),
        "baseline_p50_ms": round(base50, 1),
        "baseline_p99_ms": round(base99, 1),
        "ratio_p50_to_baseline": round(p50 / base50, 1),
        "batches": BATCHES,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
