import json
from typing import Any

import pytest

from tests.helpers import FIXTURES, load_json
from vigil.connectors.notify.webhook import sign, verify
from vigil.schemas.events import match_event


def golden_match() -> dict[str, Any]:
    return load_json(FIXTURES / "avro" / "Match.json")  # type: ignore[no-any-return]


def test_signature_is_hmac_of_timestamp_and_body() -> None:
    body = b'{"events": []}'
    signature = sign("k", "1700000000", body)
    assert (
        signature
        == "sha256=" + __import__("hmac").new(b"k", b"1700000000." + body, "sha256").hexdigest()
    )
    assert verify("k", "1700000000", body, signature)
    assert not verify("k", "1700000001", body, signature)
    assert not verify("other", "1700000000", body, signature)


def test_event_has_the_hosted_service_shape() -> None:
    event = match_event(golden_match())
    reference = load_json(FIXTURES / "monitor-webhook-body.json")["events"][0]
    missing = set(reference) - set(event)
    assert missing == set(), missing
    assert set(reference["transaction"]) <= set(event["transaction"])
    assert set(reference["sentinel"]) <= set(event["sentinel"])
    reason = event["matchReasons"][0]
    assert set(reference["matchReasons"][0]) <= set(reason)
    assert isinstance(reason["args"], list) and isinstance(reason["params"], dict)
    assert event["blockNumber"] == hex(golden_match()["blockNumber"])
    assert event["transaction"]["status"] == "0x1"
    json.dumps(event)  # plain JSON all the way down


def test_webhook_signs_with_the_time_of_its_injected_clock() -> None:
    import asyncio

    import httpx

    from vigil.config.channels import CHANNEL
    from vigil.connectors.notify.channels import build_channel
    from vigil.connectors.notify.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER
    from vigil.settings import load_settings
    from vigil.testing import ManualClock

    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    config = CHANNEL.validate_python(
        {"alias": "w", "type": "webhook", "url": "http://receiver.invalid/hook", "secret": "s"}
    )
    clock = ManualClock(1_800_000_000)

    async def run() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
            channel = build_channel(config, load_settings(secrets={"s": "k"}), client, clock)
            assert (await channel.send([match_event(golden_match())], "r1")).ok
            clock.advance(42)
            assert (await channel.send([match_event(golden_match())], "r2")).ok

    asyncio.run(run())
    stamps = [request.headers[TIMESTAMP_HEADER] for request in seen]
    assert stamps == ["1800000000", "1800000042"]
    for request, stamp in zip(seen, stamps, strict=True):
        assert verify("k", stamp, request.content, request.headers[SIGNATURE_HEADER])


def test_every_channel_type_has_a_registered_channel_that_states_its_capabilities() -> None:
    from vigil.config.channels import CHANNEL_TYPES
    from vigil.connectors.notify.channels import CHANNELS

    assert set(CHANNELS) == set(CHANNEL_TYPES)
    assert {kind for kind, cls in CHANNELS.items() if cls.chat} == {"slack", "discord", "telegram"}
    assert {kind for kind, cls in CHANNELS.items() if not cls.retractable} == {"datadog"}
    assert {kind for kind, cls in CHANNELS.items() if not cls.linked} == {"webhook"}
    assert {kind for kind, cls in CHANNELS.items() if cls.batched} == {"webhook", "datadog"}


def test_a_task_sending_to_a_paused_alias_gets_an_error() -> None:
    from pathlib import Path

    from vigil.config.channels import CHANNEL
    from vigil.config.loader import LoadedChannel
    from vigil.settings import load_settings
    from vigil.streams.task_notify import RunNotices

    run = {"runId": "r", "taskId": "t", "taskName": "t", "version": "v", "trigger": "manual"}
    notices = RunNotices(load_settings(), "127.0.0.1:9", None, None, run)  # type: ignore[arg-type]

    def channel(name: str, paused: bool) -> LoadedChannel:
        config = {"alias": "ops", "type": "slack", "url": "http://x", "paused": paused}
        return LoadedChannel(name, CHANNEL.validate_python(config), Path(f"{name}.yaml"))

    notices._channels = {"ops": [channel("a", True), channel("b", False)]}
    assert [c.id for c in notices.channels("ops")] == ["b"]  # the paused one is left out
    notices._channels = {"ops": [channel("a", True)]}
    with pytest.raises(ValueError, match="alias 'ops' is paused"):
        notices.channels("ops")
