"""What vigil sends to Telegram always parses as MarkdownV2, and shows what the template and
values say; Discord and Telegram messages are cut by the UTF-16 units those services count.
Property-based over random templates (adjacent and nested markup) and hostile values."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.markdown_v2 import ParseError, parse
from vigil.config.message import Template
from vigil.connectors.notify.render import (
    LIMITS,
    TRUNCATED,
    Platform,
    _Filled,
    _write,
    render,
    utf16_units,
)

VISIBLE = Platform("visible", str, str, str, lambda text, url: text)
LEAVES = st.sampled_from(
    [
        "a",
        "word",
        " ",
        "\n",
        ".",
        "-",
        "!",
        "\\",
        "😀",
        "ok_go",
        "{{ v }}",
        "{{ w }}",
        "{{ missing }}",
    ]
)
STRAY = st.sampled_from(["*", "_", "**", "[", "](", ")", "~", "|"])  # markup left unclosed


def _markup(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    parts = st.lists(inner, min_size=1, max_size=3).map("".join)
    return st.one_of(
        parts.map(lambda t: f"_{t}_"),
        parts.map(lambda t: f"*{t}*"),
        parts.map(lambda t: f"**{t}**"),
        parts.map(lambda t: f"[{t}](https://x.io/{{{{ v }}}})"),
        parts,
    )


# nested and adjacent runs, stray markers and values
templates = st.lists(
    st.recursive(st.one_of(LEAVES, STRAY), _markup, max_leaves=12), min_size=1, max_size=5
).map("".join)

HOSTILE = st.lists(
    st.sampled_from([*"_*[]()~`>#+-=|{}.!\\ab 1\n😀🚀é", "__", "**", "||"]), max_size=20
).map("".join)


def visible(template: Template, event: dict[str, Any]) -> str:
    return _write(_Filled(event).fill(template.nodes), VISIBLE)


@settings(max_examples=400, deadline=None)
@given(templates, HOSTILE, HOSTILE)
def test_telegram_text_always_parses_and_shows_the_content(
    source: str, value: str, other: str
) -> None:
    template, event = Template.parse(source), {"v": value, "w": other}
    sent = render(template, event, "telegram")
    try:
        text, _ = parse(sent)
    except ParseError as exc:
        pytest.fail(f"template {source!r} values {value!r}, {other!r}: {sent!r}: {exc}")
    assert text.replace("\r", "") == visible(template, event)


@settings(max_examples=200, deadline=None)
@given(templates, HOSTILE, st.integers(20, 300))
def test_a_cut_telegram_message_parses_and_fits(source: str, value: str, limit: int) -> None:
    event = {"v": value * 8, "w": "😀" * 40}
    sent = render(Template.parse(source), event, "telegram", limit=limit)
    parse(sent)
    assert utf16_units(sent) <= limit


def test_adjacent_and_nested_italics_parse() -> None:
    for source, shown in [
        ("*_a_ b*", "a b"),  # italic within italic: one run
        ("_a__b_", "ab"),  # two runs side by side
        ("_a_{{ missing }}_b_", "ab"),  # side by side once the value is empty
        ("**x _y_**_z_", "x yz"),
    ]:
        sent = render(Template.parse(source), {}, "telegram")
        text, entities = parse(sent)
        assert text.replace("\r", "") == shown, (source, sent)
        assert entities, sent


@pytest.mark.parametrize("platform", ["discord", "telegram"])
def test_four_byte_characters_count_twice(platform: str) -> None:
    limit = LIMITS[platform]
    sent = render(Template.parse("{{ v }}"), {"v": "🚀" * limit}, platform)
    assert utf16_units(sent) <= limit < len(sent) * 2
    assert sent.endswith(TRUNCATED if platform == "discord" else "… \\(truncated\\)")
    assert utf16_units(sent) > limit - 20  # cut near the limit, not far below it
