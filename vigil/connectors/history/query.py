"""Read-only SQL over the history, through whichever process owns ClickHouse."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import clickhouse_connect

from vigil.config.urls import redact
from vigil.errors import HistoryError


@dataclass(frozen=True)
class Result:
    columns: list[str]
    rows: list[list[Any]]


def connect(dsn: str, database: str | None = None) -> Any:
    """A client for ``dsn`` (``chdb://path`` or ``http(s)://...``) in ``database`` (made if new)."""
    try:
        if database is None:
            return clickhouse_connect.get_client(dsn=dsn)
        clickhouse_connect.get_client(dsn=dsn).command(f"CREATE DATABASE IF NOT EXISTS {database}")
        return clickhouse_connect.get_client(dsn=dsn, database=database)
    except Exception as exc:  # several driver error types
        shown = redact(dsn)  # a DSN may carry the password
        raise HistoryError(
            f"cannot open ClickHouse at {shown}: {str(exc).replace(dsn, shown)}"
        ) from exc


def run_readonly(
    client: Any,
    sql: str,
    lock: threading.Lock | None = None,
    limits: Mapping[str, Any] | None = None,
) -> Result:
    """Run ``sql`` with ClickHouse's readonly=1: any write is refused by the engine itself,
    and so is any change of ``limits`` (time, memory, rows) from inside the query."""
    settings = {**(limits or {}), "readonly": 1}
    try:
        if lock is not None:
            with lock:
                result = client.query(sql, settings=settings)
        else:
            result = client.query(sql, settings=settings)
    except Exception as exc:  # the driver's errors carry ClickHouse's message
        raise HistoryError(str(exc).strip().splitlines()[0][:500]) from exc
    return Result(list(result.column_names), [list(r) for r in result.result_rows])
