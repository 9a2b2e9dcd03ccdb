"""Configuration as events: what `vigil apply` would publish, and records read back."""

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import USDT, recorded_block_18m
from tests.unit.test_config import monitor, project
from vigil.config.loader import load_project
from vigil.config.state import (
    Change,
    channel_from_record,
    desired,
    monitor_from_record,
    plan,
    version_of,
    with_paused,
)
from vigil.errors import ConfigError
from vigil.processors.matching import Matcher, compile_monitor


def records(changes: list[Change]) -> dict[tuple[str, str], dict[str, Any]]:
    """What the config topics would hold after ``changes`` (decoded records)."""
    at = int(datetime(2026, 11, 23, tzinfo=UTC).timestamp() * 1000)
    return {(c.kind, c.id): c.record(at) for c in changes if c.action == "upsert"}


def effects(planned: list[Any]) -> dict[str, str]:
    return {f"{p.change.kind}:{p.change.id}": p.effect for p in planned}


def test_first_apply_creates_everything_and_a_second_changes_nothing(tmp_path: Path) -> None:
    loaded = load_project(project(tmp_path, monitor("channels: [ops]\n")))
    first = plan(loaded, {})
    assert effects(first) == {"channel:ops": "create", "monitor:monitor": "create"}
    current = records([p.change for p in first])
    assert effects(plan(loaded, current)) == {
        "channel:ops": "unchanged",
        "monitor:monitor": "unchanged",
    }


def test_edits_are_updates_with_the_changed_fields_and_removals_are_deletes(
    tmp_path: Path,
) -> None:
    root = project(tmp_path, monitor("channels: [ops]\n"))
    current = records(list(desired(load_project(root)).values()))
    (root / "monitors" / "monitor.yaml").write_text(monitor("severity: high\n"))
    (root / "channels" / "ops.yaml").unlink()
    planned = plan(load_project(root), current)
    assert effects(planned) == {"monitor:monitor": "update", "channel:ops": "delete"}
    [update] = [p for p in planned if p.effect == "update"]
    assert update.detail == "channels, severity"
    [delete] = [p for p in planned if p.effect == "delete"]
    assert delete.change.spec is None and delete.change.record(0)["spec"] is None


def test_a_pause_by_hand_outlives_apply_until_the_file_changes_paused(tmp_path: Path) -> None:
    root = project(tmp_path, monitor())
    current = records(list(desired(load_project(root)).values()))
    key = ("monitor", "monitor")
    current[key] = with_paused(current[key], True, "pause").record(0)
    assert effects(plan(load_project(root), current))["monitor:monitor"] == "unchanged"
    # the file now says paused: true, then false again: each time the file wins
    (root / "monitors" / "monitor.yaml").write_text(monitor("paused: true\n"))
    [paused] = [p for p in plan(load_project(root), current) if p.change.kind == "monitor"]
    assert paused.effect == "update"  # already paused by hand: only the file's value moved
    assert paused.detail == "paused in file: False → True"
    current[key] = paused.change.record(0)
    (root / "monitors" / "monitor.yaml").write_text(monitor("paused: false\n"))
    [resumed] = [p for p in plan(load_project(root), current) if p.change.kind == "monitor"]
    assert resumed.effect == "update" and resumed.detail == "paused: True → False"


def test_a_record_rebuilds_the_monitor_that_matches_like_the_file(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        monitor(
            "conditions:\n  events:\n    - signature: Transfer\n"
            "      expression: value > 1000000000\n"
        ),
    )
    loaded = load_project(root)
    [change] = [c for c in desired(loaded).values() if c.kind == "monitor"]
    record = change.record(0)
    assert record["version"] == version_of(json.loads(record["spec"]))
    applied = monitor_from_record(record)
    assert applied.chain_id == 1 and applied.network_confirmations == 0
    assert applied.monitor.abi == loaded.monitors[0].abi  # the ABI travels inside the record
    block = recorded_block_18m()
    direct = Matcher([compile_monitor(loaded.monitors[0], 1)]).match_block(block)
    rebuilt = Matcher([compile_monitor(applied.monitor, 1)]).match_block(block)
    assert direct and [m["id"] for m in rebuilt] == [m["id"] for m in direct]
    assert all(USDT in m["matchedAddresses"] for m in rebuilt)


def test_records_that_do_not_validate_name_the_object() -> None:
    bad = {"id": "x", "spec": json.dumps({"config": {"name": "x"}}), "file": "m.yaml"}
    with pytest.raises(ConfigError, match=r"m.yaml: monitor 'x': config record does not hold"):
        monitor_from_record(bad)
    with pytest.raises(ConfigError, match=r"channel 'y': config record does not hold"):
        channel_from_record({"id": "y", "spec": json.dumps({"config": {"alias": "y"}})})
