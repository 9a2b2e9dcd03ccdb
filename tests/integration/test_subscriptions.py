"""What a downstream subscriber sees: `vigil topics` and `vigil tail` over a real broker, with
the registry served by vigil's API."""

import json
import time
from typing import Any

import pytest

from tests.helpers import FIXTURES, ApiServer, api_app, vigil_cli
from vigil.schemas.catalogue import CATALOGUE, REGISTRY_TOPIC
from vigil.schemas.codec import Codec
from vigil.schemas.registry import HttpRegistry
from vigil.settings import Settings
from vigil.streams.kafka import ensure_topics, producer
from vigil.streams.registry_log import kafka_backed_store

pytestmark = pytest.mark.integration


def _match(n: int, monitor: str) -> dict[str, Any]:
    sample = json.loads((FIXTURES / "avro" / "Match.json").read_text())
    return {**sample, "id": f"{monitor}:{n}", "monitor": {**sample["monitor"], "id": monitor}}


def test_tail_prints_decoded_records_from_where_it_is_told(settings: Settings, kafka: str) -> None:
    ensure_topics(settings, kafka)
    store = kafka_backed_store(settings, kafka, settings.topic(REGISTRY_TOPIC))
    topic = settings.topic("monitor.matches")
    with ApiServer(api_app(store=store)) as api:
        codec = Codec(HttpRegistry(api.url, headers={"X-Api-Key": api.env["VIGIL_API_KEY"]}))
        out = producer(settings, kafka)
        for n, monitor in enumerate(("usdc", "dai", "usdc")):
            out.send(
                topic, key=monitor.encode(), value=codec.encode(topic, "Match", _match(n, monitor))
            )
        out.flush()
        time.sleep(1.1)  # the next records are later by the broker's clock
        middle = int(time.time() * 1000)
        time.sleep(0.1)
        out.send(topic, key=b"usdc", value=codec.encode(topic, "Match", _match(3, "usdc")))
        out.flush()
        out.close()
        env = {
            **api.env,
            "VIGIL_KAFKA_BOOTSTRAP": kafka,
            "VIGIL_TOPIC_PREFIX": settings.topic_prefix,
        }

        def tail(*args: str) -> list[dict[str, Any]]:
            done = vigil_cli("tail", *args, "--exit", "--format", "json", env=env)
            assert done.returncode == 0 and done.stderr == "", done.stderr
            return [json.loads(line) for line in done.stdout.splitlines()]

        every = tail("monitor.matches", "--from-beginning")
        assert sorted(r["value"]["id"] for r in every) == ["dai:1", "usdc:0", "usdc:2", "usdc:3"]
        first = every[0]
        assert set(first) == {"topic", "partition", "offset", "timestamp", "key", "value"}
        assert first["topic"] == topic and first["value"]["monitor"]["id"] == first["key"]
        assert first["value"]["transaction"]["hash"].startswith("0x")
        usdc = tail(topic, "--from-beginning", "--key", "usdc")  # the full name works too
        assert [r["value"]["id"] for r in usdc] == ["usdc:0", "usdc:2", "usdc:3"]  # key order
        since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(middle / 1000))
        since += f".{middle % 1000:03d}Z"
        assert [r["value"]["id"] for r in tail("monitor.matches", "--since", since)] == ["usdc:3"]
        assert tail("monitor.matches") == []  # from the end: nothing new
        assert len(tail("monitor.matches", "--from-beginning", "--count", "2")) == 2
        text = vigil_cli("tail", "monitor.matches", "--from-beginning", "--exit", env=env)
        assert text.returncode == 0 and len(text.stdout.splitlines()) == 4
        assert all(
            " key=" in line and '"matchReasons"' in line for line in text.stdout.splitlines()
        )
        both = vigil_cli("tail", "dlq", "--from-beginning", "--since", "1h", env=env)
        assert both.returncode == 2 and "give one" in both.stderr and both.stdout == ""


def test_topics_documents_every_public_topic_as_json(settings: Settings) -> None:
    done = vigil_cli("topics", "--format", "json", env={"VIGIL_TOPIC_PREFIX": "acme"})
    assert done.returncode == 0, done.stderr
    listed = {t["topic"]: t for t in json.loads(done.stdout)}
    assert set(listed) == {f"acme.{t.suffix}" for t in CATALOGUE}
    matches = listed["acme.monitor.matches"]
    assert matches["subject"] == "acme.monitor.matches-value"
    assert matches["schema"] == "vigil.Match" and matches["key"] == "monitor_id"
    assert matches["order"] == "in order per key (the key picks the partition)"
    assert matches["kept"] == "30 days" and matches["writer"].startswith("vigil worker")
    assert listed["acme.config.monitors"]["kept"] == "compacted"
    assert all(t["writer"] and t["order"] and t["what"] for t in listed.values())
