"""Users' SQL runs under limits it cannot lift, on a client of its own: a query that would
run forever stops at its time limit, and the history sink's writes go on meanwhile."""

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import AUTH, ApiServer, api_app
from vigil.connectors.history.query import connect
from vigil.settings import load_settings

pytestmark = pytest.mark.integration


def test_a_runaway_query_stops_at_its_limit_and_never_holds_up_history(
    tmp_path: Path, chdb_path: Path, prefix: str
) -> None:
    settings = load_settings(
        data_dir=tmp_path, sql_max_execution_time=1.5, sql_max_result_rows=1000
    )
    writer = connect(f"chdb://{chdb_path}", prefix)  # as the history sink's client
    writer.command("CREATE TABLE IF NOT EXISTS t (x UInt64) ENGINE = MergeTree ORDER BY x")
    queries = connect(f"chdb://{chdb_path}", prefix)  # the API's own client
    app = api_app(clickhouse=queries, limits=settings.sql_limits)
    writes: list[float] = []

    def write_while_the_query_runs() -> None:
        for i in range(20):
            started = time.monotonic()
            writer.insert("t", [[i]], column_names=["x"])
            writes.append(time.monotonic() - started)
            time.sleep(0.05)

    with ApiServer(app) as api:

        def sql(query: str) -> Any:
            return httpx.post(f"{api.url}/sql", json={"query": query}, headers=AUTH, timeout=30)

        writing = threading.Thread(target=write_while_the_query_runs)
        started = time.monotonic()
        writing.start()
        runaway = sql("SELECT count() FROM system.numbers")
        took = time.monotonic() - started
        writing.join()
        lifted = sql("SELECT count() FROM system.numbers SETTINGS max_execution_time = 0")
        too_many = sql("SELECT number FROM system.numbers LIMIT 5000")
        fine = sql("SELECT count() FROM t")
    assert runaway.status_code == 400 and "Timeout exceeded" in runaway.json()["detail"]
    assert 1.4 < took < 10
    assert len(writes) == 20 and max(writes) < 1.0  # history was never waiting on the query
    assert lifted.status_code == 400 and "readonly" in lifted.json()["detail"]
    assert too_many.status_code == 400 and "max rows" in too_many.json()["detail"]
    assert fine.status_code == 200 and fine.json()["rows"] == [[20]]
