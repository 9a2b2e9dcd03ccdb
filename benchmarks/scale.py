"""Scale-out: the same blocks through 1, 2 and 3 workers in one consumer group.

Blocks are keyed by number (as the ingester keys them), so one chain spreads over the
partitions (VIGIL_KAFKA_PARTITIONS, here 6) and the workers share it. For each worker count:
load copies of block 18,000,000 into the blocks topic, start the workers together, and time
the steady part (after the first 10% of match batches) to the last batch. Prints blocks/s
and the ratio to one worker measured in the same run.

What it can show on this machine: whether the work spreads (every worker takes partitions,
nothing is processed twice) and what the group costs. What it cannot: the gain of more
machines. This machine has 2 cores shared by the broker, the producer and every worker, so
three workers contend for the same cores; on separate machines each worker brings its own.
Run with ``make bench``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.pipeline import copies, project  # noqa: E402
from tests.helpers import ApiServer, api_app, recorded_block_18m  # noqa: E402
from vigil.config.loader import load_project  # noqa: E402
from vigil.schemas.catalogue import REGISTRY_TOPIC  # noqa: E402
from vigil.schemas.codec import Codec  # noqa: E402
from vigil.settings import load_settings  # noqa: E402
from vigil.stack import process  # noqa: E402
from vigil.stack.broker import EmbeddedKafka, free_port  # noqa: E402
from vigil.streams.config_topics import apply_project  # noqa: E402
from vigil.streams.kafka import ensure_topics, producer  # noqa: E402
from vigil.streams.registry_log import kafka_backed_store  # noqa: E402

BLOCKS = int(os.environ.get("BENCH_BLOCKS", "400"))
PARTITIONS = 6


def run(root: Path, bootstrap: str, workers: int, block: dict[str, Any]) -> float:
    """Blocks/s of ``workers`` workers over BLOCKS blocks, on topics of their own."""
    from kafka import KafkaConsumer

    settings = load_settings(
        data_dir=root / f"data{workers}",
        project_dir=project(root / f"p{workers}"),
        kafka_bootstrap=bootstrap,
        topic_prefix=f"scale{workers}",
        group_prefix=f"scale{workers}",
        kafka_partitions=PARTITIONS,
    )
    ensure_topics(settings, bootstrap)
    store = kafka_backed_store(settings, bootstrap, settings.topic(REGISTRY_TOPIC))
    running: list[Any] = []
    with ApiServer(api_app(store=store)) as api:
        codec = Codec(store)
        apply_project(settings, bootstrap, codec, load_project(settings.project_dir))
        topic = settings.topic("chain.blocks")
        sink = producer(settings, bootstrap, linger_ms=2)
        for record in copies(block, 0, BLOCKS):
            value = codec.encode(topic, "Block", record)
            sink.send(topic, key=f"mainnet:{record['number']}".encode(), value=value)
        sink.flush()
        sink.close()
        consumer = KafkaConsumer(
            settings.topic("monitor.match-batches"),
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=10,
            max_partition_fetch_bytes=16 * 1024 * 1024,
        )
        env = {**os.environ, **settings.child_env(), **api.env}
        try:
            for n in range(workers):
                own = {
                    "VIGIL_DATA_DIR": str(root / f"w{workers}-{n}"),
                    "VIGIL_WORKER_METRICS_BIND": f"127.0.0.1:{free_port()}",
                }
                running.append(
                    process.spawn(
                        [sys.executable, "-m", "vigil", "worker"],
                        env={**env, **own},
                        log_file=root / f"w{workers}-{n}.log",
                    )
                )
            seen: dict[str, float] = {}
            deadline = time.time() + 600
            while len(seen) < BLOCKS and time.time() < deadline:
                for records in consumer.poll(timeout_ms=200).values():
                    for record in records:
                        batch = codec.decode(record.value, "MatchBatch")
                        seen.setdefault(batch["blockHash"], record.timestamp / 1000)
            if len(seen) < BLOCKS:
                raise SystemExit(f"{workers} worker(s): only {len(seen)}/{BLOCKS} batches")
        finally:
            for worker in running:
                process.stop(worker, "worker")
            consumer.close()
    done = sorted(seen.values())
    skip = BLOCKS // 10
    return (BLOCKS - skip - 1) / (done[-1] - done[skip])


def main() -> None:
    block = recorded_block_18m()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        broker = EmbeddedKafka(load_settings(data_dir=root / "broker"))
        bootstrap = broker.start()
        try:
            rates = {n: run(root, bootstrap, n, block) for n in (1, 2, 3)}
        finally:
            broker.stop()
    print(
        f"scale-out, block 18,000,000 x {BLOCKS}, one monitor, {PARTITIONS} partitions, "
        f"{os.cpu_count()} cores"
    )
    for n, blocks_s in rates.items():
        ratio = blocks_s / rates[1]
        print(f"  {n} worker(s)   {blocks_s:>8,.0f} blocks/s   {ratio:.2f}x of one worker")


if __name__ == "__main__":
    main()
