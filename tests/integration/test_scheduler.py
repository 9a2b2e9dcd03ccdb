"""The scheduler on a real broker: ticks on their topic, and the runs due in each tick's
window requested under deterministic run ids."""

import threading
import time
from pathlib import Path

import pytest

from tests.helpers import read_topic
from tests.unit.test_task_config import with_task
from vigil.config.loader import load_project
from vigil.schemas.codec import Codec
from vigil.schemas.registry import SchemaStore
from vigil.settings import Settings, load_settings
from vigil.streams.config_topics import apply_project
from vigil.streams.kafka import ensure_topics, producer
from vigil.streams.scheduler import Scheduler, Ticker

pytestmark = pytest.mark.integration
MIN = 60_000
T = 1_700_000_040_000


def test_ticks_become_requests_for_the_runs_due(
    settings: Settings, kafka: str, tmp_path: Path
) -> None:
    ensure_topics(settings, kafka)
    codec = Codec(SchemaStore())
    root = with_task(tmp_path, "name: counter\ncode: count.py\nschedule: {every: 5m}\n")
    (root / "tasks" / "hourly.yaml").write_text(
        "name: hourly\ncode: count.py\nschedule: {cron: '0 * * * *'}\n"
    )
    (root / "tasks" / "idle.yaml").write_text("name: idle\ncode: count.py\n")
    apply_project(settings, kafka, codec, load_project(root))
    scheduler = Scheduler(settings, kafka, codec)
    sink = producer(settings, kafka)
    scheduler.on_tick(sink, T, 60 * MIN)  # an hour's window
    scheduler.on_tick(sink, T, 60 * MIN)  # the same tick again: the same run ids
    sink.flush()
    sink.close()
    requests = read_topic(settings, codec, kafka, "tasks.requests", "TaskRequest")
    ids = sorted({r["runId"] for r in requests})
    first = ((T - 60 * MIN) // (5 * MIN) + 1) * 5 * MIN  # multiples of 5 minutes
    every5 = [f"schedule:count:{t}" for t in range(first, T + 1, 5 * MIN)]
    assert len(every5) == 12
    hourly = [f"schedule:hourly:{(T // (60 * MIN)) * 60 * MIN}"]
    assert ids == sorted(every5 + hourly)
    assert len(requests) == 2 * len(ids)  # asked twice; the runner runs each id once
    assert {r["trigger"] for r in requests} == {"schedule"}


def test_the_ticker_ticks_on_multiples_of_its_interval(settings: Settings, kafka: str) -> None:
    ensure_topics(settings, kafka)
    codec = Codec(SchemaStore())
    fast = load_settings(**{**settings.model_dump(), "tick_interval": 1.0})
    ticker = Ticker(fast, kafka, codec)
    thread = threading.Thread(target=ticker.run, daemon=True)
    thread.start()
    time.sleep(3.5)  # three or so ticks; read once the ticker stopped (a reader waits for quiet)
    ticker.stopping.set()
    thread.join(5)
    found = read_topic(fast, codec, kafka, "scheduler.ticks", "Tick")
    assert len(found) >= 2
    stamps = [int(t["at"].timestamp() * 1000) for t in found]  # type: ignore[attr-defined]
    assert all(s % 1000 == 0 for s in stamps) and stamps == sorted(stamps)
    assert {t["intervalMs"] for t in found} == {1000}
