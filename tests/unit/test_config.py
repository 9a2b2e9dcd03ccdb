import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import USDT, write_monitor
from vigil.config.loader import load_monitor_file, load_project
from vigil.errors import ConfigError
from vigil.settings import REPO_ROOT

NETWORK = "networks:\n  mainnet:\n    chain_id: 1\n    rpc_urls: ['http://127.0.0.1:8545']\n"
CHANNEL = "alias: ops\ntype: webhook\nurl: http://127.0.0.1:9/hook\nsecret: ops\n"


def project(
    tmp_path: Path, monitor: str, vigil_yaml: str = NETWORK, channel: str = CHANNEL
) -> Path:
    (tmp_path / "vigil.yaml").write_text(vigil_yaml)
    (tmp_path / "channels").mkdir()
    (tmp_path / "channels" / "ops.yaml").write_text(channel)
    write_monitor(tmp_path / "monitors", monitor, abi="ERC20.abi.json")
    return tmp_path


def monitor(extra: str = "", network: str = "mainnet") -> str:
    return f"name: m\nnetwork: {network}\naddresses: ['{USDT}']\nabi: abis/ERC20.abi.json\n{extra}"


def test_examples_project_loads() -> None:
    loaded = load_project(REPO_ROOT / "examples")
    assert sorted(m.id for m in loaded.monitors) == [
        "forta-phishing",
        "ownership",
        "token-calls",
        "token-transfers",
    ]
    assert list(loaded.channels) == ["ops-webhook"]
    assert loaded.config.networks["anvil"].chain_id == 31337
    assert loaded.config.networks["anvil"].traces  # the demo chain's internal calls
    token = "0x5fbdb2315678afecb367f032d93f642f64180aa3"
    by_id = {m.id: m for m in loaded.monitors}
    assert by_id["ownership"].config.addresses == [token]  # from the address book
    assert any(item.get("name") == "transfer" for item in by_id["token-calls"].abi)


def test_a_valid_project(tmp_path: Path) -> None:
    loaded = load_project(project(tmp_path, monitor("channels: [ops]\n")))
    [m] = loaded.monitors
    assert m.config.addresses == [USDT]
    assert any(item.get("name") == "Transfer" for item in m.abi)
    assert loaded.channels["ops"][0].id == "ops"


def test_unquoted_hex_address_is_restored_exactly(tmp_path: Path) -> None:
    path = write_monitor(
        tmp_path, monitor().replace(f"'{USDT}'", "0x00000000000000000000000000000000000000aa")
    )
    assert load_monitor_file(path).config.addresses == ["0x" + "0" * 38 + "aa"]


@pytest.mark.parametrize(
    ("files", "where", "message"),
    [
        ({"vigil.yaml": "networks: ["}, "vigil.yaml", "not valid YAML"),
        (
            {"vigil.yaml": "networks:\n  x:\n    chain_id: 1\n    rpc_urls: [ws://a]\n"},
            "vigil.yaml: project: networks.x.rpc_urls",
            "expected an http(s):// JSON-RPC URL",
        ),
        (
            {"monitors/monitor.yaml": monitor().replace(USDT, "0x123")},
            "monitor 'm': addresses[0]",
            "40-hex-digit address, got '0x123'",
        ),
        (
            {"monitors/monitor.yaml": "name: m\nnetwork: mainnet\n"},
            "monitor 'm': addresses",
            "is required but missing",
        ),
        (
            {"monitors/monitor.yaml": monitor("severity: urgent\n")},
            "monitor 'm': severity",
            "expected one of 'high', 'medium', 'low'; found 'urgent'",
        ),
        (
            {"monitors/monitor.yaml": monitor("colour: red\n")},
            "monitor 'm': unknown field 'colour'",
            "known fields: name, ",
        ),
        (
            {"monitors/monitor.yaml": monitor(network="goerli")},
            "monitor 'm': network",
            "unknown network 'goerli'; vigil.yaml defines: mainnet",
        ),
        (
            {"monitors/monitor.yaml": monitor("channels: [pager]\n")},
            "monitor 'm': channels",
            "unknown channel alias 'pager'; channels/ defines: ops",
        ),
        (
            {"monitors/monitor.yaml": monitor().replace("abis/ERC20.abi.json", "abis/none.json")},
            "monitor 'm': abi",
            "cannot read ABI file",
        ),
        ({"monitors/abis/ERC20.abi.json": "{not json"}, "monitor 'm': abi", "is not JSON"),
        (
            {"monitors/monitor.yaml": monitor("confirm_blocks: finalized\n")},
            "monitor 'm': confirm_blocks",
            "'finalized' needs network 'mainnet' to emit at",
        ),
        (
            {"monitors/monitor.yaml": monitor("confirm_blocks: 300\n")},
            "monitor 'm': confirm_blocks",
            "at most 250 blocks",
        ),
        (
            {"vigil.yaml": NETWORK + "    confirmations: -1\n"},
            "networks.mainnet.confirmations",
            "expected 0 or more blocks",
        ),
        (
            {"channels/ops.yaml": CHANNEL.replace("http://", "ftp://")},
            "channel 'ops': url",
            "expected an http(s):// URL",
        ),
    ],
)
def test_bad_files_name_file_object_and_field(
    tmp_path: Path, files: dict[str, str], where: str, message: str
) -> None:
    root = project(tmp_path, monitor())
    for name, text in files.items():
        (root / name).write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_project(root)
    assert where in str(caught.value)
    assert message in str(caught.value)
    assert str(root) in str(caught.value)


