"""The tasks' key-value store's rules, on an injected clock."""

import pytest

from vigil.connectors.tasks.kv import MemoryStore
from vigil.testing import ManualClock

DAY = 24 * 3600


def test_keys_values_and_the_item_limit() -> None:
    store = MemoryStore(max_items=2, clock=ManualClock())
    store.put("a", "1")
    store.put("b", "x" * 300 * 1024)  # 300 KB exactly is allowed
    assert store.get("a") == "1" and store.get("missing") is None
    with pytest.raises(ValueError, match="holds its limit of 2 items"):
        store.put("c", "3")
    store.put("a", "again")  # replacing an item is not a new one
    store.delete("b")
    store.put("c", "3")
    with pytest.raises(ValueError, match=r"value: at most 307200 bytes \(300 KB\), got 307201"):
        store.put("a", "x" * (300 * 1024 + 1))
    with pytest.raises(ValueError, match="key: expected 1 to 1024 bytes, got 1025"):
        store.put("k" * 1025, "v")
    with pytest.raises(ValueError, match="key: expected 1 to 1024 bytes, got 0"):
        store.get("")


def test_items_expire_90_days_after_their_last_update() -> None:
    clock = ManualClock()
    store = MemoryStore(max_items=1, clock=clock)
    store.put("a", "1")
    clock.advance(89 * DAY)
    store.put("a", "2")  # an update restarts the 90 days
    clock.advance(89 * DAY)
    assert store.get("a") == "2"
    clock.advance(2 * DAY)
    assert store.get("a") is None
    store.put("b", "1")  # the expired item no longer counts against the limit
    clock.advance(91 * DAY)
    assert store.sweep() == 1 and store.items == {}


def test_a_failed_write_leaves_the_store_as_it_was() -> None:
    class Failing(MemoryStore):
        def persist(self, key: str, item: tuple[str, int] | None) -> None:
            raise OSError("broker away")

    store = Failing(clock=ManualClock())
    with pytest.raises(OSError):
        store.put("a", "1")
    assert store.items == {}
