"""The ready-made queries on the real engine (chDB) over a history of known rows: each
answer is checked against the same figures worked out in Python."""

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import FIXTURES, vigil_cli
from vigil.connectors.history import rows
from vigil.connectors.history.ddl import migrate
from vigil.connectors.history.queries import QUERIES, parse_query, ready_query
from vigil.connectors.history.query import run_readonly
from vigil.errors import ConfigError

pytestmark = pytest.mark.integration

NOW = int(time.time())  # set again by the history fixture: a suite may run it much later
A, B, C = ("0x" + c * 40 for c in "abc")


def golden(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / "avro" / f"{name}.json").read_text())  # type: ignore[no-any-return]


def _match(monitor: str, n: int, age_s: int, addresses: list[str]) -> list[Any]:
    match = golden("Match")
    match = {
        **match,
        "id": f"{monitor}:{n}",
        "monitor": {**match["monitor"], "id": monitor, "name": monitor.upper()},
        "timestamp": NOW - age_s,
        "matchedAddresses": addresses,
    }
    return rows.match_row(match)


def _delivery(n: int, channel: str, status: str, latency: int, age_s: int = 60) -> list[Any]:
    delivery = golden("Delivery")
    return rows.delivery_row(
        {
            **delivery,
            "id": f"d{n}",
            "channel": channel,
            "status": status,
            "latencyMs": latency,
            "at": (NOW - age_s) * 1000,
        }
    )


def _run(n: int, task: str, status: str, duration: int) -> list[Any]:
    run = golden("TaskRun")
    start = (NOW - 600) * 1000
    return rows.task_run_row(
        {
            **run,
            "runId": f"r{n}",
            "taskId": task,
            "status": status,
            "durationMs": duration,
            "startedAt": start,
            "finishedAt": start + duration,
        }
    )


@pytest.fixture
def history(clickhouse: Any) -> Any:
    global NOW
    NOW = int(time.time())
    migrate(clickhouse)
    day = 86_400
    matches = [
        _match("usdc", 1, 60, [A, B]),
        _match("usdc", 2, 120, [A]),
        _match("usdc", 3, 2 * day, [A]),  # two days ago
        _match("dai", 1, 300, [B, C]),
        _match("dai", 2, 40 * day, [C]),  # past 30 days
    ]
    clickhouse.insert("matches", matches, column_names=rows.MATCH_COLUMNS)
    retracted = [*_match("usdc", 9, 60, [C]), 1]  # an orphaned block's match counts nowhere
    clickhouse.insert("matches", [retracted], column_names=[*rows.MATCH_COLUMNS, "retracted"])
    deliveries = [
        *(_delivery(i, "ops", "SENT", latency) for i, latency in enumerate((100, 200, 300, 400))),
        _delivery(4, "ops", "FAILED", 9000),
        _delivery(5, "pager", "SENT", 50),
        _delivery(6, "ops", "SENT", 5000, age_s=3 * day),  # outside 24 hours
    ]
    clickhouse.insert("deliveries", deliveries, column_names=rows.DELIVERY_COLUMNS)
    runs = [
        _run(1, "counter", "success", 10),
        _run(2, "counter", "success", 30),
        _run(3, "counter", "error", 20),
        _run(4, "sweeper", "timeout", 30_000),
    ]
    clickhouse.insert("task_runs", runs, column_names=rows.TASK_RUN_COLUMNS)
    blocks = []
    for network, last, behind in (("mainnet", 100, 30), ("base", 500, 4)):
        for number in range(last - 2, last + 1):
            block = golden("Block")
            stamp = NOW - behind - (last - number) * 12
            row = rows.block_row(
                {
                    **block,
                    "network": network,
                    "number": number,
                    "hash": f"h{number}",
                    "timestamp": stamp,
                }
            )
            blocks.append([*row, datetime.fromtimestamp(stamp + 2, UTC)])  # 2 s to history
    clickhouse.insert("blocks", blocks, column_names=[*rows.BLOCK_COLUMNS, "inserted_at"])
    return clickhouse


