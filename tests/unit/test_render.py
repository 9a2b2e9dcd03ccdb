"""Message templates: paths, markdown per platform, escaping, truncation (golden outputs)."""

from typing import Any

import pytest

from tests.helpers import FIXTURES, load_json
from vigil.config.message import DEFAULT_BODY, MISSING, Template, resolve
from vigil.connectors.notify.render import LIMITS, TRUNCATED, render, with_links

EVENT: dict[str, Any] = {
    "hash": "0xabc",
    "monitor": {"name": "Big *moves* <here>", "network": "mainnet", "severity": "high"},
    "matchReasons": [
        {
            "type": "event",
            "address": "0x1bb1b73c4f0bda4f67dca266ce6ef42f520fbb98",
            "signature": "Transfer(address,address,uint256)",
            "condition": "value > 5 * 10^18",
            "params": {"from": "0x01", "to": "0x02", "value": "7000000000000000000"},
        }
    ],
    "transaction": {"transactionHash": "0xabc", "logs": [{"topics": ["0xddf2", "0x01"]}]},
    "value": "0x0",
}


def fill(
    source: str, platform: str, event: dict[str, Any] = EVENT, limit: int | None = None
) -> str:
    return render(Template.parse(source), event, platform, limit)


def test_paths_use_dot_notation_into_objects_and_arrays() -> None:
    assert resolve(EVENT, "matchReasons.0.params.value") == "7000000000000000000"
    assert resolve(EVENT, "transaction.logs.0.topics.1") == "0x01"
    assert resolve(EVENT, "matchReasons.3.params") is MISSING
    assert resolve(EVENT, "monitor.name.first") is MISSING
    assert (
        fill("v={{ matchReasons.0.params.value }} x={{nope.x}}!", "plain")
        == "v=7000000000000000000 x=!"
    )
    assert fill("{{ matchReasons.0.params }}", "plain") == (
        '{"from": "0x01", "to": "0x02", "value": "7000000000000000000"}'
    )


@pytest.mark.parametrize(
    ("platform", "expected"),
    [
        ("plain", "Big *moves* <here> on mainnet: see Tx (https://x.io/tx/0xabc)"),
        ("slack", "*Big *moves* &lt;here&gt;* on _mainnet_: see <https://x.io/tx/0xabc|Tx>"),
        ("discord", "**Big \\*moves\\* <here\\>** on *mainnet*: see [Tx](https://x.io/tx/0xabc)"),
        ("telegram", "*Big \\*moves\\* <here\\>* on _mainnet_: see [Tx](https://x.io/tx/0xabc)"),
        (
            "email",
            "<b>Big *moves* &lt;here&gt;</b> on <i>mainnet</i>: see "
            '<a href="https://x.io/tx/0xabc">Tx</a>',
        ),
    ],
)
def test_markdown_renders_per_platform_and_values_never_become_markup(
    platform: str, expected: str
) -> None:
    event = with_links(EVENT, "https://x.io/tx/{hash}")
    text = "**{{ monitor.name }}** on _{{ monitor.network }}_: see [Tx]({{ transaction.link }})"
    assert fill(text, platform, event) == expected


def test_telegram_escapes_every_reserved_character() -> None:
    reserved = "_*[]()~`>#+-=|{}.!\\"
    out = fill("{{ hash }}", "telegram", {"hash": reserved})
    assert out == "".join("\\" + c for c in reserved)
    linked = fill("[a]({{ hash }})", "telegram", {"hash": "https://x.io/a_(b)"})
    assert linked == "[a](https://x.io/a_(b\\))"  # inside a URL only ) and \\ are escaped


def test_snake_case_paths_and_words_are_not_italic() -> None:
    assert fill("gas_used {{ monitor.network }} _x_", "slack") == "gas_used mainnet _x_"


def test_match_reasons_formatted_like_the_source_documents() -> None:
    out = fill("{{ matchReasonsFormatted }}", "slack")
    assert out == (
        "*Match Reason 1*\nType: event\n"
        "Matched Address: 0x1bb1b73c4f0bda4f67dca266ce6ef42f520fbb98\n"
        "Signature: Transfer(address,address,uint256)\nCondition: value &gt; 5 * 10^18\n"
        "Params:\nfrom: 0x01\nto: 0x02\nvalue: 7000000000000000000"
    )


@pytest.mark.parametrize("platform", ["discord", "telegram", "slack"])
def test_long_messages_are_cut_to_the_platform_limit_without_breaking_markup(
    platform: str,
) -> None:
    event = {**EVENT, "hash": "a.b_" * 20_000}
    out = fill("**Head** {{ hash }} **tail**", platform, event)
    assert len(out) <= LIMITS[platform]
    assert out.endswith(render(Template.parse(""), {}, platform) + _marker(platform))
    bold = {"discord": "**Head**", "telegram": "*Head*", "slack": "*Head*"}[platform]
    assert out.startswith(bold)
    body = out[len(bold) : -len(_marker(platform))]
    if platform == "telegram":  # every reserved character stays escaped after the cut
        assert not body.endswith("\\") or body.endswith("\\\\")


def _marker(platform: str) -> str:
    escape = {"telegram": "\\(truncated\\)", "discord": "(truncated)", "slack": "(truncated)"}
    return TRUNCATED.replace("(truncated)", escape[platform])


def test_a_short_limit_keeps_the_marker_and_whole_escapes() -> None:
    out = fill("{{ hash }}", "telegram", {"hash": "." * 100}, limit=30)
    assert len(out) <= 30 and out.startswith("\\.") and out.endswith("\\(truncated\\)")


