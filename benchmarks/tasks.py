"""Task runs: runs/s and latency of a trivial task, in three stages, each measured in the
same run:
- a bare ``subprocess`` spawn of the same Python (the floor of any process-per-run design);
- the sandboxed runner called directly (process, working directory, limits, the per-run API,
  the record): runs/s and call → handler start;
- through the stack's path: a request on ``tasks.requests`` (a real KRaft broker) → the
  runner (``streams.tasks.TaskRunner``) → handler start, and → the final record on
  ``tasks.runs``.
Run with ``make bench``; the last line is JSON."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vigil.config.loader import LoadedTask  # noqa: E402
from vigil.config.models import TaskConfig  # noqa: E402
from vigil.config.state import Change, task_spec  # noqa: E402
from vigil.connectors.tasks.kv import LocalApi  # noqa: E402
from vigil.connectors.tasks.runner import Limits, run  # noqa: E402
from vigil.schemas.codec import Codec  # noqa: E402
from vigil.schemas.records import task_request  # noqa: E402
from vigil.schemas.registry import SchemaStore  # noqa: E402
from vigil.settings import load_settings  # noqa: E402
from vigil.stack.broker import EmbeddedKafka  # noqa: E402
from vigil.streams.config_topics import publish  # noqa: E402
from vigil.streams.kafka import ensure_topics, producer  # noqa: E402
from vigil.streams.tasks import RunWatch, TaskRunner  # noqa: E402

RUNS = 40
TASK = b"import time\ndef handler(event, context):\n    return time.time()\n"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * share) - 1)]


def bare_spawns() -> list[float]:
    took = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-I", "-c", "pass"], check=True)
        took.append(time.perf_counter() - started)
    return took


def direct_runs() -> tuple[list[float], list[float]]:
    latencies, totals = [], []
    for _ in range(RUNS):
        called = time.time()
        started = time.perf_counter()
        record = run({"main.py": TASK}, {"request": {"body": {}}}, LocalApi(), Limits(timeout=30))
        totals.append(time.perf_counter() - started)
        assert record.status == "success", record
        latencies.append((float(record.result) - called) * 1000)
    return latencies, totals


def stack_runs(root: Path) -> tuple[list[float], list[float]]:
    """Requests sent one at a time; (request → handler start, request → final record) ms."""
    broker = EmbeddedKafka(load_settings(data_dir=root / "broker"))
    bootstrap = broker.start()
    try:
        settings = load_settings(data_dir=root / "data", kafka_bootstrap=bootstrap)
        ensure_topics(settings, bootstrap)
        codec = Codec(SchemaStore())
        task = LoadedTask(
            "trivial", TaskConfig(name="trivial", code="main.py"), {"main.py": TASK}, root
        )
        publish(
            settings,
            bootstrap,
            codec,
            [Change("task", "trivial", "upsert", task_spec(task), "bench")],
        )
        runner = TaskRunner(settings, bootstrap, codec)
        thread = threading.Thread(target=runner.run, daemon=True)
        thread.start()
        topic = settings.topic("tasks.requests")
        sink = producer(settings, bootstrap, linger_ms=0)
        starts, ends = [], []
        for n in range(RUNS + 3):  # the first three warm the runner's group up
            watch = RunWatch(settings, bootstrap, codec)
            run_id = f"bench:{n}"
            sent = time.time()
            value = codec.encode(
                topic, "TaskRequest", task_request(run_id, "trivial", "manual", {}, 0)
            )
            sink.send(topic, key=run_id.encode(), value=value).get(30)
            record = watch.wait(run_id, 60)
            finished = time.time()
            assert record is not None and record["status"] == "success", record
            if n >= 3:
                starts.append((float(json.loads(record["result"])) - sent) * 1000)
                ends.append((finished - sent) * 1000)
        runner.stopping.set()
        thread.join(10)
        sink.close()
        return starts, ends
    finally:
        broker.stop()


def main() -> None:
    bare = bare_spawns()
    latencies, totals = direct_runs()
    with tempfile.TemporaryDirectory() as tmp:
        starts, ends = stack_runs(Path(tmp))
    bare_rate, rate = 1 / statistics.mean(bare), 1 / statistics.mean(totals)
    stack_rate = 1000 / statistics.mean(ends)
    print(f"task runs, a trivial task x {RUNS}, one at a time")
    print(f"  bare subprocess spawn (baseline)   {bare_rate:>7.1f} runs/s")
    print(f"  sandboxed run, called directly     {rate:>7.1f} runs/s  ({rate / bare_rate:.2f}x)")
    print(
        f"    call → handler start             p50 {statistics.median(latencies):.1f} ms, "
        f"p99 {percentile(latencies, 0.99):.1f} ms"
    )
    print(
        f"  through the broker and the runner  {stack_rate:>7.1f} runs/s  "
        f"({stack_rate / bare_rate:.2f}x)"
    )
    print(
        f"    request → handler start          p50 {statistics.median(starts):.1f} ms, "
        f"p99 {percentile(starts, 0.99):.1f} ms"
    )
    print(
        f"    request → final record           p50 {statistics.median(ends):.1f} ms, "
        f"p99 {percentile(ends, 0.99):.1f} ms"
    )
    figures = {
        "bare_runs_s": round(bare_rate, 1),
        "direct_runs_s": round(rate, 1),
        "direct_ratio": round(rate / bare_rate, 2),
        "stack_runs_s": round(stack_rate, 1),
        "trigger_to_start_p50_ms": round(statistics.median(starts), 1),
        "trigger_to_start_p99_ms": round(percentile(starts, 0.99), 1),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
