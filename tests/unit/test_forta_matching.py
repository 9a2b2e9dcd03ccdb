"""Forta monitors (SPEC C6): source filters, alert id OR severity, scanner count, events."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import FIXTURES, load_json
from vigil.config.loader import load_monitor_file
from vigil.config.models import FortaMonitorConfig
from vigil.errors import ConfigError
from vigil.processors.forta import FortaMatcher, FortaMonitor
from vigil.schemas.events import match_event
from vigil.schemas.forta import alert_record

RESPONSE = FIXTURES / "forta" / "graphql-alerts-response.json"
BOT_A = "0x55708e28820c86a69a09b6858ee6f2b061dc7bd282651ad43d25522cab6e811b"  # FORTA_5, CRITICAL
ADDRESS = "0x98883145049dec03c00cb7708cbc938058802520"


def alerts() -> list[dict[str, Any]]:
    raw = load_json(RESPONSE)["data"]["alerts"]["alerts"]
    return [alert_record(a, origin="api", received_at=1_000) for a in raw]


def matched(monitor: dict[str, Any], records: list[dict[str, Any]] | None = None) -> list[str]:
    config = FortaMonitorConfig.model_validate({"name": "f", "type": "forta", **monitor})
    matcher = FortaMatcher([FortaMonitor("f", config, 1)])
    return [m["alert"]["alertId"] for r in (records or alerts()) for m in matcher.match(r)]


def test_bot_ids_and_addresses_select_the_source() -> None:
    assert matched({"bot_ids": [BOT_A]}) == ["FORTA_5"]
    with_address = alerts()
    with_address[1] = {**with_address[1], "addresses": [ADDRESS]}
    assert matched({"addresses": [ADDRESS]}, with_address) == ["FORTA-1"]
    assert matched({"bot_ids": [BOT_A], "addresses": [ADDRESS]}, with_address) == [
        "FORTA_5",
        "FORTA-1",
    ]


def test_alert_ids_or_minimum_severity() -> None:
    bots = {"bot_ids": [a["source"]["bot"]["id"] for a in alerts()]}
    assert len(matched(bots)) == 5
    assert matched({**bots, "alert_ids": ["FORTA_5"]}) == ["FORTA_5"]
    assert matched({**bots, "min_severity": "high"}) == ["FORTA_5"]  # CRITICAL >= HIGH
    assert matched({**bots, "min_severity": "LOW"}) == ["FORTA_5"] + ["FORTA-1"] * 4
    either = matched({**bots, "alert_ids": ["FORTA-1"], "min_severity": "CRITICAL"})
    assert sorted(either) == ["FORTA-1"] * 4 + ["FORTA_5"]


def test_a_named_network_takes_only_its_own_chains_alerts() -> None:
    polygon = [{**a, "chainId": 137} for a in alerts()]
    assert {a["chainId"] for a in alerts()} == {1}
    assert matched({"bot_ids": [BOT_A], "network": "mainnet"}) == ["FORTA_5"]
    assert matched({"bot_ids": [BOT_A], "network": "mainnet"}, polygon) == []
    assert matched({"bot_ids": [BOT_A]}, polygon) == ["FORTA_5"]  # no network: every chain


def test_severity_ordering_and_scanner_count() -> None:
    bots = {"bot_ids": [BOT_A]}
    ordered = ["INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL"]
    [critical] = alerts()[:1]
    for rank, minimum in enumerate(ordered):
        for level in ordered:
            alert = {**critical, "severity": level}
            expected = ordered.index(level) >= rank
            assert bool(matched({**bots, "min_severity": minimum}, [alert])) == expected
    assert matched({**bots, "min_scanner_count": 2}) == []
    assert matched({**bots, "min_scanner_count": 2}, [{**critical, "scanNodeCount": 3}])


def test_local_mode_monitors_filter_by_scan_node() -> None:
    node = "0x1a642f0e3c3af545e7acbd38b07251b3990914f1"
    local = [{**a, "scanNode": node, "origin": "local-mode"} for a in alerts()]
    assert len(matched({"scan_node": node}, local)) == 5
    assert matched({"scan_node": "0x" + "2" * 40}, local) == []
    with pytest.raises(ValueError, match="filters by scan node, not bot_ids"):
        FortaMonitorConfig.model_validate(
            {"name": "x", "type": "forta", "scan_node": node, "bot_ids": [BOT_A]}
        )


def test_the_match_event_has_the_source_documents_forta_shape() -> None:
    config = FortaMonitorConfig.model_validate(
        {"name": "forta sentinel", "type": "forta", "bot_ids": [BOT_A], "alert_ids": ["FORTA_5"]}
    )
    [match] = FortaMatcher([FortaMonitor("forta_id", config, 1)]).match(alerts()[0])
    event = match_event(match)
    assert event["matchReasons"] == [{"type": "alert-id", "value": "FORTA_5"}]
    assert event["sentinel"]["agents"] == [BOT_A] and event["sentinel"]["id"] == "forta_id"
    assert set(event["sentinel"]) >= {"id", "name", "addresses", "agents", "network", "chainId"}
    assert "value" not in event  # always undefined for Forta sentinels
    alert = event["alert"]
    assert alert["alertId"] == alert["alert_id"] == "FORTA_5"
    assert alert["findingType"] == alert["type"] == "EXPLOIT"
    assert alert["scanNodeCount"] == alert["scanner_count"] == 1
    assert alert["chainId"] == alert["chain_Id"] == 1
    assert alert["source"]["bot"]["id"] == alert["agent"]["id"] == BOT_A
    json.dumps(event)


def test_monitor_files_and_the_test_command(tmp_path: Path) -> None:
    path = tmp_path / "forta.yaml"
    path.write_text(f"name: critical\ntype: forta\nbot_ids: ['{BOT_A}']\nmin_severity: high\n")
    assert load_monitor_file(path).is_forta
    command = ["monitors", "test", str(path), "--alerts", str(RESPONSE), "--format", "json"]
    done = subprocess.run(
        [sys.executable, "-m", "vigil", *command],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    [event] = json.loads(done.stdout)
    assert event["alert"]["alertId"] == "FORTA_5"
    assert event["matchReasons"] == [{"type": "severity", "value": "CRITICAL"}]
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: none\ntype: forta\nalert_ids: [X]\n")
    with pytest.raises(
        ConfigError, match=r"bad.yaml: monitor 'none'.*give bot_ids and/or addresses"
    ):
        load_monitor_file(bad)
