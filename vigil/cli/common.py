"""What the CLI's command modules share: consoles, settings, the running stack's Kafka."""

from __future__ import annotations

import logging
from typing import Any

from rich.console import Console

from vigil.errors import VigilError
from vigil.settings import Settings, load_settings

console = Console()
err = Console(stderr=True)
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
    from vigil.schemas.registry import HttpRegistry
    from vigil.stack.roles import preregistered_codec

    return preregistered_codec(settings, HttpRegistry(settings.registry_url))


def history_query(settings: Settings, query: str) -> tuple[list[str], list[list[Any]]]:
    """Read-only SQL through the running API (chDB opens in one process), else directly."""
    import httpx

    try:
        response = httpx.post(f"{settings.api_url}/sql", json={"query": query}, timeout=120)
    except httpx.HTTPError:
        response = None
    if response is not None:
        if response.status_code != 200:
            raise VigilError(f"SQL failed: {response.json().get('detail', response.text)}")
        body = response.json()
        return body["columns"], body["rows"]
    from vigil.connectors.history.query import connect, run_readonly

    result = run_readonly(connect(settings.clickhouse, settings.clickhouse_database), query)
    return result.columns, [list(r) for r in result.rows]
