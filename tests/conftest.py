"""Fixtures shared by the tiers: one KRaft broker and one anvil node per test run."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vigil.demo.chain import Anvil
from vigil.errors import RuntimeDependencyError
from vigil.settings import Settings, load_settings
from vigil.stack.broker import EmbeddedKafka


def _unavailable(what: str, exc: Exception) -> None:
    message = f"{what} unavailable ({exc}); run `make install` to enable these tests"
    if os.environ.get("CI"):
        pytest.fail(message)  # CI installs everything: a missing piece is a failure there
    pytest.skip(message)


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap address of the KRaft broker started once for the whole run."""
    broker = EmbeddedKafka(load_settings(data_dir=tmp_path_factory.mktemp("broker")))
    try:
        bootstrap = broker.start()
    except RuntimeDependencyError as exc:
        _unavailable("the Kafka broker", exc)
    yield bootstrap
    broker.stop()


@pytest.fixture(scope="session")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Anvil]:
    node = Anvil(log_file=tmp_path_factory.mktemp("anvil") / "anvil.log")
    try:
        node.start()
    except RuntimeDependencyError as exc:
        _unavailable("anvil", exc)
    yield node
    node.stop()


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """chDB opens one data path per process: the tests of a run share it, one database each."""
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture
def clickhouse(chdb_path: Path, prefix: str) -> Any:
    from vigil.connectors.history.query import connect

    return connect(f"chdb://{chdb_path}", database=prefix)


@pytest.fixture
def prefix() -> str:
    """A topic and group prefix no other test uses."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def settings(tmp_path: Path, kafka: str, prefix: str) -> Settings:
    return load_settings(
        data_dir=tmp_path / "data", kafka_bootstrap=kafka, topic_prefix=prefix, group_prefix=prefix
    )
