"""Task runs: runs/s and call→handler-start latency of a trivial task through the sandboxed
runner (process, working directory, limits, the per-run API, the record), against a bare
``subprocess`` spawn of the same Python measured in the same run (the floor of any
process-per-run design). Run with ``make bench``."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vigil.connectors.tasks.kv import LocalApi  # noqa: E402
from vigil.connectors.tasks.runner import Limits, run  # noqa: E402

RUNS = 40
TASK = b"import time\ndef handler(event, context):\n    return time.time()\n"


def main() -> None:
    bare = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-I", "-c", "pass"], check=True)
        bare.append(time.perf_counter() - started)
    latencies, totals = [], []
    for _ in range(RUNS):
        called = time.time()
        started = time.perf_counter()
        record = run({"main.py": TASK}, {"request": {"body": {}}}, LocalApi(), Limits(timeout=30))
        totals.append(time.perf_counter() - started)
        assert record.status == "success", record
        latencies.append((float(record.result) - called) * 1000)
    latencies.sort()
    bare_rate, rate = 1 / statistics.mean(bare), 1 / statistics.mean(totals)
    print(f"task runs, a trivial task x {RUNS}, one at a time")
    print(f"  bare subprocess spawn (baseline)   {bare_rate:>7.1f} runs/s")
    print(f"  sandboxed run, record kept         {rate:>7.1f} runs/s  ({rate / bare_rate:.2f}x)")
    print(
        f"  call → handler start               p50 {statistics.median(latencies):.1f} ms, "
        f"p99 {latencies[int(len(latencies) * 0.99) - 1]:.1f} ms"
    )


if __name__ == "__main__":
    main()
