"""Every channel against a local server that checks what the real API checks; e-mail over a
real SMTP server (aiosmtpd)."""

import asyncio
import email
import email.policy
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.helpers import FIXTURES, load_json
from vigil.clock import Clock
from vigil.config.channels import CHANNEL
from vigil.connectors.notify import opsgenie
from vigil.connectors.notify.channels import build_channel
from vigil.connectors.notify.datadog import tag
from vigil.connectors.notify.delivery import Messages, Outcome
from vigil.connectors.notify.render import with_links
from vigil.schemas.events import match_event
from vigil.settings import Settings, load_settings
from vigil.stack.broker import free_port
from vigil.testing import WebhookReceiver

pytestmark = pytest.mark.integration
ROUTING_KEY = "R" * 32
SECRETS = {
    "slack-url": "",  # set per test to the receiver's URL
    "tg-token": "123456:ABC-telegram-token",
    "dd-key": "datadog-api-key",
    "pd-key": ROUTING_KEY,
    "og-key": "opsgenie-api-key",
    "smtp-password": "s3cret",
}


def event() -> dict[str, Any]:
    match = load_json(FIXTURES / "avro" / "Match.json")
    return with_links(match_event(match), "https://etherscan.io/tx/{hash}")


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver().start()
    yield server
    server.stop()


def settings_for(receiver: WebhookReceiver, **secrets: str) -> Settings:
    base = f"http://127.0.0.1:{receiver.port}"
    return load_settings(
        secrets={**SECRETS, "slack-url": receiver.url, **secrets},
        telegram_api_url=base,
        datadog_api_url=base,
        pagerduty_api_url=base,
        opsgenie_api_url=base,
    )


def send(config: dict[str, Any], settings: Settings, events: list[dict[str, Any]]) -> Outcome:
    channel_config = CHANNEL.validate_python({"max_attempts": 4, "timeout": 3, **config})

    async def run() -> Outcome:
        async with httpx.AsyncClient() as client:
            sender = build_channel(channel_config, settings, client)
            sender._base, sender._max = 0.01, 0.05  # fast retries in tests
            messages = Messages.choose(None, channel_config.template, chat=True)
            return await sender.send(events, "req-1", messages)

    return asyncio.run(run())


def test_slack_incoming_webhook(receiver: WebhookReceiver) -> None:
    config = {"alias": "s", "type": "slack", "url_secret": "slack-url"}
    outcome = send(config, settings_for(receiver), [event()])
    assert outcome.ok and outcome.status == 200
    [post] = receiver.received
    assert post.path == "/hooks/vigil"
    assert post.headers["Content-Type"] == "application/json"
    body = post.json()
    assert body["mrkdwn"] is True and set(body) == {"text", "mrkdwn"}
    assert body["text"].startswith("*USDC large transfers* matched on mainnet")
    assert "<https://etherscan.io/tx/0x" in body["text"]  # Slack's link syntax


def test_discord_webhook_pings_no_one(receiver: WebhookReceiver) -> None:
    config = {"alias": "d", "type": "discord", "url": receiver.url, "username": "vigil"}
    loud = {**event(), "monitor": {**event()["monitor"], "name": "@everyone " + "x" * 3000}}
    outcome = send(config, settings_for(receiver), [loud])
    assert outcome.ok
    body = receiver.received[0].json()
    assert body["allowed_mentions"] == {"parse": []} and body["username"] == "vigil"
    assert len(body["content"]) <= 2000 and body["content"].endswith("… (truncated)")


def test_telegram_send_message(receiver: WebhookReceiver) -> None:
    receiver.reply = b'{"ok": true, "result": {"message_id": 1}}'
    config = {"alias": "t", "type": "telegram", "bot_token_secret": "tg-token", "chat_id": -100123}
    outcome = send(config, settings_for(receiver), [event()])
    assert outcome.ok
    [post] = receiver.received
    assert post.path == f"/bot{SECRETS['tg-token']}/sendMessage"
    body = post.json()
    assert body["chat_id"] == "-100123" and body["parse_mode"] == "MarkdownV2"
    assert body["text"].startswith("*USDC large transfers* matched on mainnet \\(block 0x")
    assert body["link_preview_options"] == {"is_disabled": True}  # Bot API 7.0
    assert "disable_web_page_preview" not in body
    # a template whose values are all missing renders empty, which Telegram refuses: the
    # default message goes instead
    receiver.received.clear()
    empty = {**config, "template": {"body": "{{ monitor.nothing }}"}}
    assert send(empty, settings_for(receiver), [event()]).ok
    assert receiver.received[0].json()["text"].startswith("*USDC large transfers* matched")
    receiver.reply = b'{"ok": false, "description": "Bad Request: chat not found"}'
    failed = send(config, settings_for(receiver), [event()])
    assert not failed.ok and "chat not found" in (failed.error or "")


