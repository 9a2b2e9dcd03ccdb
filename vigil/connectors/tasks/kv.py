"""The key-value store's rules (the hosted service's): string keys up to 1 KB, string values
up to 300 KB, at most ``max_items`` items, each gone 90 days after its last update."""

from __future__ import annotations

from dataclasses import dataclass, field

from vigil.clock import SYSTEM, Clock

MAX_KEY_BYTES = 1024
MAX_VALUE_BYTES = 300 * 1024
EXPIRY_MS = 90 * 24 * 3600 * 1000


def check_key(key: str) -> str:
    if not key or len(key.encode()) > MAX_KEY_BYTES:
        raise ValueError(f"key: expected 1 to {MAX_KEY_BYTES} bytes, got {len(key.encode())}")
    return key


def check_value(value: str) -> str:
    if len(value.encode()) > MAX_VALUE_BYTES:
        raise ValueError(
            f"value: at most {MAX_VALUE_BYTES} bytes (300 KB), got {len(value.encode())}"
        )
    return value


@dataclass
class MemoryStore:
    """The store's rules over a map; ``persist`` is where a durable store writes first (a
    failed write leaves the map as it was). As is, it keeps nothing after the process."""

    max_items: int = 1000
    clock: Clock = SYSTEM
    items: dict[str, tuple[str, int]] = field(default_factory=dict)  # key → (value, updated)

    def get(self, key: str) -> str | None:
        found = self.items.get(check_key(key))
        if found is None:
            return None
        if self._expired(found[1]):
            self.delete(key)
            return None
        return found[0]

    def put(self, key: str, value: str) -> None:
        check_key(key)
        check_value(value)
        live = sum(1 for k, (_, at) in self.items.items() if k != key and not self._expired(at))
        if key not in self.items and live >= self.max_items:
            raise ValueError(f"the store holds its limit of {self.max_items} items")
        now = self.clock.ms()
        self.persist(key, (value, now))
        self.items[key] = (value, now)

    def delete(self, key: str) -> None:
        if check_key(key) in self.items:
            self.persist(key, None)
            self.items.pop(key, None)

    def sweep(self) -> int:
        """Drop the items past their 90 days; returns how many."""
        gone = [k for k, (_, at) in self.items.items() if self._expired(at)]
        for key in gone:
            self.delete(key)
        return len(gone)

    def persist(self, key: str, item: tuple[str, int] | None) -> None:
        """Keep ``item`` for ``key`` (None: its deletion) before the map changes."""

    def _expired(self, updated_ms: int) -> bool:
        return self.clock.ms() - updated_ms > EXPIRY_MS


class StoreApi:
    """A run's API over ``store``; notifications are refused (a subclass sends them)."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.sent: list[dict[str, object]] = []

    def kv_get(self, key: str) -> str | None:
        return self.store.get(key)

    def kv_put(self, key: str, value: str) -> None:
        self.store.put(key, value)

    def kv_delete(self, key: str) -> None:
        self.store.delete(key)

    def notify(self, alias: str, subject: str, message: str) -> str | None:
        raise ValueError("context.notify is not available here")

    def metric(self, alias: str, name: str, value: float) -> str | None:
        raise ValueError("context.notify is not available here")

    def relayer(self, call: str, body: dict[str, object]) -> object:
        raise ValueError("context.relayer is not available here (a run in the stack has it)")


class LocalApi(StoreApi):
    """A run's API without the stack: a memory store for the run, and notifications
    recorded (shown with the run's record) instead of sent."""

    def __init__(self) -> None:
        super().__init__(MemoryStore())

    def notify(self, alias: str, subject: str, message: str) -> str | None:
        self.sent.append({"alias": alias, "subject": subject, "message": message})
        return None

    def metric(self, alias: str, name: str, value: float) -> str | None:
        self.sent.append({"alias": alias, "metric": name, "value": value})
        return None