def ask(client: Any, name: str, **params: Any) -> list[list[Any]]:
    sql = ready_query(name).render({k: str(v) for k, v in params.items()})
    return run_readonly(client, sql).rows


def test_every_ready_made_query_answers_what_it_says(history: Any) -> None:
    assert [r[0] for r in ask(history, "recent-matches")] == ["usdc", "usdc", "dai"]  # 24 h
    every = ask(history, "recent-matches", hours=24 * 60)
    assert [r[0] for r in every] == ["usdc", "usdc", "dai", "usdc", "dai"]
    assert [r[0] for r in ask(history, "recent-matches", monitor="dai", limit=1)] == ["dai"]
    assert ask(history, "matches-per-monitor", hours=1) == [["usdc", "USDC", 2], ["dai", "DAI", 1]]

    per_day = ask(history, "matches-per-monitor-per-day", days=30)
    today = datetime.fromtimestamp(NOW - 60, UTC).date()
    expected: dict[tuple[Any, str], int] = {}
    for monitor, age in (("usdc", 60), ("usdc", 120), ("usdc", 2 * 86_400), ("dai", 300)):
        key = (datetime.fromtimestamp(NOW - age, UTC).date(), monitor)
        expected[key] = expected.get(key, 0) + 1
    assert {(d, m): n for d, m, n in per_day} == expected
    assert per_day[0][0] >= today - (today - per_day[0][0])  # newest day first
    assert [r[0] for r in per_day] == sorted((r[0] for r in per_day), reverse=True)
    only = ask(history, "matches-per-monitor-per-day", monitor="dai", days=1)
    assert [(m, n) for _, m, n in only] == [("dai", 1)]

    top = ask(history, "top-matched-addresses")
    assert [(a, n, m) for a, n, m, _ in top] == [(A, 3, 1), (B, 2, 2), (C, 1, 1)]
    assert [r[0] for r in ask(history, "top-matched-addresses", limit=1)] == [A]

    assert ask(history, "failed-deliveries")[0][:5] == [
        "d4",
        golden("Delivery")["requestId"],
        "ops",
        "webhook",
        2,
    ]
    by_status = ask(history, "deliveries-by-status")
    assert by_status == [
        ["ops", "webhook", "FAILED", 1],
        ["ops", "webhook", "SENT", 4],
        ["pager", "webhook", "SENT", 1],
    ]
    assert ask(history, "delivery-failure-rate") == [
        ["ops", "webhook", 5, 1, 0.2],
        ["pager", "webhook", 1, 0, 0.0],
    ]
    # quantileExact of 100, 200, 300, 400: p50 the third value, p90 and p99 the fourth
    assert ask(history, "delivery-latency") == [
        ["ops", "webhook", 4, 300, 400, 400, 400],
        ["pager", "webhook", 1, 50, 50, 50, 50],
    ]
    assert ask(history, "delivery-latency", hours=100)[0][2:] == [5, 300, 5000, 5000, 5000]

    assert ask(history, "task-run-durations") == [
        ["counter", 3, 1, 0, 20, 30, 30],
        ["sweeper", 1, 0, 1, 30_000, 30_000, 30_000],
    ]
    assert ask(history, "task-run-durations", task="sweeper")[0][0] == "sweeper"

    lag = ask(history, "ingest-lag")
    assert [(n, last, p50, p99) for n, last, _, p50, p99 in lag] == [
        ("base", 500, 2.0, 2.0),
        ("mainnet", 100, 2.0, 2.0),
    ]
    behind = {n: s for n, _, s, _, _ in lag}
    assert 4 <= behind["base"] <= 4 + 60 and 30 <= behind["mainnet"] <= 30 + 60


