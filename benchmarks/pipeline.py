"""Blocks through the real worker: KRaft broker → Faust matcher agent → match-batch topic.

Loads copies of the recorded block 18,000,000 (94 transactions, one record per block, as the
matching path carries them) into the blocks topic, then starts the worker, and measures, with
one monitor (USDC Transfer + condition):
- throughput: blocks/s and transactions/s of the worker process, and its ratio to the same
  matcher called in-process in this run (the cost of Kafka + Avro + Faust per block);
- latency: block record produced → match batch produced, p50/p99, one block every 50 ms.
Run with ``make bench``.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.matching import monitors, rate  # noqa: E402
from tests.helpers import FIXTURES, USDC, ApiServer, api_app, recorded_block_18m  # noqa: E402
from vigil.config.loader import load_project  # noqa: E402
from vigil.schemas import tx_index  # noqa: E402
from vigil.schemas.catalogue import REGISTRY_TOPIC  # noqa: E402
from vigil.schemas.codec import Codec  # noqa: E402
from vigil.settings import load_settings  # noqa: E402
from vigil.stack import process  # noqa: E402
from vigil.stack.broker import EmbeddedKafka  # noqa: E402
from vigil.streams.config_topics import apply_project  # noqa: E402
from vigil.streams.kafka import BatchProducer, ensure_topics  # noqa: E402
from vigil.streams.registry_log import kafka_backed_store  # noqa: E402

THROUGHPUT_BLOCKS = int(os.environ.get("BENCH_BLOCKS", "400"))
LATENCY_BLOCKS = 60
TRANSFER = (
    "conditions:\n  events:\n    - signature: Transfer(address,address,uint256)\n"
    "      expression: value > 1000000000\n"
)


def project(root: Path) -> Path:
    (root / "monitors").mkdir(parents=True)
    (root / "vigil.yaml").write_text(
        "networks:\n  mainnet:\n    chain_id: 1\n    rpc_urls: ['http://127.0.0.1:9']\n"
    )
    (root / "monitors" / "usdc.yaml").write_text(
        f"name: usdc\nnetwork: mainnet\naddresses: ['{USDC}']\n"
        f"abi: {FIXTURES / 'abi' / 'ERC20.abi.json'}\n{TRANSFER}"
    )
    return root


def copies(block: dict[str, Any], start: int, count: int) -> list[dict[str, Any]]:
    out = []
    for i in range(start, start + count):
        fake = f"0x{i:064x}"  # a distinct block hash per copy, so match ids differ
        txs = [
            {**tx, "blockHash": fake, "blockNumber": 18_000_000 + i} for tx in block["transactions"]
        ]
        out.append({**block, "hash": fake, "number": 18_000_000 + i, "transactions": txs})
    return out


def main() -> None:
    block = recorded_block_18m()
    matcher = monitors(Path(tempfile.mkdtemp()), [USDC], TRANSFER)
    in_process = rate(lambda: matcher.match_block(block), len(block["transactions"]))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        broker = EmbeddedKafka(load_settings(data_dir=root / "broker"))
        bootstrap = broker.start()
        settings = load_settings(
            data_dir=root / "data", project_dir=project(root / "p"), kafka_bootstrap=bootstrap
        )
        worker = None
        try:
            ensure_topics(settings, bootstrap)
            store = kafka_backed_store(settings, bootstrap, settings.topic(REGISTRY_TOPIC))
            with ApiServer(api_app(store=store)) as api:
                codec = Codec(store)
                apply_project(settings, bootstrap, codec, load_project(settings.project_dir))
                blocks_topic = settings.topic("chain.blocks")
                batches_topic = settings.topic("monitor.match-batches")
                sink = BatchProducer(settings, bootstrap)
                from kafka import KafkaConsumer

                consumer = KafkaConsumer(
                    batches_topic,
                    bootstrap_servers=bootstrap,
                    auto_offset_reset="earliest",
                    fetch_max_wait_ms=10,
                    max_partition_fetch_bytes=16 * 1024 * 1024,
                )

                def send(records: list[dict[str, Any]], spacing: float = 0.0) -> dict[str, float]:
                    sent: dict[str, float] = {}
                    # written as the ingester writes them (the value and its transaction index),
                    # first: the producer's Avro cost stays out of the measured window
                    encoded = [
                        (r["hash"], tx_index.write_block(codec, blocks_topic, r)[:2])
                        for r in records
                    ]
                    for block_hash, (value, index) in encoded:
                        sent[block_hash] = time.time()
                        sink.send(
                            blocks_topic,
                            key=b"mainnet",
                            value=value,
                            headers=[(tx_index.HEADER, index)],
                        )
                        if spacing:
                            sink.flush()
                            time.sleep(spacing)
                    sink.flush()
                    return sent

                def receive(count: int, timeout: float = 300) -> dict[str, float]:
                    seen: dict[str, float] = {}
                    deadline = time.time() + timeout
                    while len(seen) < count and time.time() < deadline:
                        for records in consumer.poll(timeout_ms=200).values():
                            for record in records:
                                batch = codec.decode(record.value, "MatchBatch")
                                seen[batch["blockHash"]] = record.timestamp / 1000
                    if len(seen) < count:
                        log = (root / "worker.log").read_text()[-3000:]
                        raise SystemExit(f"only {len(seen)}/{count} batches; worker log:\n{log}")
                    return seen

                # throughput: the blocks wait in the topic, so only the worker is measured
                send(copies(block, 0, THROUGHPUT_BLOCKS))
                env = {**os.environ, **settings.child_env(), **api.env}
                worker = process.spawn(
                    [sys.executable, "-m", "vigil", "worker"], env=env, log_file=root / "worker.log"
                )
                done = sorted(receive(THROUGHPUT_BLOCKS).values())
                # the first batches include the worker's start; time the steady part
                skip = THROUGHPUT_BLOCKS // 10
                elapsed = done[-1] - done[skip]
                measured = THROUGHPUT_BLOCKS - skip - 1
                sent = send(copies(block, 10_000, LATENCY_BLOCKS), spacing=0.05)
                got = receive(LATENCY_BLOCKS)
                latencies = sorted((got[h] - sent[h]) * 1000 for h in sent)
        finally:
            if worker is not None:
                process.stop(worker, "worker")
            broker.stop()
    blocks_s = measured / elapsed
    tx_s = blocks_s * len(block["transactions"])
    print(f"worker pipeline, block 18,000,000 x {THROUGHPUT_BLOCKS}, one monitor, one partition")
    print(f"  in-process matcher (baseline)   {in_process:>10,.0f} tx/s")
    print(
        f"  through Kafka + Avro + Faust    {tx_s:>10,.0f} tx/s  ({blocks_s:,.0f} blocks/s, "
        f"{tx_s / in_process:.2f}x of in-process)"
    )
    p50, p99 = statistics.median(latencies), latencies[int(len(latencies) * 0.99) - 1]
    print(
        f"  latency block → match batch     p50 {p50:.1f} ms, "
        f"p99 {p99:.1f} ms ({LATENCY_BLOCKS} blocks)"
    )
    figures = {
        "tx_s": round(tx_s),
        "in_process_tx_s": round(in_process),
        "ratio": round(tx_s / in_process, 3),
        "p50_ms": round(p50, 1),
        "p99_ms": round(p99, 1),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
