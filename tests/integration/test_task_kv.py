"""The tasks' store on its compacted topic: what one store wrote, the next one reads."""

import pytest

from vigil.settings import Settings
from vigil.streams.kafka import ensure_topics
from vigil.streams.task_kv import TopicStore
from vigil.testing import ManualClock

pytestmark = pytest.mark.integration


def test_items_outlive_the_store_and_deletes_stay_deleted(settings: Settings, kafka: str) -> None:
    ensure_topics(settings, kafka)
    clock = ManualClock()
    first = TopicStore(settings, kafka, max_items=10, clock=clock)
    first.put("counter", "41")
    first.put("counter", "42")
    first.put("temporary", "x")
    first.delete("temporary")
    first.close()
    again = TopicStore(settings, kafka, max_items=10, clock=clock)
    assert again.get("counter") == "42" and again.get("temporary") is None
    clock.advance(91 * 24 * 3600)
    assert again.sweep() == 1
    again.close()
    assert TopicStore(settings, kafka, max_items=10, clock=clock).items == {}