def test_suppressed_by_reason_counts_each_reason(history: Any) -> None:
    suppressed = golden("Suppressed")
    records = [
        rows.suppressed_row({**suppressed, "id": f"s{i}", "reason": reason, "at": NOW * 1000})
        for i, reason in enumerate(("threshold", "threshold", "paused"))
    ]
    history.insert("suppressed", records, column_names=rows.SUPPRESSED_COLUMNS)
    monitor = suppressed["monitorId"]
    assert ask(history, "suppressed-by-reason") == [
        [monitor, "threshold", 2],
        [monitor, "paused", 1],
    ]


def test_replays_lists_each_replay_with_its_range(history: Any) -> None:
    replayed = golden("ReplayMatch")
    records = [
        rows.replay_row(
            {
                **replayed,
                "replayId": replay_id,
                "at": at,
                "match": {**replayed["match"], "id": f"{replay_id}:{n}", "blockNumber": number},
            }
        )
        for replay_id, at, n, number in (
            ("replay-a", NOW * 1000, 1, 100),
            ("replay-a", NOW * 1000, 2, 180),
            ("replay-b", (NOW + 5) * 1000, 1, 7),
        )
    ]
    history.insert("replays", records, column_names=rows.REPLAY_COLUMNS)
    listed = [r[:6] for r in ask(history, "replays")]
    assert listed == [
        ["replay-b", "history", "mainnet", 7, 7, 1],
        ["replay-a", "history", "mainnet", 100, 180, 2],
    ]


def test_parameters_are_checked_before_any_sql(history: Any) -> None:
    with pytest.raises(ConfigError, match=r"hours: expected a whole number from 1 to 87600"):
        ask(history, "matches-per-monitor", hours=0)
    with pytest.raises(ConfigError, match="expected an id like usdt-transfers"):
        ask(history, "recent-matches", monitor="x' OR 1=1 --")
    with pytest.raises(ConfigError, match="has no parameter 'hour'; it takes: hours"):
        ask(history, "matches-per-monitor", hour=1)
    with pytest.raises(ValueError, match="the first line must be"):
        parse_query("bad", "SELECT 1")
    every = {q.name for q in QUERIES.values()}
    assert {
        "matches-per-monitor-per-day",
        "top-matched-addresses",
        "delivery-failure-rate",
        "delivery-latency",
        "task-run-durations",
        "ingest-lag",
    } <= every


def test_vigil_sql_runs_and_lists_the_ready_made_queries(
    history: Any, chdb_path: Path, prefix: str, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from vigil.cli.main import app

    env = {"VIGIL_DATA_DIR": str(tmp_path / "data"), "VIGIL_API_BIND": "127.0.0.1:9"}
    listed = vigil_cli("sql", "--queries", "--format", "json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert [q["name"] for q in json.loads(listed.stdout)] == sorted(QUERIES)
    for args, expected in (
        (["sql"], "give either a SELECT or --query NAME"),
        (["sql", "SELECT 1", "--param", "a=1"], "--param goes with --query NAME"),
        (["sql", "--query", "nope"], "no ready-made query 'nope'; known: "),
        (["sql", "--query", "ingest-lag", "--param", "hours"], "expected NAME=VALUE"),
        (["sql", "--query", "ingest-lag", "--param", "hours=lots"], "hours: expected a whole"),
        (["sql", "--query", "top-matched-addresses"], "no history at chdb://"),
    ):
        failed = vigil_cli(*args, env=env)
        assert failed.returncode == 2 and expected in failed.stderr, (args, failed.stderr)
        assert len(failed.stderr.strip().splitlines()) == 1 and failed.stdout == ""
    # on this history (chDB opens once per process: the CLI runs in this one)
    env |= {"VIGIL_CLICKHOUSE_DSN": f"chdb://{chdb_path}", "VIGIL_CLICKHOUSE_DATABASE": prefix}
    args = ["sql", "--query", "top-matched-addresses", "--param", "limit=2", "--format", "json"]
    ran = CliRunner().invoke(app, args, env=env, catch_exceptions=False)
    assert ran.exit_code == 0, ran.output
    assert [(r["address"], r["matches"]) for r in json.loads(ran.stdout)] == [(A, 3), (B, 2)]
