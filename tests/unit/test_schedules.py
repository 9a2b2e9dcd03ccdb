"""Schedules: when tasks are due, as pure functions of a window of time."""

import itertools

import pytest
from pydantic import ValidationError

from vigil.config.models import ScheduleConfig
from vigil.processors.schedules import due, run_id, tick_at

MIN = 60_000
T = 1_700_000_040_000  # a multiple of a minute


def test_every_is_aligned_so_two_starts_are_the_interval_apart() -> None:
    every5 = ScheduleConfig(every="5m")
    assert every5.seconds == 300
    found = due(every5, T - 20 * MIN, T)
    assert all(b - a == 5 * MIN for a, b in itertools.pairwise(found))
    assert found and all(t % (5 * MIN) == 0 for t in found)
    assert due(every5, T, T) == [] and due(every5, T, T - 1) == []
    # windows that meet cover every due time once
    assert due(every5, T - 20 * MIN, T - 10 * MIN) + due(every5, T - 10 * MIN, T) == found


def test_cron_in_utc() -> None:
    quarter = ScheduleConfig(cron="*/15 * * * *")
    found = due(quarter, T - 60 * MIN, T)
    assert len(found) == 4 and all((t // MIN) % 15 == 0 for t in found)


def test_run_ids_and_ticks_are_deterministic() -> None:
    assert run_id("counter", T) == f"schedule:counter:{T}"
    assert tick_at(T, MIN) == T and tick_at(T + MIN - 1, MIN) == T


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "give one of every"),
        ({"every": "5m", "cron": "* * * * *"}, "give one of every"),
        ({"every": "30s"}, "every: at least 1 minute, got 30s"),
        ({"every": "5 minutes"}, "String should match pattern"),
        ({"cron": "every day"}, "cron: not a five-field cron expression"),
    ],
)
def test_schedule_mistakes(fields: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ScheduleConfig(**fields)


def test_at_is_due_once_in_the_window_that_holds_it() -> None:
    once = ScheduleConfig.model_validate({"at": "2026-12-01T09:00:00Z"})
    at = 1_796_115_600_000  # 2026-12-01T09:00:00Z
    assert due(once, at - MIN, at) == [at] and due(once, at, at + MIN) == []
    assert due(once, at - 2 * MIN, at - MIN) == []
    with pytest.raises(ValueError, match="give one of every"):
        ScheduleConfig.model_validate({"at": "2026-12-01T09:00:00Z", "every": "5m"})
    with pytest.raises(ValueError, match="timezone"):
        ScheduleConfig.model_validate({"at": "2026-12-01T09:00:00"})