def test_missing_project_says_what_it_looked_for(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no vigil\.yaml in"):
        load_project(tmp_path)


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vigil", *args], capture_output=True, text=True, env=env, check=False
    )


def test_cli_reports_one_line_and_exits_non_zero(tmp_path: Path) -> None:
    root = project(tmp_path, monitor("channels: [pager]\n"))
    done = run_cli("validate", str(root))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "unknown channel alias 'pager'" in done.stderr
    assert run_cli("validate", str(REPO_ROOT / "examples")).returncode == 0


def test_cli_names_a_bad_setting(tmp_path: Path) -> None:
    done = run_cli("validate", env={"PATH": "", "VIGIL_API_BIND": "nonsense"})
    assert done.returncode == 2
    assert "VIGIL_API_BIND" in done.stderr
    assert "Traceback" not in done.stderr


def test_roles_refuse_to_start_without_a_broker() -> None:
    done = run_cli("ingest", env={"PATH": "", "VIGIL_PROJECT_DIR": str(REPO_ROOT / "examples")})
    assert done.returncode == 2
    assert "VIGIL_KAFKA_BOOTSTRAP is not set" in done.stderr


def test_every_channel_type_example_validates() -> None:
    import yaml

    from vigil.config.channels import CHANNEL, CHANNEL_TYPES

    folder = REPO_ROOT / "examples" / "channel-types"
    seen = set()
    for path in sorted(folder.glob("*.yaml")):
        channel = CHANNEL.validate_python(yaml.safe_load(path.read_text()))
        seen.add(channel.type)
        assert channel.secret_fields(), f"{path.name} names no secret"
    assert seen == set(CHANNEL_TYPES)


def test_severity_defaults_route_monitors_without_channels(tmp_path: Path) -> None:
    routes = NETWORK + "defaults:\n  high: [ops]\n"
    loaded = load_project(project(tmp_path, monitor("severity: high\n"), vigil_yaml=routes))
    assert loaded.monitors[0].config.channels == ["ops"]
    for name in ("m", "x"):
        (tmp_path / name).mkdir()
    medium = load_project(project(tmp_path / "m", monitor(), vigil_yaml=routes))
    assert medium.monitors[0].config.channels == []
    bad = NETWORK + "defaults: {low: [nope]}\n"
    with pytest.raises(ConfigError, match=r"vigil.yaml: project: defaults.low: unknown channel"):
        load_project(project(tmp_path / "x", monitor(), vigil_yaml=bad))


def test_template_problems_are_warnings_naming_file_and_field(tmp_path: Path) -> None:
    extra = "message:\n  body: '{{ blok.number }}'\n"
    loaded = load_project(project(tmp_path, monitor(extra)))
    [warning] = loaded.warnings
    assert (
        "monitor.yaml: monitor 'm': template.body: {{ blok.number }}: the event has no" in warning
    )


def test_a_telegram_body_of_values_only_and_a_plain_login_are_warned_of(tmp_path: Path) -> None:
    for name in "twxm":
        (tmp_path / name).mkdir()
    telegram = "alias: ops\ntype: telegram\nbot_token_secret: tg\nchat_id: 1\n"
    extra = "channels: [ops]\nmessage:\n  body: '**{{ monitor.name }}**'\n"
    [warning] = load_project(project(tmp_path / "t", monitor(extra), channel=telegram)).warnings
    assert "monitor.yaml: monitor 'm': template.body: only values" in warning
    assert "Telegram refuses" in warning
    # the same body to a webhook, or with text of its own, is fine
    assert load_project(project(tmp_path / "w", monitor(extra))).warnings == []
    worded = "channels: [ops]\nmessage:\n  body: 'Moved: {{ value }}'\n"
    assert not load_project(project(tmp_path / "x", monitor(worded), channel=telegram)).warnings
    mail = (
        "alias: ops\ntype: email\nhost: smtp.example.com\nsecurity: none\nusername: u\n"
        "password_secret: p\nsender: a@example.com\nrecipients: b@example.com\n"
    )
    [plain] = load_project(project(tmp_path / "m", monitor(), channel=mail)).warnings
    assert "ops.yaml: channel 'ops': security: none with a username" in plain


