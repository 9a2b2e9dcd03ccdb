"""The tasks' store on its compacted topic: what one store wrote, the next one reads."""

import pytest

from vigil.settings import Settings
from vigil.streams.kafka import ensure_topics
from vigil.streams.task_kv import TopicStore
from vigil.testing import ManualClock, wait_for

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


def test_two_stores_see_each_others_writes(settings: Settings, kafka: str) -> None:
    ensure_topics(settings, kafka)
    runner = TopicStore(settings, kafka, max_items=10)
    for n in range(5):
        runner.put("count", str(n))  # history the other store reads, then follows past
    worker = TopicStore(settings, kafka, max_items=10)
    try:
        assert worker.get("count") == "4"
        runner.put("count", "5")
        wait_for(lambda: worker.get("count") == "5", 10, "the other store to follow")
        worker.put("seen-by", "worker")
        wait_for(lambda: runner.get("seen-by") == "worker", 10, "the runner to follow")
        runner.delete("seen-by")
        wait_for(lambda: worker.get("seen-by") is None, 10, "the delete to follow")
        assert worker.get("count") == "5"  # never an older value again
    finally:
        runner.close()
        worker.close()
