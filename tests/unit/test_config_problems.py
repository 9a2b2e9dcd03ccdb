"""Load errors in plain words: unknown keys with did-you-mean, unions and choices said as
what was expected and found, no pydantic internals."""

from pathlib import Path

import pytest

from tests.helpers import USDT, write_monitor
from tests.unit.test_config import CHANNEL, monitor
from vigil.config.loader import load_monitor_file, load_project
from vigil.errors import ConfigError


def monitor_error(tmp_path: Path, text: str) -> str:
    path = write_monitor(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_monitor_file(path)
    message = str(caught.value)
    assert str(path) in message and "monitor 'm'" in message
    for internal in ("Input should", "Extra inputs", "literal[", "pydantic", "Field required"):
        assert internal not in message, message
    return message


def test_a_misspelt_key_is_named_with_the_field_it_resembles(tmp_path: Path) -> None:
    text = f"name: m\nnetwork: mainnet\nadresses: ['{USDT}']\nabi: abis/ERC20.abi.json\n"
    message = monitor_error(tmp_path, text)
    assert "monitor 'm': unknown field 'adresses'; did you mean 'addresses'?" in message
    assert "and 1 more" not in message


def test_a_nested_misspelt_key_is_named_with_its_path(tmp_path: Path) -> None:
    message = monitor_error(tmp_path, monitor("conditions:\n  event:\n    - signature: X()\n"))
    assert "monitor 'm': conditions: unknown field 'event'; did you mean 'events'?" in message


def test_an_unknown_key_like_no_field_lists_the_fields(tmp_path: Path) -> None:
    message = monitor_error(tmp_path, monitor("colour: red\n"))
    assert "unknown field 'colour'; known fields: " in message and "addresses" in message


def test_a_misspelt_choice_gets_did_you_mean(tmp_path: Path) -> None:
    message = monitor_error(tmp_path, monitor("severity: hgh\n"))
    assert "severity: expected one of 'high', 'medium', 'low'; found 'hgh'" in message
    assert "did you mean 'high'?" in message


def test_a_union_is_said_as_its_alternatives(tmp_path: Path) -> None:
    message = monitor_error(tmp_path, monitor("confirm_blocks: finalised\n"))
    assert "confirm_blocks: expected a whole number or 'safe' or 'finalized'" in message
    assert "found 'finalised'; did you mean 'finalized'?" in message


def test_a_network_field_in_vigil_yaml_names_its_path(tmp_path: Path) -> None:
    (tmp_path / "vigil.yaml").write_text(
        "networks:\n  mainnet:\n    chain_id: 1\n    rpc_urls: ['http://127.0.0.1:8545']\n"
        "    confirmations: safee\n"
    )
    (tmp_path / "channels").mkdir()
    (tmp_path / "channels" / "ops.yaml").write_text(CHANNEL)
    with pytest.raises(ConfigError) as caught:
        load_project(tmp_path)
    message = str(caught.value)
    assert "networks.mainnet.confirmations: expected a whole number or" in message
    assert "did you mean 'safe'?" in message


def test_a_wrong_type_says_what_was_expected(tmp_path: Path) -> None:
    message = monitor_error(tmp_path, monitor("paused: maybe\n"))
    assert "paused: expected true or false; found 'maybe'" in message
