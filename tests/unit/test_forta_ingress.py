"""Forta Local Mode: scan-node JWTs, alert records from real payloads, all-or-nothing batches."""

import json
from typing import Any

import pytest
from eth_keys.datatypes import PrivateKey

from tests.helpers import FIXTURES, load_json
from vigil.streams.forta.auth import AuthError, authenticate
from vigil.streams.forta.ingress import LocalModeIngress
from vigil.streams.forta.records import alert_record, alert_view
from vigil.testing import scan_node_jwt

NODE_KEY = b"\x07" * 32
NODE = PrivateKey(NODE_KEY).public_key.to_checksum_address().lower()
OTHER_KEY = b"\x09" * 32
NOW = 1_700_000_000.0
GRAPHQL = FIXTURES / "forta" / "graphql-alerts-response.json"


def api_alerts() -> list[dict[str, Any]]:
    return load_json(GRAPHQL)["data"]["alerts"]["alerts"]  # type: ignore[no-any-return]


def bearer(key: bytes = NODE_KEY, **claims: Any) -> str:
    return "Bearer " + scan_node_jwt(key, {"sub": NODE, "exp": NOW + 60, **claims})


def check(authorization: str | None, token: str | None = None) -> str | None:
    return authenticate(authorization, scan_nodes=frozenset({NODE}), shared_token=token, now=NOW)


def test_a_token_signed_by_a_configured_scan_node_is_accepted() -> None:
    assert check(bearer()) == NODE
    token = "Bearer " + scan_node_jwt(NODE_KEY, {"exp": NOW + 60}, alg="ETH")
    assert check(token) == NODE
    assert check("Bearer shared-one", token="shared-one") is None


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (None, "expected an Authorization: Bearer"),
        ("Basic abc", "expected an Authorization: Bearer"),
        ("Bearer not-a-jwt", "not a JWT"),
        ("Bearer YWJj.YWJj.YWJj", "not JSON"),  # base64url of "abc"
        ("Bearer a.b.c", "not base64url"),
        (bearer(OTHER_KEY), "not signed by a configured scan node"),
        (bearer(exp=NOW - 1), "expired"),
        (bearer(sub="0x" + "1" * 40), "subject is not its signer"),
    ],
)
def test_bad_tokens_are_refused_with_a_reason(authorization: str | None, message: str) -> None:
    with pytest.raises(AuthError, match=message):
        check(authorization)


def test_a_tampered_payload_no_longer_recovers_the_scan_node() -> None:
    header, _, signature = bearer().removeprefix("Bearer ").split(".")
    forged = scan_node_jwt(OTHER_KEY, {"sub": NODE, "exp": NOW + 6000}).split(".")[1]
    with pytest.raises(AuthError):
        check(f"Bearer {header}.{forged}.{signature}")


def test_api_alerts_become_records_and_views_with_the_legacy_names() -> None:
    records = [alert_record(a, origin="api", received_at=1) for a in api_alerts()]
    assert len({r["hash"] for r in records}) == 5
    first = records[0]
    assert (first["alertId"], first["severity"], first["findingType"]) == (
        "FORTA_5",
        "CRITICAL",
        "EXPLOIT",
    )
    assert first["source"]["bot"]["id"].startswith("0x55708e28")
    view = alert_view(first)
    assert view["alert_id"] == "FORTA_5" and view["type"] == "EXPLOIT"
    assert view["chain_Id"] == 1 and view["scanner_count"] == 1
    assert view["agent"]["id"] == first["source"]["bot"]["id"]
    novel = alert_record(
        {**api_alerts()[0], "severity": "APOCALYPTIC"}, origin="api", received_at=1
    )
    assert novel["severity"] == "UNKNOWN"  # a value Forta adds later is kept, not refused


class Recorder:
    def __init__(self) -> None:
        self.batches: list[tuple[list[dict[str, Any]], list[dict[str, Any]]]] = []

    def __call__(self, alerts: list[dict[str, Any]], metrics: list[dict[str, Any]]) -> None:
        self.batches.append((alerts, metrics))


def ingress(recorder: Recorder, **options: Any) -> LocalModeIngress:
    return LocalModeIngress(frozenset({NODE}), None, recorder, clock=lambda: NOW, **options)


def test_a_valid_batch_is_published_whole() -> None:
    recorder = Recorder()
    metrics = [{"botId": "0xAB", "timestamp": "t", "metrics": [{"name": "m", "count": 3}]}]
    body = json.dumps({"alerts": api_alerts(), "metrics": metrics}).encode()
    answer = ingress(recorder).accept(bearer(), body)
    assert (answer.status, answer.body) == (200, {"accepted": 5, "metrics": 1})
    [(alerts, published_metrics)] = recorder.batches
    assert {a["origin"] for a in alerts} == {"local-mode"} and alerts[0]["scanNode"] == NODE
    assert published_metrics[0]["botId"] == "0xab" and published_metrics[0]["count"] == 3.0


@pytest.mark.parametrize(
    ("change", "status", "reason"),
    [
        (lambda b: b"{not json", 400, "body: not JSON"),
        (lambda b: json.dumps({"alerts": {"a": 1}}).encode(), 400, "alerts: expected a list"),
        (
            lambda b: json.dumps({"alerts": [*api_alerts(), {"hash": "0x1"}]}).encode(),
            400,
            "alerts[5].alertId: is required",
        ),
        (
            lambda b: json.dumps(
                {"alerts": [{**api_alerts()[0], "source": {"block": {"chainId": "x"}}}]}
            ).encode(),
            400,
            "alerts[0].source.block.chainId: expected an integer",
        ),
        (lambda b: json.dumps({"alerts": api_alerts() * 3}).encode(), 413, "over the 10 limit"),
    ],
)
def test_bad_batches_name_the_field_and_publish_nothing(
    change: Any, status: int, reason: str
) -> None:
    recorder = Recorder()
    answer = ingress(recorder, max_alerts=10).accept(bearer(), change(b""))
    assert answer.status == status and reason in answer.body["reason"]
    assert recorder.batches == []


def test_bad_auth_is_401_and_an_unconfigured_ingress_is_503() -> None:
    recorder = Recorder()
    body = json.dumps({"alerts": api_alerts()}).encode()
    assert ingress(recorder).accept(bearer(OTHER_KEY), body).status == 401
    off = LocalModeIngress(frozenset(), None, recorder)
    assert off.accept(bearer(), body).status == 503
    assert recorder.batches == []
