"""When scheduled tasks are due (SPEC C12 "deferred"): pure functions of a schedule and a
window of time, so the scheduler's decisions replay exactly from its ticks.

- ``every: N``: due at each multiple of N seconds since the epoch, so two starts are N
  apart whatever the ticks' spacing;
- ``cron``: due at each time the five-field expression names (UTC);
- ``at``: due once, in the window that holds that time;
- a due time's run id is ``schedule:<task>:<due ms>``: a tick seen twice, or two tickers,
  ask for the same run, and the runner runs it once.
"""

from __future__ import annotations

from vigil.config.models import ScheduleConfig


def due(schedule: ScheduleConfig, after_ms: int, until_ms: int) -> list[int]:
    """The due times (ms) in ``(after_ms, until_ms]``."""
    if until_ms <= after_ms:
        return []
    if schedule.at is not None:
        once = int(schedule.at.timestamp() * 1000)
        return [once] if after_ms < once <= until_ms else []
    if schedule.every is not None:
        step = schedule.seconds * 1000
        first = (after_ms // step + 1) * step
        return list(range(first, until_ms + 1, step))
    from croniter import croniter

    assert schedule.cron is not None  # the model allows one or the other
    times = croniter(schedule.cron, after_ms / 1000)
    found = []
    while (at := round(times.get_next(float) * 1000)) <= until_ms:
        found.append(at)
    return found


def run_id(task_id: str, due_ms: int) -> str:
    return f"schedule:{task_id}:{due_ms}"


def tick_at(now_ms: int, interval_ms: int) -> int:
    """The latest tick time at or before ``now_ms``: ticks fall on multiples of the interval."""
    return now_ms - now_ms % interval_ms
