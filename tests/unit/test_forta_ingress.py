"""Forta Local Mode: scan-node JWTs, alert records from real payloads, all-or-nothing batches."""

import base64
import json
from typing import Any

import pytest
from eth_keys.datatypes import PrivateKey, Signature
from eth_utils.crypto import keccak

from tests.helpers import FIXTURES, load_json
from vigil.schemas.forta import alert_record, alert_view
from vigil.streams.forta.auth import AuthError, UsedTokens, authenticate
from vigil.streams.forta.ingress import LocalModeIngress
from vigil.testing import ManualClock, scan_node_jwt, sign_eth_jwt

NODE_KEY = b"\x07" * 32
NODE = PrivateKey(NODE_KEY).public_key.to_checksum_address().lower()
OTHER_KEY = b"\x09" * 32
NOW = 1_700_000_000.0
GRAPHQL = FIXTURES / "forta" / "graphql-alerts-response.json"


def api_alerts() -> list[dict[str, Any]]:
    return load_json(GRAPHQL)["data"]["alerts"]["alerts"]  # type: ignore[no-any-return]


def bearer(key: bytes = NODE_KEY, **claims: Any) -> str:
    return "Bearer " + scan_node_jwt(key, now=NOW, **claims)


def check(authorization: str | None, token: str | None = None, now: float = NOW) -> str | None:
    return authenticate(authorization, scan_nodes=frozenset({NODE}), shared_token=token, now=now)


def test_a_node_faithful_token_is_accepted() -> None:
    assert check(bearer()) == NODE
    assert check("Bearer shared-one", token="shared-one") is None


def test_the_token_is_built_as_forta_core_go_builds_it() -> None:
    """Keccak-256 over header.payload, no prefix; 65-byte r||s||v with v 0/1."""
    header, payload, signature = bearer().removeprefix("Bearer ").split(".")
    raw = base64.urlsafe_b64decode(signature + "==")
    assert json.loads(base64.urlsafe_b64decode(header + "==")) == {"alg": "ETH", "typ": "JWT"}
    assert len(raw) == 65 and raw[64] in (0, 1)
    public = Signature(raw).recover_public_key_from_msg_hash(keccak(f"{header}.{payload}".encode()))
    assert public.to_checksum_address().lower() == NODE
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    assert claims["nbf"] == NOW - 30 and claims["exp"] == NOW + 30 and claims["iat"] == NOW
    assert claims["localMode"] == "true" and claims["sub"].lower() == NODE and claims["jti"]


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (None, "expected an Authorization: Bearer"),
        ("Basic abc", "expected an Authorization: Bearer"),
        ("Bearer not-a-jwt", "not a JWT"),
        ("Bearer YWJj.YWJj.YWJj", "not JSON"),  # base64url of "abc"
        ("Bearer a.b.c", "not base64url"),
        (bearer(OTHER_KEY), "not signed by a configured scan node"),
        (bearer(**{"bot-id": "0x" + "ab" * 32}), "minted for a bot"),
        (bearer(exp=NOW + 10 * 365 * 86400), "over 60 s"),
        (bearer(exp=None), "exp claim must be a number, got NoneType"),
        (bearer(exp=True), "exp claim must be a number, got bool"),
        (bearer(iat=None), "iat claim must be a number"),
        (bearer(nbf=NOW + 31, exp=NOW + 60), "not valid yet"),
        (bearer(iat=NOW + 31, nbf=NOW, exp=NOW + 60), "issued in the future"),
        (bearer(localMode=None), 'lacks the localMode: "true" claim'),
        (bearer(localMode=True), 'lacks the localMode: "true" claim'),
        (bearer(jti=""), "no jti"),
        (bearer(sub="0x" + "1" * 40), "subject is not its signer"),
        (bearer(sub=None), "subject is not its signer"),
    ],
)
def test_bad_tokens_are_refused_with_a_reason(authorization: str | None, message: str) -> None:
    with pytest.raises(AuthError, match=message):
        check(authorization)


def test_a_token_without_localmode_or_with_another_alg_is_refused() -> None:
    node_claims = {"jti": "1", "sub": NODE, "iat": NOW, "nbf": NOW - 30, "exp": NOW + 30}
    with pytest.raises(AuthError, match="localMode"):
        check("Bearer " + sign_eth_jwt(NODE_KEY, node_claims))
    header = base64.urlsafe_b64encode(b'{"alg":"ES256K"}').rstrip(b"=").decode()
    _, payload, signature = bearer().removeprefix("Bearer ").split(".")
    with pytest.raises(AuthError, match="alg ETH, got alg 'ES256K'"):
        check(f"Bearer {header}.{payload}.{signature}")
    with pytest.raises(AuthError, match="65-byte"):
        check(f"Bearer {bearer().removeprefix('Bearer ').rsplit('.', 1)[0]}.{'A' * 86}")


def test_expiry_is_checked_with_the_clock_skew_as_golang_jwt_does() -> None:
    token = bearer()  # exp = NOW + 30
    assert check(token, now=NOW + 59.9) == NODE  # within the default 30 s skew
    with pytest.raises(AuthError, match="expired"):
        check(token, now=NOW + 60)
    strict = {"scan_nodes": frozenset({NODE}), "shared_token": None, "skew": 0.0}
    with pytest.raises(AuthError, match="expired"):
        authenticate(token, now=NOW + 30, **strict)  # type: ignore[arg-type]
    assert authenticate(token, now=NOW + 29.9, **strict) == NODE  # type: ignore[arg-type]
    with pytest.raises(AuthError, match="not valid yet"):
        authenticate(token, now=NOW - 31, **strict)  # type: ignore[arg-type]


def test_a_replayed_jti_is_refused_until_it_expires() -> None:
    used = UsedTokens()
    token = bearer()
    nodes = frozenset({NODE})
    assert authenticate(token, scan_nodes=nodes, shared_token=None, now=NOW, used=used) == NODE
    with pytest.raises(AuthError, match="used before"):
        authenticate(token, scan_nodes=nodes, shared_token=None, now=NOW + 1, used=used)
    assert authenticate(bearer(), scan_nodes=nodes, shared_token=None, now=NOW, used=used)


def test_a_tampered_payload_no_longer_recovers_the_scan_node() -> None:
    header, _, signature = bearer().removeprefix("Bearer ").split(".")
    forged = scan_node_jwt(OTHER_KEY, now=NOW, sub=NODE).split(".")[1]
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
    return LocalModeIngress(frozenset({NODE}), None, recorder, clock=ManualClock(NOW), **options)


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
    once = ingress(recorder)
    token = bearer()
    assert once.accept(token, body).status == 200
    replay = once.accept(token, body)
    assert replay.status == 401 and "used before" in replay.body["reason"]
    assert len(recorder.batches) == 1
    recorder.batches.clear()
    off = LocalModeIngress(frozenset(), None, recorder)
    assert off.accept(bearer(), body).status == 503
    assert recorder.batches == []
