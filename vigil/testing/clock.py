"""A clock tests set and advance by hand, for anything that takes a ``vigil.clock.Clock``."""

from __future__ import annotations

from vigil.clock import Clock


class ManualClock(Clock):
    """Stands still at ``start`` (seconds since the epoch) until moved."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds

    def set(self, at: float) -> None:
        self._now = at
