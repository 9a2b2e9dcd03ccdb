"""`vigil replay` against the running stack: each source finds what live matching found,
--diff after widening a condition shows exactly the new matches, and --notify sends only
what no one was told yet."""

import json
from typing import Any

import pytest

from tests.e2e.stack import LARGE, Running
from tests.helpers import run_vigil
from vigil.testing import wait_for

pytestmark = pytest.mark.e2e

SMALL = 7 * 10**18  # below the monitor's 1,000 tokens; above the widened 5


def _events(running: Running) -> list[dict[str, Any]]:
    return [event for post in running.receiver.received for event in post.json()["events"]]


def _replay(running: Running, *args: str) -> dict[str, Any]:
    done = run_vigil(running.stack.settings, "replay", "--monitor", "large", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def _tested(running: Running, *args: str) -> Any:
    """`vigil monitors test large --network anvil ARGS --format json`, which must succeed."""
    done = run_vigil(
        running.stack.settings,
        "monitors",
        "test",
        "large",
        "--network",
        "anvil",
        *args,
        "--format",
        "json",
    )
    assert done.returncode == 0, done.stderr
    return done


def test_replays_match_live_show_diffs_and_never_notify_twice(running: Running) -> None:
    settings = running.stack.settings
    first = running.mine_transfers(LARGE, SMALL)
    running.mine_transfers(SMALL)
    last = running.mine_transfers(2 * LARGE)
    live = wait_for(
        lambda: (
            r if len(r := running.sql("SELECT id FROM matches FINAL ORDER BY id")) == 2 else None
        ),
        60,
        "the live matches in history",
    )
    wait_for(lambda: len(_events(running)) == 2 or None, 60, "the live deliveries")
    wait_for(
        lambda: running.sql("SELECT max(number) FROM blocks FINAL") >= [[last]] or None,
        60,
        "the blocks in history",
    )
    blocks = f"{first}..{last}"
    recorded = sorted(r[0] for r in live)
    for source in ("history", "kafka", "rpc"):
        found = _replay(running, "--blocks", blocks, "--source", source, "--format", "json")
        assert sorted(e["id"] for e in found["matches"]) == recorded, source
        assert found["blocks"] == last - first + 1 and found["source"] == source
    # `monitors test` reads the range from history, and one transaction too
    tested = _tested(running, "--blocks", blocks)
    assert "read from history (3)" in tested.stderr, tested.stderr
    assert sorted(e["id"] for e in json.loads(tested.stdout)) == recorded
    tx_hash = found["matches"][0]["hash"]
    tested = _tested(running, "--tx", tx_hash)
    assert "read from history (1)" in tested.stderr, tested.stderr
    assert [e["hash"] for e in json.loads(tested.stdout)] == [tx_hash]
    # a block before the stack's start is not in history: the node answers
    before = _tested(running, "--block", str(first - 1))
    assert "fetched from the nodes of anvil (1)" in before.stderr, before.stderr

    kept = wait_for(
        lambda: (
            running.sql("SELECT count(DISTINCT replay_id), count() FROM replays FINAL") == [[3, 6]]
            or None
        ),
        60,
        "the replays kept in history",
    )
    assert kept

    # --notify with the monitor as it was: everything was told already, so nothing goes out
    _replay(running, "--blocks", blocks, "--notify", "--format", "json")
    log = running.stack.logs / "worker.log"
    wait_for(lambda: log.read_text().count(":replay (") >= 2 or None, 60, "the replayed batches")
    assert len(_events(running)) == 2

    # widen the condition: --diff shows exactly the two small transfers, removes nothing
    monitor = settings.project_dir / "monitors" / "large.yaml"
    monitor.write_text(monitor.read_text().replace("1000 * 10^18", "5 * 10^18"))
    changed = _replay(running, "--blocks", blocks, "--diff", "--format", "json")
    assert changed["removed"] == []
    added = changed["added"]
    assert len(added) == 2 and all(e["id"] not in recorded for e in added)
    assert {e["matchReasons"][0]["params"]["value"] for e in added} == {str(SMALL)}

    # applied and replayed with --notify: only the new matches are sent, each once
    assert run_vigil(settings, "apply").returncode == 0
    applied = "config: monitor large active, version"
    wait_for(lambda: log.read_text().count(applied) >= 2 or None, 30, "the change applied")
    _replay(running, "--blocks", blocks, "--notify", "--format", "json")
    told = wait_for(lambda: e if len(e := _events(running)) == 4 else None, 60, "the new matches")
    assert sorted(e["id"] for e in told[2:]) == sorted(e["id"] for e in added)
    _replay(running, "--blocks", blocks, "--notify", "--format", "json")  # again: nothing new
    wait_for(lambda: log.read_text().count(":replay (") >= 8 or None, 60, "the third replay")
    assert len(_events(running)) == 4
