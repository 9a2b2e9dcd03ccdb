"""Paths and loaders shared by the test tiers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"
MAINNET = FIXTURES / "chain" / "mainnet"
USDC = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
USDT = "0xdac17f958d2ee523a2206206994597c13d831ec7"
DAI = "0x6b175474e89094c44da98b954eedeac495271d0f"
WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"


def load_json(path: Path) -> Any:
    return json.loads(path.read_text())


def recorded_block_18m() -> dict[str, Any]:
    """Block 18,000,000 as vigil's Block record (94 transactions with receipts)."""
    from vigil.schemas.evm import block_record

    return block_record(
        "mainnet",
        1,
        load_json(MAINNET / "18000000.block.json"),
        load_json(MAINNET / "18000000.receipts.json"),
    )


def linked_chain(length: int) -> dict[int, tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Block 18,000,000's content as ``length`` linked blocks from 18,000,000 (test chains)."""
    raw = load_json(MAINNET / "18000000.block.json")
    receipts = load_json(MAINNET / "18000000.receipts.json")
    blocks = {}
    parent = raw["parentHash"]
    for i in range(length):
        number = 18_000_000 + i
        block_hash = raw["hash"] if i == 0 else f"0x{number:064x}"
        blocks[number] = (
            {**raw, "number": hex(number), "hash": block_hash, "parentHash": parent},
            receipts,
        )
        parent = block_hash
    return blocks


def write_monitor(
    folder: Path, text: str, name: str = "monitor.yaml", abi: str = "ERC20.abi.json"
) -> Path:
    """A monitor file next to a copy of a fixture ABI (``abis/<abi>``)."""
    (folder / "abis").mkdir(parents=True, exist_ok=True)
    (folder / "abis" / abi).write_text((FIXTURES / "abi" / abi).read_text())
    path = folder / name
    path.write_text(text)
    return path


API_KEY = "vigil_stack_test-key-of-the-test-suite"  # the stack key of tests' own API servers
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def api_app(**parts: Any) -> Any:
    """vigil's API over ``parts`` (store, clickhouse, forta...), accepting API_KEY."""
    from vigil.api.app import create_app
    from vigil.api.auth import StaticKeys

    return create_app(StaticKeys(API_KEY), **parts)


class ApiServer:
    """vigil's FastAPI app served by uvicorn in a thread on a free port."""

    def __init__(self, app: Any) -> None:
        import threading

        import uvicorn

        from vigil.stack.broker import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # what a vigil process needs to use this API as its stack's (registry, SQL)
        self.env = {"VIGIL_API_BIND": f"127.0.0.1:{self.port}", "VIGIL_API_KEY": API_KEY}
        self._server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> ApiServer:
        import httpx

        from vigil.testing import wait_for

        self._thread.start()

        def up() -> bool:
            try:
                return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, 20, f"the API on {self.url}")
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)


class RunningIngester:
    """An ingester in a thread for the span of a ``with``; stopped and joined on exit."""

    def __init__(self, ingester: Any) -> None:
        import threading

        self.ingester = ingester
        self.thread = threading.Thread(target=ingester.run, daemon=True)

    def __enter__(self) -> Any:
        self.thread.start()
        return self.ingester

    def __exit__(self, *exc: object) -> None:
        self.ingester.stopping.set()
        self.thread.join(20)


def read_topic(settings: Any, codec: Any, kafka: str, suffix: str, schema: str) -> list[Any]:
    """Every record of the catalogue topic ``suffix``, decoded, in partition order."""
    return [codec.decode(record.value, schema) for record in raw_records(settings, kafka, suffix)]


def raw_records(settings: Any, kafka: str, suffix: str) -> list[Any]:
    """Every record of the catalogue topic ``suffix`` as kafka-python gives it (headers too)."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        settings.topic(suffix),
        bootstrap_servers=kafka,
        auto_offset_reset="earliest",
        consumer_timeout_ms=3000,
        max_partition_fetch_bytes=16 * 1024 * 1024,
    )
    try:
        return list(consumer)
    finally:
        consumer.close()


def run_vigil(settings: Any, *args: str, timeout: float = 120) -> Any:
    """`vigil ARGS...` in a child process with ``settings`` as its environment."""
    import os
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "vigil", *args],
        env={**os.environ, **settings.child_env()},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def vigil_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m vigil ARGS`` as a user runs it: a bare PATH plus ``env``, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "vigil", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
    )


def applied_project(settings: Any, kafka: str, root: Path, **overrides: Any) -> tuple[Any, Any]:
    """The project at ``root`` applied to the broker's config topics: the settings that
    point at it (with ``overrides``) and the codec used."""
    from vigil.config.loader import load_project
    from vigil.schemas.codec import Codec
    from vigil.schemas.registry import SchemaStore
    from vigil.settings import load_settings
    from vigil.streams.config_topics import apply_project
    from vigil.streams.kafka import ensure_topics

    ensure_topics(settings, kafka)
    codec = Codec(SchemaStore())
    settings = load_settings(**{**settings.model_dump(), "project_dir": root, **overrides})
    apply_project(settings, kafka, codec, load_project(root))
    return settings, codec
