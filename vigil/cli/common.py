"""What the CLI's command modules share: consoles, settings, the running stack's Kafka."""

from __future__ import annotations

import csv
import io
import json
import logging
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from vigil.errors import HistoryError, VigilError
from vigil.settings import Settings, load_settings

# a pipe or file gets whole values (hashes, addresses), never cut at 80 columns
PIPE_WIDTH = 10_000
console = Console(width=None if sys.stdout.isatty() else PIPE_WIDTH)
err = Console(stderr=True, width=None if sys.stderr.isatty() else PIPE_WIDTH)
state: dict[str, Any] = {"debug": False}


def settings() -> Settings:
    """The settings, built once per command, with vigil's log format."""
    built = load_settings()
    configure_logging(built.log_level)
    return built


# per-request lines drown vigil's own, and httpx's name each URL whole, with any API key in
# it: these stay at WARNING whatever the level (vigil's own messages show scheme://host)
QUIET = ("kafka", "aiokafka", "httpx", "httpcore")


def configure_logging(level: str) -> None:
    """vigil's log format at ``level``; the libraries in ``QUIET`` at WARNING or above."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in QUIET:
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.root.level))
    # SASL_PLAINTEXT is chosen on purpose; kafka-python warns of it on every connection
    logging.getLogger("kafka.net.sasl").setLevel(logging.ERROR)
    # kafka-python's own event loop warns when a busy machine slows one of its tasks: a note
    # to its developers, not to the user of a command (seen in CI on `vigil tail`)
    logging.getLogger("kafka.net.selector").setLevel(logging.ERROR)
    # a consumer closed while its metadata refresh or a read is in flight logs that as an
    # ERROR (the read with a traceback of its socket, already gone): the command is ending
    logging.getLogger("kafka.cluster").addFilter(
        lambda record: "failed Cancelled" not in record.getMessage()
    )
    logging.getLogger("kafka.net.transport").addFilter(
        lambda record: (
            not (
                record.exc_info
                and isinstance(record.exc_info[1], AttributeError)
                and "'NoneType' object has no attribute" in str(record.exc_info[1])
            )
        )
    )


def stack_bootstrap(settings: Settings, purpose: str) -> str:
    """Kafka of the running stack: VIGIL_KAFKA_BOOTSTRAP, or the embedded broker of the data dir."""
    from vigil.stack.broker import running_embedded

    bootstrap = settings.kafka_bootstrap or running_embedded(settings)
    if bootstrap is None:
        raise VigilError(
            f"no Kafka to {purpose}: start `vigil up` (its embedded broker is found through "
            "VIGIL_DATA_DIR) or set VIGIL_KAFKA_BOOTSTRAP"
        )
    return bootstrap


def stack_codec(settings: Settings) -> Any:
    """A codec registered with the stack's schema registry (vigil's API unless external)."""
    from vigil.stack.access import registry_client
    from vigil.stack.roles import preregistered_codec

    return preregistered_codec(settings, registry_client(settings))


def history_query(settings: Settings, query: str) -> tuple[list[str], list[list[Any]]]:
    """Read-only SQL through the running API (chDB opens in one process), else directly."""
    columns, rows = history_asker(settings)(query)
    return list(columns), list(rows)


def history_rows(settings: Settings) -> Any:
    """``history_asker``'s rows alone: a function SQL → rows."""
    asker = history_asker(settings)
    return lambda sql: list(asker(sql)[1])


def history_asker(settings: Settings) -> Any:
    """A function running read-only SQL over the history: through the running API (chDB
    opens in one process), else directly; the way is chosen once, at the first query.

    The API must be this data dir's instance: one that answers with another instance's id
    is refused; with no instance in the data dir, the answer says whose history it is."""
    import httpx

    from vigil.stack.access import api_headers
    from vigil.stack.instance import instance_id

    headers = api_headers(settings)
    try:
        health = httpx.get(f"{settings.api_url}/health", headers=headers, timeout=5).json()
    except (httpx.HTTPError, ValueError):
        health = None
    if isinstance(health, dict) and not headers:
        raise VigilError(
            f"the API at {settings.api_url} needs an API key: set VIGIL_API_KEY to a key with "
            "sql:read, or VIGIL_DATA_DIR to the data dir of the `vigil up` serving it"
        )
    if isinstance(health, dict):
        mine, theirs = instance_id(settings.data_dir), health.get("instance")
        where = f"the API at {settings.api_url} (data dir {health.get('dataDir', '?')})"
        if mine is not None and theirs != mine:
            raise VigilError(
                f"{where} is instance {theirs or 'unknown'}, not the instance {mine} of "
                f"VIGIL_DATA_DIR {settings.data_dir}; set VIGIL_API_BIND to that instance's "
                "API, or VIGIL_DATA_DIR to the data dir of the one answering"
            )
        if mine is None:
            err.print(
                f"[yellow]note:[/] {settings.data_dir} holds no vigil instance; this is the "
                f"history of instance {theirs or 'unknown'}, {where}",
                highlight=False,
                soft_wrap=True,
            )
        http = httpx.Client(headers=headers, timeout=120)

        def through_api(query: str) -> tuple[list[str], list[list[Any]]]:
            try:
                response = http.post(f"{settings.api_url}/sql", json={"query": query})
            except httpx.HTTPError as exc:
                raise VigilError(f"{where}: the query got no answer: {exc}") from None
            if response.status_code != 200:
                raise VigilError(f"SQL failed: {response.json().get('detail', response.text)}")
            body = response.json()
            return body["columns"], body["rows"]

        return through_api
    from vigil.config.urls import redact
    from vigil.connectors.history.query import connect, run_readonly

    client = connect(settings.clickhouse, settings.clickhouse_database)

    def directly(query: str) -> tuple[list[str], list[list[Any]]]:
        try:
            result = run_readonly(client, query, limits=settings.sql_limits)
        except HistoryError as exc:
            unknown = "UNKNOWN_TABLE" in str(exc) or "Code: 60." in str(exc)
            if unknown and not client.query("SHOW TABLES").result_rows:
                dsn = settings.clickhouse
                shown = dsn if dsn.startswith("chdb://") else redact(dsn)  # a path: no secret
                raise VigilError(
                    f"no history at {shown} (database "
                    f"{settings.clickhouse_database}) yet: is VIGIL_DATA_DIR "
                    f"({settings.data_dir}) the data dir of a vigil that has run? `vigil up` "
                    "makes the tables"
                ) from None
            raise
        return result.columns, [list(r) for r in result.rows]

    return directly


FORMATS = ("table", "json", "csv")


def check_format(fmt: str) -> str:
    """``fmt`` if it is one of FORMATS, else the one-line usage error."""
    if fmt not in FORMATS:
        raise VigilError(f"--format: expected {', '.join(FORMATS)}; got {fmt!r}")
    return fmt


def print_rows(
    columns: list[str], rows: list[list[Any]], fmt: str, title: str | None = None
) -> None:
    """Rows as a table (whole values when piped), a JSON list of objects, or CSV."""
    if fmt == "json":
        print(json.dumps([dict(zip(columns, r, strict=True)) for r in rows], default=str))
    elif fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(columns)
        writer.writerows(rows)
        print(buffer.getvalue(), end="")
    else:
        table = Table(*columns, title=title)
        for row in rows:
            table.add_row(*("" if v is None else str(v) for v in row))
        console.print(table)