def test_markdown_chat_services_show_unevenly_is_warned_of_naming_the_channels(
    tmp_path: Path,
) -> None:
    slack = "alias: ops\ntype: slack\nurl: http://127.0.0.1:9/hook\n"
    body = "## Alert\n> quoted\n| a | b |\nrun `code` and ~~old~~ **bold** [x](https://x.io)"
    extra = f"channels: [ops]\nmessage:\n  body: {json.dumps(body)}\n"
    (tmp_path / "s").mkdir()
    [warning] = load_project(project(tmp_path / "s", monitor(extra), channel=slack)).warnings
    assert "template.body: uses headings (#), quotes (>), tables (|), code (`), " in warning
    assert "strikethrough (~~)" in warning and "plain text to ops (slack)" in warning
    # to a webhook (JSON, no text) nothing is shown, so nothing is said
    (tmp_path / "w").mkdir()
    assert load_project(project(tmp_path / "w", monitor(extra))).warnings == []
    plain = "channels: [ops]\nmessage:\n  body: '**Alert** #1 > 0 | _ok_'\n"
    (tmp_path / "p").mkdir()
    assert load_project(project(tmp_path / "p", monitor(plain), channel=slack)).warnings == []


def test_a_mixed_case_address_must_be_its_eip55_checksum(tmp_path: Path) -> None:
    usdt = "0xdAC17F958D2ee523a2206206994597C13D831ec7"
    wrong = usdt[:-1] + "8"  # one mistyped digit: the case no longer checksums
    for good in (usdt, usdt.lower(), "0x" + usdt[2:].upper()):
        (tmp_path / "m.yaml").write_text(f"name: usdt\nnetwork: mainnet\naddresses: ['{good}']\n")
        assert load_monitor_file(tmp_path / "m.yaml").config.addresses == [usdt.lower()]
    (tmp_path / "m.yaml").write_text(f"name: usdt\nnetwork: mainnet\naddresses: ['{wrong}']\n")
    with pytest.raises(ConfigError) as caught:
        load_monitor_file(tmp_path / "m.yaml")
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'm.yaml'}: monitor 'usdt': addresses[0]: {wrong}")
    assert "its checksummed form is 0xdaC17F958d2Ee523a2206206994597c13D831EC8" in message


def test_monitors_name_contracts_of_the_address_book(tmp_path: Path) -> None:
    from vigil.processors.checks import check_monitor

    book = NETWORK + (
        "  base:\n    chain_id: 8453\n    rpc_urls: ['http://127.0.0.1:8545']\n"
        f"contracts:\n  usdt: {{network: mainnet, address: '{USDT}', abi: abis/usdt.json}}\n"
        "  bridge: {network: base, address: '0x" + "22" * 20 + "'}\n"
    )

    def loaded(name: str, addresses: str, extra: str = "", network: str = "mainnet") -> Any:
        root = tmp_path / name
        root.mkdir()
        (root / "abis").mkdir()
        (root / "abis" / "usdt.json").write_text(
            (REPO_ROOT / "tests" / "fixtures" / "abi" / "ERC20.abi.json").read_text()
        )
        (root / "vigil.yaml").write_text(book)
        (root / "monitors").mkdir()
        (root / "monitors" / "m.yaml").write_text(
            f"name: m\nnetwork: {network}\naddresses: {addresses}\n{extra}"
        )
        return load_project(root)

    events = "conditions:\n  events:\n    - signature: Transfer\n"
    [monitor] = loaded("ok", f"[usdt, '{USDT}']", events).monitors
    assert monitor.config.addresses == [USDT]  # the name made the address, once
    assert any(item.get("name") == "Transfer" for item in monitor.abi)  # the book's ABI
    check_monitor(monitor)  # its conditions compile against that ABI
    with pytest.raises(ConfigError, match=r"addresses\[0\]: 'usdc' is not a contract .*'usdt'"):
        loaded("typo", "[usdc]")
    with pytest.raises(ConfigError, match="contract 'bridge' is on network 'base'"):
        loaded("other", "[bridge]")
    wrong = NETWORK + "contracts:\n  x: {network: nowhere, address: '" + USDT + "'}\n"
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "vigil.yaml").write_text(wrong)
    with pytest.raises(ConfigError, match=r"contracts\.x\.network: unknown network 'nowhere'"):
        load_project(tmp_path / "bad")
    # a monitor file on its own cannot know the book: it says so, not watch nothing
    alone = write_monitor(tmp_path / "alone", "name: a\nnetwork: mainnet\naddresses: [usdt]\n")
    with pytest.raises(ConfigError, match=r"addresses\[0\]: 'usdt' names a contract"):
        check_monitor(load_monitor_file(alone))
