"""The API's config, delivery and query routes on a real broker and chDB: what the CLI does,
over HTTP, behind scoped keys."""

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import AUTH, FIXTURES, ApiServer, read_topic
from tests.unit.test_config import monitor, project
from vigil.api.app import create_app
from vigil.api.auth import StaticKeys
from vigil.api.routes.monitors import MONITOR_EXAMPLE
from vigil.config.loader import load_project
from vigil.connectors.history.ddl import migrate
from vigil.schemas.catalogue import REGISTRY_TOPIC
from vigil.schemas.codec import Codec
from vigil.settings import Settings, load_settings
from vigil.streams.config_topics import apply_project
from vigil.streams.dlq import dead_letter
from vigil.streams.kafka import ensure_topics, producer
from vigil.streams.registry_log import kafka_backed_store

pytestmark = pytest.mark.integration


def test_channels_deliveries_and_ready_made_queries(
    settings: Settings, kafka: str, clickhouse: Any, tmp_path: Path
) -> None:
    ensure_topics(settings, kafka)
    migrate(clickhouse)
    clickhouse.command(
        "INSERT INTO matches (id, monitor_id, monitor_name, network, block_number, block_hash, "
        "transaction_hash, timestamp, reasons, matched_addresses, event) VALUES ('m1', "
        "'monitor', 'Monitor', 'mainnet', 1, '0xb', '0xt', now(), '[]', [], '{}')"
    )
    store = kafka_backed_store(settings, kafka, settings.topic(REGISTRY_TOPIC))
    codec = Codec(store)
    root = project(tmp_path, monitor("conditions:\n  events:\n    - signature: Transfer\n"))
    settings = load_settings(**{**settings.model_dump(), "project_dir": root})
    apply_project(settings, kafka, codec, load_project(root))
    # a delivery that failed after its retries: its batch waits on the dead-letter topic
    batch = json.loads((FIXTURES / "avro" / "MatchBatch.json").read_text())
    batches = settings.topic("monitor.match-batches")
    payload = codec.encode(batches, "MatchBatch", batch)
    letter = dead_letter(
        id="batch-1:ops",
        source="worker",
        topic=batches,
        partition=0,
        offset=7,
        key=batch["monitorId"].encode(),
        error="HTTP 500",
        schema="MatchBatch",
        payload=payload,
    )
    dlq = settings.topic("dlq")
    sink = producer(settings, kafka)
    sink.send(dlq, key=b"batch-1:ops", value=codec.encode(dlq, "DeadLetter", letter)).get(30)
    sink.close()
    app = create_app(
        StaticKeys(AUTH["Authorization"].split()[1]),
        store=store,
        clickhouse=clickhouse,
        limits=settings.sql_limits,
        config=(settings, kafka, codec),
    )
    with ApiServer(app) as api:
        get = lambda path, **kw: httpx.get(f"{api.url}{path}", headers=AUTH, **kw)  # noqa: E731
        [channel] = get("/channels").json()
        assert channel["id"] == "ops" and channel["type"] == "webhook"
        assert "url" not in channel and "secret" not in json.dumps(channel)

        # monitors and channels made, changed and removed over HTTP, checked as files are
        put = lambda path, body: httpx.put(f"{api.url}{path}", json=body, headers=AUTH)  # noqa: E731
        made = put("/monitors/usdt-large", MONITOR_EXAMPLE)
        assert made.status_code == 200, made.text
        assert made.json()["effect"] == "created"
        assert put("/monitors/usdt-large", MONITOR_EXAMPLE).json()["effect"] == "unchanged"
        cheaper = {**MONITOR_EXAMPLE, "severity": "high"}
        assert put("/monitors/usdt-large", cheaper).json()["effect"] == "updated"
        applied = {m["id"]: m for m in get("/monitors").json()}
        assert applied["usdt-large"]["severity"] == "high"
        typo = put("/monitors/bad", {**MONITOR_EXAMPLE, "netwrok": "mainnet"})
        assert typo.status_code == 422 and "netwrok" in typo.json()["detail"]
        unknown = put("/monitors/bad", {**MONITOR_EXAMPLE, "channels": ["pager"]})
        assert unknown.status_code == 422
        assert "unknown channel alias 'pager'; the applied channels are: ops" in unknown.text
        broken = {
            **MONITOR_EXAMPLE,
            "conditions": {"events": [{"signature": "Transfer(", "expression": "x"}]},
        }
        assert put("/monitors/bad", broken).status_code == 422
        assert "bad" not in {m["id"] for m in get("/monitors").json()}  # nothing half-applied
        in_use = httpx.delete(f"{api.url}/channels/ops", headers=AUTH)
        assert in_use.status_code == 409 and "usdt-large" in in_use.text
        pager = put(
            "/channels/pager", {"alias": "pager", "type": "webhook", "url": "http://127.0.0.1:9/x"}
        )
        assert pager.json()["effect"] == "created"
        assert (
            httpx.delete(f"{api.url}/monitors/usdt-large", headers=AUTH).json()["effect"]
            == "deleted"
        )
        assert httpx.delete(f"{api.url}/monitors/usdt-large", headers=AUTH).status_code == 404
        assert "usdt-large" not in {m["id"] for m in get("/monitors").json()}

        listed = {q["name"]: q for q in get("/queries").json()}
        assert listed["recent-matches"]["params"][1] == {
            "name": "limit",
            "doc": "rows at most",
            "default": 50,
        }
        ran = get("/queries/matches-per-monitor", params={"hours": 6})
        assert ran.status_code == 200, ran.text
        assert ran.json() == {
            "columns": ["monitor_id", "name", "matches"],
            "rows": [["monitor", "Monitor", 1]],
        }
        bad = get("/queries/recent-matches", params={"limit": "lots"})
        assert bad.status_code == 422 and bad.json()["detail"].startswith("limit: expected")
        assert get("/queries/nope").status_code == 404

        assert get("/deliveries", params={"failed": "true"}).json()["rows"] == []
        missing = httpx.post(f"{api.url}/deliveries/nope/resend", headers=AUTH)
        assert missing.status_code == 404 and "no dead letter for 'nope'" in missing.text
        resent = httpx.post(f"{api.url}/deliveries/batch-1:ops/resend", headers=AUTH)
        assert resent.json() == {"resent": len(batch["matches"]), "channel": batch["channel"]}
    again = read_topic(settings, codec, kafka, "monitor.match-batches", "MatchBatch")
    assert again == [batch]  # back on its topic, for the worker to send once more
