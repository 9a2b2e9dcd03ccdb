"""Custom filters: the latency a filtered monitor's batches see through the filter runner
(request on the broker → sandboxed filter call → kept batch on monitor.match-batches),
alone, and while another monitor's filter sleeps 2 s on every call. The baseline is the
same monitor measured alone in the same run. Run with ``make bench``; the last line is
JSON."""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kafka import KafkaConsumer  # noqa: E402

from tests.integration.test_filters import batch  # noqa: E402
from tests.unit.test_config import CHANNEL, NETWORK, USDT  # noqa: E402
from vigil.config.loader import load_project  # noqa: E402
from vigil.schemas.codec import Codec  # noqa: E402
from vigil.schemas.registry import SchemaStore  # noqa: E402
from vigil.settings import load_settings  # noqa: E402
from vigil.stack.broker import EmbeddedKafka  # noqa: E402
from vigil.streams.config_topics import apply_project  # noqa: E402
from vigil.streams.filters import FilterRunner  # noqa: E402
from vigil.streams.kafka import ensure_topics, producer  # noqa: E402
from vigil.streams.task_kv import TopicStore  # noqa: E402

KEEP_ALL = (
    "def handler(event):\n    return {'matches': "
    "[{'hash': e['hash']} for e in event['request']['body']['events']]}\n"
)
SLEEPY = "import time\n" + KEEP_ALL.replace("):\n", "):\n    time.sleep(2)\n", 1)
BATCHES = 30
SPACING_S = 0.25  # a batch every 250 ms: within what one lane filters (about 10/s here)


def write_project(root: Path) -> None:
    for folder in ("monitors", "channels", "filters"):
        (root / folder).mkdir(parents=True)
    (root / "vigil.yaml").write_text(NETWORK)
    (root / "channels" / "ops.yaml").write_text(CHANNEL)
    for name, code in (("fast", KEEP_ALL), ("sleepy", SLEEPY)):
        (root / "filters" / f"{name}.py").write_text(code)
        (root / "monitors" / f"{name}.yaml").write_text(
            f"name: {name}\nnetwork: mainnet\naddresses: ['{USDT}']\nchannels: [ops]\n"
            f"filter: ../filters/{name}.py\n"
        )


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * share) - 1)]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        broker = EmbeddedKafka(load_settings(data_dir=root / "broker"))
        bootstrap = broker.start()
        try:
            write_project(root / "project")
            settings = load_settings(
                data_dir=root / "data", project_dir=root / "project", kafka_bootstrap=bootstrap
            )
            ensure_topics(settings, bootstrap)
            codec = Codec(SchemaStore())
            apply_project(settings, bootstrap, codec, load_project(settings.project_dir))
            store = TopicStore(settings, bootstrap, max_items=10)
            runner = FilterRunner(settings, bootstrap, codec, store)
            runner_thread = threading.Thread(target=runner.run, daemon=True)
            runner_thread.start()
            source = settings.topic("monitor.filter-requests")
            sink = producer(settings, bootstrap, linger_ms=0)
            out = KafkaConsumer(
                settings.topic("monitor.match-batches"),
                bootstrap_servers=bootstrap,
                auto_offset_reset="latest",
                fetch_max_wait_ms=10,
            )
            out.poll(timeout_ms=1000)  # joined and positioned before the first batch

            def send(record: dict[str, Any]) -> None:
                value = codec.encode(source, "MatchBatch", record)
                sink.send(source, key=record["monitorId"].encode(), value=value).get(30)

            def measure(first_block: int, busy: bool) -> list[float]:
                sent: dict[str, float] = {}
                got: dict[str, float] = {}
                for n in range(BATCHES):
                    if busy:  # the sleeper's lane never idles: a batch per fast batch
                        send(batch("sleepy", 1, 900_000 + first_block + n))
                    record = batch("fast", 1, first_block + n)
                    sent[record["id"]] = time.time()
                    send(record)
                    for records in out.poll(timeout_ms=int(SPACING_S * 1000)).values():
                        for r in records:
                            got[codec.decode(r.value, "MatchBatch")["id"]] = r.timestamp / 1000
                deadline = time.time() + 60
                while not set(sent) <= set(got) and time.time() < deadline:
                    for records in out.poll(timeout_ms=200).values():
                        for r in records:
                            got[codec.decode(r.value, "MatchBatch")["id"]] = r.timestamp / 1000
                return [(got[k] - sent[k]) * 1000 for k in sent]

            measure(1, busy=False)  # warm-up: the lanes' threads, the first sandbox
            alone = measure(1_000, busy=False)
            beside = measure(2_000, busy=True)
            runner.stopping.set()
            runner_thread.join(30)
            sink.close()
            out.close()
            store.close()
        finally:
            broker.stop()
    print(
        f"custom filters: a monitor's batch through its filter, x {BATCHES}, one match each, "
        f"one every {SPACING_S * 1000:.0f} ms"
    )
    print(
        f"  alone (baseline)                       p50 {statistics.median(alone):6.1f} ms, "
        f"p99 {percentile(alone, 0.99):6.1f} ms"
    )
    print(
        f"  while another monitor's filter sleeps 2 s  p50 {statistics.median(beside):6.1f} ms, "
        f"p99 {percentile(beside, 0.99):6.1f} ms  "
        f"({statistics.median(beside) / statistics.median(alone):.2f}x the baseline's p50)"
    )
    print(
        json.dumps(
            {
                "alone_p50_ms": round(statistics.median(alone), 1),
                "alone_p99_ms": round(percentile(alone, 0.99), 1),
                "beside_sleeper_p50_ms": round(statistics.median(beside), 1),
                "beside_sleeper_p99_ms": round(percentile(beside, 0.99), 1),
            }
        )
    )


if __name__ == "__main__":
    main()
