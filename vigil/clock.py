"""Wall-clock time, injected (STYLE habit 8): components take a ``Clock``; tests pass
``vigil.testing.ManualClock`` and decide what time it is.

Only record times (``at`` stamps, signing timestamps, token windows) go through a Clock;
timeouts and back-off deadlines use ``time.monotonic`` where they are, as they measure
durations on this machine rather than say when something happened.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


class Clock:
    """The system clock."""

    def time(self) -> float:
        """Seconds since the Unix epoch."""
        return time.time()

    def ms(self) -> int:
        """Milliseconds since the Unix epoch: the ``at`` of every record vigil writes."""
        return int(self.time() * 1000)

    def now(self) -> datetime:
        """The time as a timezone-aware UTC datetime."""
        return datetime.fromtimestamp(self.time(), UTC)


SYSTEM = Clock()
