"""The scheduler on a real broker: ticks on their topic, and the runs due in each tick's
window requested under deterministic run ids."""

import itertools
import sys
import threading
import traceback
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
from vigil.testing import ManualClock, wait_for

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


def test_one_ticker_leads_and_a_restart_neither_skips_nor_repeats_a_tick(
    settings: Settings, kafka: str
) -> None:
    ensure_topics(settings, kafka)
    codec = Codec(SchemaStore())
    minute = load_settings(**{**settings.model_dump(), "tick_interval": 60.0})
    start = 1_800_000_000_000 - 60_000
    clock = ManualClock(1_800_000_000.0 + 1)  # a second past a whole minute
    tickers = [Ticker(minute, kafka, codec, clock) for _ in range(2)]
    threads = [threading.Thread(target=t.run, daemon=True) for t in tickers]
    for thread in threads:
        thread.start()  # each in a thread of its own, as each runner runs one

    def leading() -> list[Ticker]:
        return [t for t in tickers if t.last is not None and not t.stopping.is_set()]

    def ticked(at: int) -> Ticker | None:
        found = [t for t in leading() if t.last == at]
        return found[0] if found else None

    try:
        first = wait_for(lambda: ticked(start + 60_000), 60, "a leader's first tick")
        for n in (2, 3):  # two simulated minutes
            clock.advance(60)
            assert wait_for(lambda n=n: ticked(start + n * 60_000), 30, f"tick {n}") is first
            assert len(leading()) == 1
        first.stopping.set()  # the leader goes away, and 2.5 minutes pass without one
        threads[tickers.index(first)].join(10)
        clock.advance(150)
        try:
            second = wait_for(lambda: ticked(start + 5 * 60_000), 60, "the other to take over")
        except AssertionError as exc:
            stacks = [
                "".join(traceback.format_stack(sys._current_frames()[t.ident]))
                for t in threads
                if t.is_alive() and t.ident is not None
            ]
            states = [_state(t) for t in tickers]
            raise AssertionError("\n".join([str(exc), *states, *stacks])) from None
        assert second is not first
        for n in (6, 7):
            clock.advance(60)
            assert wait_for(lambda n=n: ticked(start + n * 60_000), 30, f"tick {n}") is second
    finally:
        for ticker in tickers:
            ticker.stopping.set()
        for thread in threads:
            thread.join(10)
    ticks = read_topic(minute, codec, kafka, "scheduler.ticks", "Tick")
    stamps = [int(t["at"].timestamp() * 1000) for t in ticks]  # type: ignore[attr-defined]
    windows = [(at - int(t["intervalMs"]), at) for t, at in zip(ticks, stamps, strict=True)]
    assert windows[0][0] == start and windows[-1][1] == start + 7 * 60_000
    # the windows tile the simulated minutes: each starts where the one before ended
    assert all(prev[1] == nxt[0] for prev, nxt in itertools.pairwise(windows)), windows
    assert sorted(set(stamps)) == stamps  # no tick twice
    # the new leader's first tick covers the two minutes without one
    assert [b - a for a, b in windows] == [60_000] * 3 + [120_000] + [60_000] * 2


def _state(ticker: Ticker) -> str:
    """What a ticker knew of the claims and ticks, for a failure's message."""
    return (
        f"ticker {ticker.id}: stopping={ticker.stopping.is_set()} last={ticker.last} "
        f"caught_up={ticker.caught_up} epoch={ticker.epoch} leader={ticker.leader} "
        f"claimed_at={ticker.claimed_at} claiming={ticker.claiming} seen={ticker.last_seen}"
    )
