"""Tasks through the stack: `vigil tasks run NAME` → tasks.requests → the runner's sandbox →
tasks.runs and ClickHouse; the store outlives runs; a request delivered again (even to a
restarted runner) makes no second run."""

import json
import os
import subprocess
import sys
import time

import pytest
from kafka import KafkaConsumer, TopicPartition

from tests.e2e.stack import SECRET, Running
from vigil.schemas.catalogue import INTERNAL_TOPICS
from vigil.stack import process
from vigil.streams.kafka import producer
from vigil.testing import wait_for

pytestmark = pytest.mark.e2e


def run_task(running: Running, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **running.stack.settings.child_env()}
    env["VIGIL_KAFKA_BOOTSTRAP"] = running.stack.bootstrap
    return subprocess.run(
        [sys.executable, "-m", "vigil", "tasks", "run", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def test_a_task_runs_through_the_stack_once_per_request(running: Running) -> None:
    first = run_task(running, "counter", "--payload", '{"n": 1}', "--format", "json")
    assert first.returncode == 0, first.stderr
    record = json.loads(first.stdout)
    assert record["status"] == "success", record
    assert json.loads(record["result"]) == {"count": 1, "trigger": "manual"}
    assert record["logs"] == "run 1 with {'n': 1} key [secret hook] ['hook']\n"
    assert SECRET not in first.stdout
    second = json.loads(run_task(running, "counter", "--format", "json").stdout)
    assert json.loads(second["result"])["count"] == 2  # the store outlives the run
    unknown = run_task(running, "nope")
    assert unknown.returncode == 2 and "no applied task 'nope'; applied: counter" in unknown.stderr

    query = (
        "SELECT run_id, status FROM task_runs FINAL WHERE task_id = 'counter' ORDER BY started_at"
    )
    rows = wait_for(lambda: r if len(r := running.sql(query)) == 2 else None, 60, "2 runs")
    assert [status for _, status in rows] == ["success", "success"]

    # the first request delivered again, to the runner and to a restarted one: no new run
    settings = running.stack.settings
    topic = settings.topic("tasks.requests")
    reader = KafkaConsumer(
        topic,
        bootstrap_servers=running.stack.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=3000,
    )
    requests = [(r.key, r.value) for r in reader]
    reader.close()
    assert len(requests) == 2
    sink = producer(settings, running.stack.bootstrap)
    sink.send(topic, key=requests[0][0], value=requests[0][1]).get(30)
    process.stop(running.stack.children.pop("runner"), "runner")
    running.stack.start_role("runner")
    sink.send(topic, key=requests[0][0], value=requests[0][1]).get(30)
    sink.close()
    log = running.stack.logs / "runner.log"
    taken = f"task run {requests[0][0].decode()} was taken before: not run again"
    wait_for(lambda: log.read_text().count(taken) >= 1, 60, "the runner to skip the repeat")
    time.sleep(2)
    assert len(running.sql(query)) == 2
    third = json.loads(run_task(running, "counter", "--format", "json").stdout)
    assert json.loads(third["result"])["count"] == 3


def stored_anywhere(running: Running, needle: str) -> list[str]:
    """Where ``needle`` is kept: the stack's topics (raw bytes), its ClickHouse tables and its
    processes' logs."""
    settings = running.stack.settings
    found = []
    reader = KafkaConsumer(bootstrap_servers=running.stack.bootstrap)
    topics = sorted(t for t in reader.topics() if t.startswith(settings.topic_prefix + "."))
    reader.close()
    assert {settings.topic(t) for t in ("tasks.runs", *INTERNAL_TOPICS)} <= set(topics)
    for topic in topics:  # to each partition's end as it is now (ticks keep coming)
        reader = KafkaConsumer(
            bootstrap_servers=running.stack.bootstrap,
            max_partition_fetch_bytes=16 * 1024 * 1024,
        )
        parts = [TopicPartition(topic, p) for p in reader.partitions_for_topic(topic) or ()]
        reader.assign(parts)
        reader.seek_to_beginning(*parts)
        end = reader.end_offsets(parts)
        while any(reader.position(tp) < end[tp] for tp in parts):
            for tp, records in reader.poll(timeout_ms=500).items():
                found += [
                    f"{topic}@{r.offset}"
                    for r in records
                    if r.offset < end[tp] and needle.encode() in (r.value or b"")
                ]
        reader.close()
    for [table] in running.sql("SELECT name FROM system.tables WHERE database = currentDatabase()"):
        rows = running.sql(f"SELECT * FROM {table}")
        found += [f"table {table}" for row in rows if needle in json.dumps(row, default=str)]
    for log in (settings.data_dir / "logs").glob("*.log"):
        if needle in log.read_text(errors="replace"):
            found.append(str(log))
    return found


def test_a_secret_a_task_printed_is_stored_nowhere(running: Running) -> None:
    printed = run_task(running, "counter", "--payload", '{"n": 1}', "--format", "json")
    assert "[secret hook]" in json.loads(printed.stdout)["logs"]  # the task did print it
    done = "SELECT count() FROM task_runs FINAL WHERE status = 'success'"
    wait_for(lambda: running.sql(done)[0][0] == 1, 60, "the run in history")
    assert stored_anywhere(running, SECRET) == []
    marked = stored_anywhere(running, "[secret hook]")  # the search does see the run's logs
    runs = running.stack.settings.topic("tasks.runs")
    assert any(where.startswith(runs) for where in marked)
    assert "table task_runs" in marked
