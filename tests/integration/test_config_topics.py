"""Config as events on the KRaft broker: transactional applies, and workers that follow them."""

import threading
from pathlib import Path

import pytest

from tests.helpers import USDT, recorded_block_18m
from tests.unit.test_config import monitor, project
from tests.unit.test_templates import TRANSFER_TOPIC
from vigil.config.loader import load_project
from vigil.config.state import TOPICS, Change, desired, with_paused
from vigil.schemas.codec import Codec
from vigil.schemas.registry import SchemaStore
from vigil.settings import Settings
from vigil.streams.config_topics import apply_project, publish, read_current
from vigil.streams.kafka import ensure_topics, producer
from vigil.streams.live_config import LiveConfig
from vigil.testing import wait_for

pytestmark = pytest.mark.integration
TRANSFER = "conditions:\n  events:\n    - signature: Transfer\n"


def test_apply_is_seen_whole_and_workers_follow_pause_and_bad_records(
    settings: Settings, kafka: str, tmp_path: Path
) -> None:
    ensure_topics(settings, kafka)
    codec = Codec(SchemaStore())
    loaded = load_project(project(tmp_path, monitor(TRANSFER + "channels: [ops]\n")))

    # an aborted transaction leaves nothing a reader can see
    aborted = producer(settings, kafka, transactional_id="test-aborted")
    aborted.init_transactions()
    aborted.begin_transaction()
    [change] = [c for c in desired(loaded).values() if c.kind == "monitor"]
    topic = settings.topic(TOPICS["monitor"])
    aborted.send(topic, key=b"monitor", value=codec.encode(topic, "ConfigChange", change.record(0)))
    aborted.flush()
    aborted.abort_transaction()
    aborted.close()
    assert read_current(settings, kafka, codec) == {}

    planned = apply_project(settings, kafka, codec, loaded)
    assert {p.effect for p in planned} == {"create"}
    assert set(read_current(settings, kafka, codec)) == {("monitor", "monitor"), ("channel", "ops")}

    live = LiveConfig(settings, kafka, codec)
    snapshot = live.load()
    block = recorded_block_18m()
    with_transfers = {
        tx["hash"]
        for tx in block["transactions"]
        for log in tx["receipt"]["logs"]
        if log["address"] == USDT and log["topics"][0] == TRANSFER_TOPIC
    }
    assert {m["hash"] for m in snapshot.matcher.match_block(block)} == with_transfers
    assert [c.id for c in snapshot.channels["ops"]] == ["ops"]
    follower = threading.Thread(target=live.follow, daemon=True)
    follower.start()
    try:
        record = read_current(settings, kafka, codec)[("monitor", "monitor")]
        publish(settings, kafka, codec, [with_paused(record, True, "pause")])
        wait_for(lambda: live.snapshot.matcher.match_block(block) == [], 20, "the pause")

        # a record that does not compile is rejected; the version before it stays in force
        spec = with_paused(record, False, "api").spec
        assert spec is not None
        spec["config"]["conditions"]["events"][0]["expression"] = "value >"
        publish(settings, kafka, codec, [Change("monitor", "monitor", "upsert", spec, "api")])
        wait_for(lambda: live.rejected == 1, 20, "the rejection")
        assert live.snapshot.matcher.match_block(block) == []  # still the paused version

        publish(settings, kafka, codec, [Change("monitor", "monitor", "delete", None, "api")])
        wait_for(lambda: not live.monitors, 20, "the delete")
        assert set(read_current(settings, kafka, codec)) == {("channel", "ops")}
    finally:
        live.stopping.set()
        follower.join(5)


def test_apply_publishes_tasks_and_keeps_every_version(
    settings: Settings, kafka: str, tmp_path: Path
) -> None:
    from tests.unit.test_task_config import HANDLER, with_task
    from vigil.streams.kafka import read_compacted

    ensure_topics(settings, kafka)
    codec = Codec(SchemaStore())
    root = with_task(tmp_path, "name: counter\ncode: count.py\n")
    first = [
        p
        for p in apply_project(settings, kafka, codec, load_project(root))
        if p.change.kind == "task"
    ]
    assert [(p.change.id, p.effect) for p in first] == [("count", "create")]
    (root / "tasks" / "count.py").write_text(HANDLER.replace("1", "2"))
    second = [
        p
        for p in apply_project(settings, kafka, codec, load_project(root))
        if p.change.kind == "task"
    ]
    assert [p.effect for p in second] == ["update"]
    versions = read_compacted(
        settings, kafka, settings.topic("tasks.versions"), read_committed=True
    )
    assert sorted(versions) == sorted(
        f"count:{p.change.version}".encode() for p in (*first, *second)
    )
    current = read_current(settings, kafka, codec)[("task", "count")]
    assert current["version"] == second[0].change.version
    # the matcher's follower takes task records without rejecting them
    live = LiveConfig(settings, kafka, codec)
    live.load()
    assert live.rejected == 0
