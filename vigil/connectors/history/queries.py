"""Ready-made queries over the history: named, documented, with typed parameters, run under
the same read-only limits as users' own SQL (`vigil queries`, ``GET /queries/{name}``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from vigil.errors import ConfigError, NotFound

MONITOR_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")


@dataclass(frozen=True)
class Param:
    """One parameter: an integer within bounds, or an id matching ``MONITOR_ID``."""

    name: str
    doc: str
    default: int | str | None
    low: int = 1
    high: int = 10_000

    def value(self, raw: str | None) -> int | str | None:
        if raw is None or raw == "":
            return self.default
        if isinstance(self.default, int):
            if not raw.lstrip("-").isdigit() or not self.low <= int(raw) <= self.high:
                raise ConfigError(
                    f"expected a whole number from {self.low} to {self.high}, got {raw!r}",
                    field=self.name,
                )
            return int(raw)
        if not MONITOR_ID.match(raw):
            raise ConfigError(f"expected an id like usdt-transfers, got {raw!r}", field=self.name)
        return raw


@dataclass(frozen=True)
class Query:
    name: str
    doc: str
    sql: str  # {param} places: integers as numbers, ids quoted (both checked first)
    params: tuple[Param, ...] = field(default_factory=tuple)

    def render(self, raw: dict[str, str]) -> str:
        """The SQL with checked parameters; an unknown one is a ConfigError naming it."""
        known = {p.name: p for p in self.params}
        for name in raw:
            if name not in known:
                raise ConfigError(
                    f"query {self.name!r} has no parameter {name!r}; it takes: "
                    f"{', '.join(known) or 'none'}"
                )
        values = {name: p.value(raw.get(name)) for name, p in known.items()}
        monitor = values.get("monitor")
        where = f"AND monitor_id = '{monitor}'" if monitor else ""
        return self.sql.format(**values, monitor_filter=where)


LIMIT = Param("limit", "rows at most", 50)
HOURS = Param("hours", "how far back, in hours", 24, high=24 * 365)
MONITOR = Param("monitor", "only this monitor id", None)

QUERIES: dict[str, Query] = {
    q.name: q
    for q in (
        Query(
            "recent-matches",
            "the latest matches, newest first",
            "SELECT monitor_id, monitor_name, network, block_number, transaction_hash, timestamp "
            "FROM matches FINAL WHERE NOT retracted {monitor_filter} "
            "ORDER BY timestamp DESC, block_number DESC LIMIT {limit}",
            (LIMIT, MONITOR),
        ),
        Query(
            "matches-per-monitor",
            "matches per monitor over the last hours (of block time)",
            "SELECT monitor_id, any(monitor_name) AS name, count() AS matches FROM matches FINAL "
            "WHERE NOT retracted AND timestamp > now() - INTERVAL {hours} HOUR "
            "GROUP BY monitor_id ORDER BY matches DESC",
            (HOURS,),
        ),
        Query(
            "failed-deliveries",
            "deliveries that failed after their last retry, newest first",
            "SELECT id, request_id, channel, channel_type, attempts, http_status, error, at "
            "FROM deliveries FINAL WHERE status = 'FAILED' ORDER BY at DESC LIMIT {limit}",
            (LIMIT,),
        ),
        Query(
            "deliveries-by-status",
            "deliveries per channel and status over the last hours",
            "SELECT channel, channel_type, status, count() AS deliveries FROM deliveries FINAL "
            "WHERE at > now() - INTERVAL {hours} HOUR GROUP BY channel, channel_type, status "
            "ORDER BY channel, status",
            (HOURS,),
        ),
        Query(
            "suppressed-by-reason",
            "matches that notified no one, per monitor and reason, over the last hours",
            "SELECT monitor_id, reason, count() AS suppressed FROM suppressed FINAL "
            "WHERE at > now() - INTERVAL {hours} HOUR GROUP BY monitor_id, reason "
            "ORDER BY suppressed DESC",
            (HOURS,),
        ),
    )
}


def ready_query(name: str) -> Query:
    """The query ``name``; an unknown name is a ConfigError listing the known ones."""
    if name not in QUERIES:
        raise NotFound(f"no ready-made query {name!r}; known: {', '.join(QUERIES)}")
    return QUERIES[name]


def deliveries_sql(failed: bool, limit: int) -> str:
    """The latest deliveries (only failed ones if ``failed``), newest first."""
    where = "WHERE status = 'FAILED'" if failed else ""
    return (
        "SELECT id, request_id, channel, channel_type, status, attempts, http_status, error, at "
        f"FROM deliveries FINAL {where} ORDER BY at DESC LIMIT {int(limit)}"
    )
