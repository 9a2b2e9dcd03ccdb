"""A Forta scan node in Local Mode → vigil's webhook → Forta monitor → channel → ClickHouse."""

import json
from pathlib import Path

import httpx
import pytest
from eth_keys.datatypes import PrivateKey

from tests.e2e.test_notifications import Setup, start
from tests.helpers import FIXTURES, load_json
from vigil.demo.chain import Anvil
from vigil.testing import scan_node_jwt, wait_for

pytestmark = pytest.mark.e2e
NODE_KEY = b"\x21" * 32
BOT = "0x55708e28820c86a69a09b6858ee6f2b061dc7bd282651ad43d25522cab6e811b"


def test_a_local_mode_alert_is_matched_notified_once_and_recorded(
    tmp_path: Path, kafka: str, anvil: Anvil, prefix: str
) -> None:
    node = PrivateKey(NODE_KEY).public_key.to_checksum_address()
    monitor = (
        f"name: critical alerts\ntype: forta\nscan_node: '{node}'\n"
        "min_severity: high\nchannels: [hook]\n"
    )
    stack, token, hooks = start(
        tmp_path,
        kafka,
        anvil,
        prefix,
        {},
        {"hook": {}},
        monitor_files={"critical": monitor},
        forta_scan_nodes=node,
    )
    try:
        setup = Setup(stack, token, anvil, hooks)
        batch = {
            "alerts": load_json(FIXTURES / "forta" / "graphql-alerts-response.json")["data"][
                "alerts"
            ]["alerts"]
        }
        url = f"{stack.settings.api_url}/forta/v1/alerts"
        bearer = {"Authorization": "Bearer " + scan_node_jwt(NODE_KEY)}
        answer = httpx.post(url, json=batch, headers=bearer, timeout=30)
        assert (answer.status_code, answer.json()["accepted"]) == (200, 5)
        replayed = httpx.post(url, json=batch, headers=bearer, timeout=30)
        assert replayed.status_code == 401  # the same jti twice: a replayed request
        fresh = {"Authorization": "Bearer " + scan_node_jwt(NODE_KEY)}  # the node retries
        assert httpx.post(url, json=batch, headers=fresh, timeout=30).status_code == 200
        forged = {"Authorization": "Bearer " + scan_node_jwt(b"\x22" * 32, sub=node)}
        assert httpx.post(url, json=batch, headers=forged, timeout=30).status_code == 401

        wait_for(lambda: stack.check() or hooks["hook"].received, 60, "the webhook POST")
        [post] = hooks["hook"].received
        [event] = post.json()["events"]
        assert event["alert"]["alertId"] == "FORTA_5" and event["alert"]["alert_id"] == "FORTA_5"
        assert event["matchReasons"] == [{"type": "severity", "value": "CRITICAL"}]
        assert event["sentinel"]["name"] == "critical alerts"
        rows = wait_for(
            lambda: (
                setup.sql(
                    "SELECT (SELECT count() FROM forta_alerts FINAL), "
                    "(SELECT count() FROM matches FINAL), "
                    "(SELECT countIf(status = 'SENT') FROM deliveries FINAL)"
                )
                == [[5, 1, 1]]
                or None
            ),
            60,
            "5 alerts, 1 match, 1 delivery in ClickHouse",
        )
        assert rows
        assert len(hooks["hook"].received) == 1  # the repeated batch matched nothing new
        stored = setup.sql("SELECT event FROM matches FINAL WHERE monitor_id = 'critical'")
        assert json.loads(stored[0][0])["alert"]["source"]["bot"]["id"] == BOT
    finally:
        stack.stop()
        for hook in hooks.values():
            hook.stop()