class Frozen(Clock):
    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


def send_all(
    config: dict[str, Any], settings: Settings, batches: list[list[dict[str, Any]]], clock: Clock
) -> list[Outcome]:
    """Several deliveries through one channel, as the worker makes them."""
    channel_config = CHANNEL.validate_python({"max_attempts": 1, "timeout": 3, **config})

    async def run() -> list[Outcome]:
        async with httpx.AsyncClient() as client:
            sender = build_channel(channel_config, settings, client, clock)
            messages = Messages.choose(None, None, chat=True)
            return [
                await sender.send(events, f"req-{i}", messages) for i, events in enumerate(batches)
            ]

    return asyncio.run(run())


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_datadog_count_metric_per_monitor_and_network(
    receiver: WebhookReceiver, version: str
) -> None:
    config = {
        "alias": "dd",
        "type": "datadog",
        "api_key_secret": "dd-key",
        "metric_prefix": "defender.",
        "api_version": version,
    }
    old = event()  # a block from 2023: Datadog drops points over an hour old
    outcome = send(config, settings_for(receiver), [old, old, old])
    assert outcome.ok
    [post] = receiver.received
    assert post.path == f"/api/{version}/series"
    assert post.headers["DD-API-KEY"] == SECRETS["dd-key"]
    [series] = post.json()["series"]
    assert series["metric"] == "defender.sentinel"
    assert series["tags"] == [
        "network:mainnet",
        "monitor:usdc_large_transfers",
        "sentinel:usdc_large_transfers",
        f"monitor_id:{old['monitor']['id']}",
    ]
    [stamp] = (
        [p["timestamp"] for p in series["points"]]
        if version == "v2"
        else [p[0] for p in series["points"]]
    )
    assert abs(stamp - time.time()) < 60 and stamp - old["timestamp"] > 3600  # sent, not mined
    if version == "v2":
        assert series["type"] == 1 and series["points"] == [{"timestamp": stamp, "value": 3}]
    else:
        assert series["type"] == "count" and series["points"] == [[stamp, 3]]


def test_datadog_sends_one_total_per_second_and_monitor(receiver: WebhookReceiver) -> None:
    config = {"alias": "dd", "type": "datadog", "api_key_secret": "dd-key"}
    usdc = event()
    # a monitor whose name differs only in case and punctuation keeps its own id tag
    other = {
        **usdc,
        "monitor": {**usdc["monitor"], "id": "usdc-2", "name": "USDC Large-Transfers!"},
    }
    clock = Frozen(1_800_000_000.2)
    sent = send_all(config, settings_for(receiver), [[usdc, usdc], [usdc, other]], clock)
    clock.now = 1_800_000_001.0
    sent += send_all(config, settings_for(receiver), [[usdc]], clock)
    assert all(o.ok for o in sent)
    points = [
        (p["timestamp"], s["tags"][1], s["tags"][3], p["value"])
        for post in receiver.received
        for s in post.json()["series"]
        for p in s["points"]
    ]
    usdc_id = f"monitor_id:{usdc['monitor']['id']}"
    assert points == [
        (1_800_000_000, "monitor:usdc_large_transfers", usdc_id, 2),
        (1_800_000_000, "monitor:usdc_large-transfers", "monitor_id:usdc-2", 1),
        # the same second again: the running total, which replaces the first point
        (1_800_000_000, "monitor:usdc_large_transfers", usdc_id, 3),
        (1_800_000_001, "monitor:usdc_large_transfers", usdc_id, 1),
    ]


def test_datadog_tags_are_written_as_datadog_keeps_them() -> None:
    assert tag("monitor", "Big  Moves (USDC) ✓") == "monitor:big_moves_usdc"
    assert tag("monitor", "Ünïcode-names/ok.v2") == "monitor:ünïcode-names/ok.v2"
    assert len(tag("monitor", "x" * 500)) == 200


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_datadog_metric_from_a_task(receiver: WebhookReceiver, version: str) -> None:
    config = {"alias": "dd", "type": "datadog", "api_key_secret": "dd-key", "api_version": version}
    metric = {"type": "TASK", "task": {"id": "keeper"}, "metric": {"name": "tvl", "value": 2.5}}
    assert send(config, settings_for(receiver), [metric]).ok
    [series] = receiver.received[0].json()["series"]
    assert (series["metric"], series["tags"]) == ("tvl", ["task:keeper"])
    [point] = series["points"]
    if version == "v2":
        assert series["type"] == 3 and point["value"] == 2.5 and point["timestamp"] > 1.7e9
    else:
        assert series["type"] == "gauge" and point[1] == 2.5 and point[0] > 1.7e9


