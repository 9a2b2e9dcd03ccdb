"""Forta Local Mode over HTTP into Kafka: a signed batch is recorded once, a bad one never."""

import json
from typing import Any

import httpx
import pytest

from tests.helpers import FIXTURES, ApiServer, api_app, load_json, read_topic
from vigil.schemas.codec import Codec
from vigil.schemas.registry import SchemaStore
from vigil.settings import Settings
from vigil.streams.forta.ingress import LocalModeIngress, kafka_publisher
from vigil.streams.kafka import ensure_topics
from vigil.testing import scan_node_jwt

pytestmark = pytest.mark.integration
KEY = b"\x11" * 32


def test_signed_batches_reach_the_alert_topic_and_bad_ones_record_nothing(
    settings: Settings, kafka: str
) -> None:
    from eth_keys.datatypes import PrivateKey

    node = PrivateKey(KEY).public_key.to_checksum_address()
    ensure_topics(settings, kafka)
    codec = Codec(SchemaStore())
    ingress = LocalModeIngress(
        frozenset({node.lower()}), None, kafka_publisher(settings, kafka, codec)
    )
    alerts = load_json(FIXTURES / "forta" / "graphql-alerts-response.json")["data"]["alerts"]
    body: dict[str, Any] = {
        "alerts": alerts["alerts"],
        "metrics": [{"botId": "0xAA", "timestamp": "t", "metrics": [{"name": "tx", "sum": 4}]}],
    }
    with ApiServer(api_app(forta=ingress)) as api:
        url = f"{api.url}/forta/v1/alerts"
        bad = scan_node_jwt(b"\x12" * 32, sub=node)
        bot = scan_node_jwt(KEY, **{"bot-id": "0x" + "ab" * 32})
        minted = httpx.post(url, json=body, headers={"Authorization": f"Bearer {bot}"})
        assert (minted.status_code, minted.json()["reason"]) == (
            401,
            "the token was minted for a bot (bot-id claim), not by the scan node",
        )
        assert (
            httpx.post(url, json=body, headers={"Authorization": f"Bearer {bad}"}).status_code
            == 401
        )
        broken = {"alerts": [*alerts["alerts"], {"hash": 5}]}
        token = scan_node_jwt(KEY)
        answer = httpx.post(url, json=broken, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 400
        assert answer.json()["reason"] == "alerts[5].hash: expected a string, got int"
        big = httpx.post(
            url,
            content=b"x" * (11 * 1024 * 1024),
            headers={"Authorization": f"Bearer {scan_node_jwt(KEY)}"},
        )
        assert big.status_code == 413
        ok = httpx.post(url, json=body, headers={"Authorization": f"Bearer {scan_node_jwt(KEY)}"})
        assert (ok.status_code, ok.json()) == (200, {"accepted": 5, "metrics": 1})
    recorded = read_topic(settings, codec, kafka, "forta.alerts", "FortaAlert")
    assert sorted(r["hash"] for r in recorded) == sorted(a["hash"] for a in alerts["alerts"])
    assert {r["scanNode"] for r in recorded} == {node.lower()}
    [metric] = read_topic(settings, codec, kafka, "forta.metrics", "FortaBotMetric")
    assert (metric["botId"], metric["sum"]) == ("0xaa", 4.0)
    json.dumps(recorded, default=str)
