"""Ready-made queries over the history: one ``sql/NAME.sql`` file each (package data), named,
documented, with typed parameters, run under the same read-only limits as users' own SQL
(`vigil sql --query`, `vigil queries`, ``GET /queries/{name}``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib.resources import files

from vigil.errors import ConfigError, NotFound

ID = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")


@dataclass(frozen=True)
class Param:
    """One parameter: a whole number within bounds, or an id matching ``ID`` ('' = none)."""

    name: str
    kind: str  # int | id
    default: int | str
    doc: str
    low: int = 1
    high: int = 10_000

    def value(self, raw: str | None) -> int | str:
        if raw is None or raw == "":
            return self.default
        if self.kind == "int":
            if not raw.lstrip("-").isdigit() or not self.low <= int(raw) <= self.high:
                raise ConfigError(
                    f"expected a whole number from {self.low} to {self.high}, got {raw!r}",
                    field=self.name,
                )
            return int(raw)
        if not ID.match(raw):
            raise ConfigError(f"expected an id like usdt-transfers, got {raw!r}", field=self.name)
        return raw

    def literal(self, value: int | str) -> str:
        """The value as SQL: a number, or a quoted id (safe: ``ID`` allows no quote)."""
        return str(int(value)) if self.kind == "int" else f"'{value}'"

    @property
    def shown_default(self) -> int | str | None:
        return None if self.default == "" else self.default


@dataclass(frozen=True)
class Query:
    name: str
    doc: str
    sql: str  # {param} places, filled with checked literals
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
        return self.sql.format(**{n: p.literal(p.value(raw.get(n))) for n, p in known.items()})


_PARAM = re.compile(
    r"^-- param (?P<name>[a-z_]+) (?:int (?P<int>\d+) (?P<low>\d+)\.\.(?P<high>\d+)|id '')"
    r": (?P<doc>.+)$"
)


def parse_query(name: str, text: str) -> Query:
    """A query file: ``-- answers: …`` first, then one ``-- param …`` line per parameter
    (``-- param hours int 24 1..8760: doc`` or ``-- param monitor id '': doc``), then SQL."""
    lines = text.strip().splitlines()
    if not lines or not lines[0].startswith("-- answers: "):
        raise ValueError(f"{name}.sql: the first line must be '-- answers: …'")
    params = []
    body = lines[1:]
    while body and body[0].startswith("-- param "):
        found = _PARAM.match(body.pop(0))
        if found is None:
            raise ValueError(f"{name}.sql: a bad '-- param' line")
        if found["int"] is None:
            params.append(Param(found["name"], "id", "", found["doc"]))
        else:
            low, high = int(found["low"]), int(found["high"])
            default = int(found["int"])
            params.append(Param(found["name"], "int", default, found["doc"], low, high))
    return Query(name, lines[0].removeprefix("-- answers: "), "\n".join(body), tuple(params))


def _load() -> dict[str, Query]:
    folder = files("vigil.connectors.history") / "sql"
    found = sorted(
        (f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name[:-4]
    )
    return {
        q.name: q for q in (parse_query(f.name.removesuffix(".sql"), f.read_text()) for f in found)
    }


QUERIES: dict[str, Query] = _load()


def ready_query(name: str) -> Query:
    """The query ``name``; an unknown name is NotFound listing the known ones."""
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