def test_warnings_name_unknown_paths_and_long_bodies() -> None:
    assert Template.parse(DEFAULT_BODY).warnings() == []
    [unknown] = Template.parse("{{ sentinel.name }} {{ blok.number }}").warnings()
    assert "{{ blok.number }}: the event has no field 'blok'; did you mean 'block" in unknown
    [long] = Template.parse("x" * 1901).warnings()
    assert "1901 characters" in long


def test_the_source_documents_example_renders_with_a_real_event() -> None:
    event = load_json(FIXTURES / "monitor-webhook-body.json")["events"][0]
    out = fill(DEFAULT_BODY.replace("monitor.", "sentinel."), "plain", with_links(event, None))
    assert "Test Custom Webhook" in out and "Match Reason 2\nType: transaction" in out
    assert "Condition: gasPrice > 10" in out and "0x16345785D8A0000" in out


def test_a_path_is_checked_whole_with_did_you_mean() -> None:
    def problems(source: str) -> list[str]:
        return Template.parse(source).warnings()

    [hash_typo] = problems("{{ transaction.hsh }}")
    assert (
        hash_typo == "{{ transaction.hsh }}: transaction has no field 'hsh'; did you mean 'hash'?"
    )
    [deep] = problems("{{ matchReasons.0.params.value }} {{ matchReasons.0.sigature }}")
    assert "matchReasons.0 has no field 'sigature'; did you mean 'signature'?" in deep
    [unindexed] = problems("{{ matchReasons.signature }}")
    assert "matchReasons is a list; index it" in unindexed
    [leaf] = problems("{{ hash.value }}")
    assert "hash is a value; it has no field 'value'" in leaf
    ok = "{{ alert.metadata.anything }} {{ transaction.logs.3.topics.0 }} {{ metadata.x.y }}"
    assert problems(ok) == []


def test_handlebars_indexes_read_like_dot_indexes() -> None:
    event = {"matchReasons": [{"signature": "Transfer(address,address,uint256)"}]}
    for path in ("matchReasons.[0].signature", "matchReasons[0].signature"):
        assert resolve(event, path) == "Transfer(address,address,uint256)"
        assert Template.parse("{{ " + path + " }}").warnings() == []
    out = fill("sig {{ matchReasons.[0].signature }}", "plain", event)
    assert out == "sig Transfer(address,address,uint256)"


def test_every_path_of_real_events_is_in_the_shape_and_the_shape_holds_nothing_else() -> None:
    from vigil.config.message import path_problem
    from vigil.schemas.events import EVENT_SHAPE, OPEN, match_event

    def paths(value: Any, prefix: str = "") -> set[str]:
        if isinstance(value, dict):
            found = {prefix} if prefix else set()
            for key, item in value.items():
                found |= paths(item, f"{prefix}.{key}" if prefix else key)
            return found
        if isinstance(value, list):
            found = {prefix} if value else {prefix, f"{prefix}.0"}  # an empty list's items
            for item in value:
                found |= paths(item, f"{prefix}.0")
            return found
        return {prefix}

    match = load_json(FIXTURES / "avro" / "Match.json")
    contract = with_links(match_event(match), "https://etherscan.io/tx/")
    alert = load_json(FIXTURES / "avro" / "FortaAlert.json")
    forta = match_event({**match, "transaction": None, "alert": alert})
    seen = paths(contract) | paths(forta)
    assert sorted(p for p in seen if path_problem(p)) == []

    def shape_paths(node: Any, prefix: str = "") -> set[str]:
        if isinstance(node, dict):
            return {q for key, item in node.items() for q in shape_paths(item, f"{prefix}{key}.")}
        if isinstance(node, list):
            return shape_paths(node[0], f"{prefix}0.")
        return {prefix.rstrip(".")} if node != OPEN else set()

    injected = {"matchReasonsFormatted", "retracted", "monitor.abi.0"}  # by render, notify
    # only a function reason of an internal call (networks with traces) has these
    injected |= {f"matchReasons.0.{key}" for key in ("internal", "depth", "caller")}
    missing = shape_paths(EVENT_SHAPE) - seen - injected
    assert sorted(missing) == []


def test_email_takes_the_templates_html_sanitised_and_escapes_values() -> None:
    from vigil.config.channels import CHANNEL
    from vigil.config.message import parsed
    from vigil.connectors.notify.delivery import Messages
    from vigil.connectors.notify.email import build_message

    config = CHANNEL.validate_python(
        {"alias": "m", "type": "email", "host": "h", "sender": "a@b.co", "recipients": "c@d.co"}
    )
    body = (
        '<h2 onclick="steal()">Alert</h2>\n<table><tr><td>{{ monitor.name }}</td></tr></table>'
        "<script>alert(1)</script><style>h2{}</style>**bold**"
    )
    event = {"monitor": {"name": "<img src=x onerror=alert(1)> & co"}}
    message = build_message(config, event, Messages(parsed("s"), parsed(body)), "r")
    html = message.get_body(("html",)).get_content()
    assert "<h2>Alert</h2>" in html and "<table><tbody><tr><td>" in html
    assert "&lt;img src=x onerror=alert(1)&gt; &amp; co" in html  # the value, as text
    assert "script" not in html and "style" not in html and "onclick" not in html
    assert "<b>bold</b>" in html
    text = message.get_body(("plain",)).get_content()
    assert "<img src=x onerror=alert(1)> & co" in text