def test_pagerduty_alert_and_change_events(receiver: WebhookReceiver) -> None:
    config = {
        "alias": "pd",
        "type": "pagerduty",
        "routing_key_secret": "pd-key",
        "severity": "critical",
        "component": "{{ monitor.network }}",
        "group": "contracts",
        "class": "transfer",
        "custom_details": {"tx": "{{ hash }}"},
    }
    assert send(config, settings_for(receiver), [event()]).ok
    body = receiver.received[0].json()
    assert receiver.received[0].path == "/v2/enqueue"
    assert body["routing_key"] == ROUTING_KEY and body["event_action"] == "trigger"
    assert body["dedup_key"] == event()["id"]
    payload = body["payload"]
    assert payload["severity"] == "critical" and payload["component"] == "mainnet"
    assert payload["class"] == "transfer" and payload["group"] == "contracts"
    assert payload["summary"] == "vigil: USDC large transfers matched on mainnet"
    assert payload["custom_details"]["tx"] == event()["hash"]
    assert payload["timestamp"].endswith("Z")
    assert body["links"] == [{"href": event()["transaction"]["link"], "text": "Transaction"}]
    assert send({**config, "event_type": "change"}, settings_for(receiver), [event()]).ok
    assert receiver.received[1].path == "/v2/change/enqueue"
    assert "event_action" not in receiver.received[1].json()
    short = send(config, settings_for(receiver, **{"pd-key": "short"}), [event()])
    assert (short.ok, short.attempts) == (False, 1)  # permanent: no retries
    assert "must be 32 characters" in (short.error or "") and "short" not in (short.error or "")


def test_opsgenie_alert(receiver: WebhookReceiver) -> None:
    config = {
        "alias": "og",
        "type": "opsgenie",
        "api_key_secret": "og-key",
        "instance": "EU",
        "responders": [{"type": "team", "name": "security"}],
        "visible_to": [{"type": "user", "username": "ops@example.com"}],
        "priority": "P1",
        "entity": "{{ monitor.network }}",
        "actions": ["pause"],
        "tags": ["vigil"],
        "details": {"tx": "{{ hash }}"},
        "note": "from vigil",
        "template": {"subject": "{{ monitor.name }} " + "y" * 200},
    }
    # Opsgenie queues the request (202) and makes the alert later: SENT only once it has
    queued(receiver, [(404, NOT_YET), (200, made(True, "Created alert"))])
    outcome = send(config, settings_for(receiver), [event()])
    assert outcome.ok and outcome.status == 202
    [post] = receiver.received
    assert post.path == "/v2/alerts"
    assert post.headers["Authorization"] == f"GenieKey {SECRETS['og-key']}"
    assert receiver.fetched == ["/v2/alerts/requests/og-req-1"] * 2
    body = post.json()
    assert len(body["message"]) <= 130 and body["message"].startswith("USDC large transfers y")
    assert body["alias"] == event()["id"] and body["priority"] == "P1"
    assert body["responders"] == [{"type": "team", "name": "security"}]
    assert body["visibleTo"] == [{"type": "user", "username": "ops@example.com"}]
    assert body["entity"] == "mainnet" and body["details"] == {"tx": event()["hash"]}
    assert body["actions"] == ["pause"] and body["tags"] == ["vigil"]
    assert "Match Reason 1" in body["description"]


NOT_YET = {"message": "Request not found. It might not be processed, yet.", "took": 0.002}


def made(success: bool, status: str) -> dict[str, Any]:
    """Opsgenie's answer to GET /v2/alerts/requests/{id} once it processed the request."""
    data = {"success": success, "action": "Create", "isSuccess": success, "status": status}
    return {"data": {**data, "alertId": "a-1", "alias": event()["id"]}, "took": 0.001}


def queued(receiver: WebhookReceiver, answers: list[tuple[int, Any]]) -> None:
    receiver.statuses = [202] * 5
    receiver.reply = b'{"result": "Request will be processed", "requestId": "og-req-1"}'
    receiver.on_get = lambda path: answers.pop(0) if len(answers) > 1 else answers[0]


def test_opsgenie_refusals_and_limits(
    receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(opsgenie, "CHECKS", (0.01, 0.01, 0.01))
    config = {
        "alias": "og",
        "type": "opsgenie",
        "api_key_secret": "og-key",
        "details": {"hashes": "{{ hash }} " * 150, "more": "{{ hash }}", "last": "x"},
    }
    queued(receiver, [(200, made(False, "Alert could not be created: responder not found"))])
    refused = send(config, settings_for(receiver), [event()])
    assert (refused.ok, refused.attempts) == (False, 1)  # a refusal is not retried
    assert "responder not found" in (refused.error or "")
    details = receiver.received[0].json()["details"]
    # 8,000 characters in all, keys whole: the long value is cut, the later keys go
    assert list(details) == ["hashes"] and len("hashes") + len(details["hashes"]) == 8000

    queued(receiver, [(404, NOT_YET)])  # never processed: retried (the alias dedups)
    receiver.received.clear()
    late = send(config, settings_for(receiver), [event()])
    assert (late.ok, late.attempts) == (False, 4) and "had not processed" in (late.error or "")
    assert {post.json()["alias"] for post in receiver.received} == {event()["id"]}


def test_opsgenie_user_responders_are_named_by_id_or_username() -> None:
    base = {"alias": "og", "type": "opsgenie", "api_key_secret": "og-key"}
    with pytest.raises(ValueError, match="not name"):
        CHANNEL.validate_python({**base, "responders": [{"type": "user", "name": "Alice"}]})
    with pytest.raises(ValueError, match="not a username"):
        CHANNEL.validate_python({**base, "responders": [{"type": "team", "username": "a@b.c"}]})
    CHANNEL.validate_python({**base, "responders": [{"type": "user", "username": "a@b.c"}]})


def test_server_errors_are_retried_and_client_errors_are_not(receiver: WebhookReceiver) -> None:
    config = {"alias": "s", "type": "slack", "url_secret": "slack-url"}
    receiver.statuses = [500, 500, 500, 200]
    outcome = send(config, settings_for(receiver), [event()])
    assert (outcome.ok, outcome.attempts, len(receiver.received)) == (True, 4, 1)
    receiver.statuses = [429, 200]
    receiver.headers = {"Retry-After": "0.2"}
    assert send(config, settings_for(receiver), [event()]).attempts == 2
    receiver.statuses = [403]
    forbidden = send(config, settings_for(receiver), [event()])
    assert (forbidden.ok, forbidden.attempts, forbidden.status) == (False, 1, 403)


def test_missing_secrets_and_dead_servers_fail_without_leaking_credentials() -> None:
    settings = load_settings(telegram_api_url=f"http://127.0.0.1:{free_port()}", secrets={})
    config = {"alias": "t", "type": "telegram", "bot_token_secret": "tg-token", "chat_id": "1"}
    missing = send(config, settings, [event()])
    assert (missing.ok, missing.attempts) == (False, 1)
    assert "secret 'tg-token' is not set" in (missing.error or "")
    settings = load_settings(
        telegram_api_url=f"http://127.0.0.1:{free_port()}", secrets={"tg-token": "TOKEN123"}
    )
    dead = send(config, settings, [event()])
    assert not dead.ok and dead.attempts == 4
    assert "ConnectError" in (dead.error or "") and "TOKEN123" not in (dead.error or "")


def mail_config(port: int, **fields: str) -> dict[str, Any]:
    """An email channel to a local server, logging in as vigil without TLS."""
    return {
        "alias": "mail",
        "type": "email",
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "username": "vigil",
        "password_secret": "smtp-password",
        **fields,
    }


def test_email_over_smtp_with_html_and_text_parts() -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    received: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            received.append(envelope)
            return "250 OK"

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth: Any) -> Any:
        ok = auth.login == b"vigil" and auth.password == b"s3cret"
        return AuthResult(success=ok, handled=False)

    port = free_port()
    controller = Controller(
        Handler(),
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        config = mail_config(
            port,
            sender="vigil <alerts@example.com>",
            recipients="ops@example.com; sec@example.com,dev@example.com",
        )
        outcome = send(config, load_settings(secrets=SECRETS), [event()])
        assert outcome.ok, outcome.error
        [envelope] = received
        assert envelope.rcpt_tos == ["ops@example.com", "sec@example.com", "dev@example.com"]
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert message["Subject"] == "vigil: USDC large transfers matched on mainnet"
        assert message["From"] == "vigil <alerts@example.com>"
        assert message["X-Vigil-Request-Id"] == "req-1"
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        assert "Match Reason 1" in text and "<b>Match Reason 1</b>" in html
        assert '<a href="https://etherscan.io/tx/0x' in html
        denied = send(config, load_settings(secrets={"smtp-password": "wrong"}), [event()])
        assert (denied.ok, denied.attempts) == (False, 1)
        assert "authentication as 'vigil' failed" in (denied.error or "")
        assert "wrong" not in (denied.error or "")
    finally:
        controller.stop()


def test_email_login_on_a_server_that_offers_none_fails_once_naming_why() -> None:
    from aiosmtpd.controller import Controller

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            return "250 OK"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)  # no AUTH offered
    controller.start()
    try:
        config = mail_config(port, sender="alerts@example.com", recipients="ops@example.com")
        outcome = send(config, load_settings(secrets=SECRETS), [event()])
        assert (outcome.ok, outcome.attempts) == (False, 1)
        assert "offers no login (AUTH) with security: none" in (outcome.error or "")
        assert "starttls" in (outcome.error or "")
    finally:
        controller.stop()


def test_channel_settings_the_services_refuse_are_refused_at_load() -> None:
    email_base = {"alias": "m", "type": "email", "host": "h", "sender": "a@b.co"}
    tls = CHANNEL.validate_python({**email_base, "recipients": "c@d.co", "security": "tls"})
    assert tls.port == 465  # implicit TLS
    assert CHANNEL.validate_python({**email_base, "recipients": "c@d.co"}).port == 587
    plain = CHANNEL.validate_python(
        {**email_base, "recipients": "c@d.co", "security": "none", "username": "u"}
    )
    assert "login only after STARTTLS" in plain.warnings()[0]
    for name in ("Discord Alerts", "clydebot", "groundsphere", "EVERYONE!"):
        with pytest.raises(ValueError, match="Discord refuses a webhook username"):
            CHANNEL.validate_python(
                {"alias": "d", "type": "discord", "url": "http://x", "username": name}
            )
    with pytest.raises(ValueError, match="only whitespace"):
        CHANNEL.validate_python(
            {"alias": "s", "type": "slack", "url": "http://x", "template": {"body": " \n "}}
        )


def test_vigil_channels_test_sends_to_every_channel_of_the_alias(
    tmp_path: Any, receiver: WebhookReceiver
) -> None:
    import os
    import subprocess
    import sys

    other = WebhookReceiver(statuses=[404]).start()
    try:
        (tmp_path / "channels").mkdir()
        (tmp_path / "vigil.yaml").write_text("networks: {}\n")
        (tmp_path / "channels" / "a.yaml").write_text(
            f"alias: ops\ntype: webhook\nurl: {receiver.url}\nsecret: k\n"
        )
        (tmp_path / "channels" / "b.yaml").write_text(
            f"alias: ops\ntype: slack\nurl: {other.url}\n"
        )
        env = {**os.environ, "VIGIL_PROJECT_DIR": str(tmp_path), "VIGIL_SECRETS": '{"k": "v"}'}
        done = subprocess.run(
            [sys.executable, "-m", "vigil", "channels", "test", "ops"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 1  # one of the two failed, and says why
        assert "a: sent (1 attempt(s))" in done.stdout
        assert "b: failed" in done.stdout and "HTTP 404" in done.stdout
        [post] = receiver.received
        [event] = post.json()["events"]
        assert event["monitor"]["name"] == "vigil test notification"
        unknown = subprocess.run(
            [sys.executable, "-m", "vigil", "channels", "test", "nope"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert unknown.returncode == 2 and "no channel alias 'nope'" in unknown.stderr
        # with --monitor, the monitor's own message goes out
        (tmp_path / "monitors").mkdir()
        (tmp_path / "monitors" / "m.yaml").write_text(
            "name: m\nnetwork: x\naddresses: ['0x" + "11" * 20 + "']\nchannels: [ops]\n"
            "message:\n  body: 'Hello from **{{ monitor.name }}**'\n"
        )
        (tmp_path / "vigil.yaml").write_text(
            "networks:\n  x:\n    chain_id: 1\n    rpc_urls: ['http://127.0.0.1:9']\n"
        )
        other.statuses = []
        mine = subprocess.run(
            [sys.executable, "-m", "vigil", "channels", "test", "ops", "--monitor", "m"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert mine.returncode == 0, mine.stdout + mine.stderr
        assert other.received[-1].json()["text"] == "Hello from *vigil test notification*"
    finally:
        other.stop()
