"""Message templates written for each platform: limited markdown, escaping, truncation.

A template (``config.message``) is parsed once into inline nodes *before* values are
put in, so a value can never open a bold run or break a Telegram entity: values are escaped
for the platform as text. Truncation cuts content, not markup, so what is sent always parses.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vigil.config.message import (
    MISSING,
    PLACEHOLDER,
    Node,
    Slot,
    Styled,
    Template,
    Text,
    resolve,
)

TRUNCATED = "… (truncated)"
LIMITS = {  # characters each platform takes in one message (body)
    "slack": 40_000,
    "discord": 2_000,
    "telegram": 4_096,
    "email": 100_000,
    "plain": 100_000,
}


def as_text(value: Any) -> str:
    if value is MISSING or value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(", ", ": "))
    return str(value)


def format_reasons(event: dict[str, Any]) -> tuple[Node, ...]:
    """``matchReasonsFormatted``: one bold heading and its lines per match reason."""
    nodes: list[Node] = []
    for number, reason in enumerate(event.get("matchReasons") or [], 1):
        if nodes:
            nodes.append(Text("\n\n"))
        nodes.append(Styled("bold", (Text(f"Match Reason {number}"),)))
        lines = [f"Type: {reason.get('type')}"]
        for label, key in (
            ("Matched Address", "address"),
            ("Signature", "signature"),
            ("Condition", "condition"),
            ("Value", "value"),
        ):
            if reason.get(key) not in (None, ""):
                lines.append(f"{label}: {reason[key]}")
        params = reason.get("params") or {}
        if params:
            lines.append("Params:")
            lines.extend(f"{k}: {as_text(v)}" for k, v in params.items())
        nodes.append(Text("\n" + "\n".join(lines)))
    return tuple(nodes)


def utf16_units(text: str) -> int:
    """The length Discord and Telegram count: UTF-16 code units (an emoji is two)."""
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


@dataclass(frozen=True)
class Platform:
    """How one platform writes text, bold, italic and links, and measures a message.

    ``between_italics`` goes between two italic runs that would otherwise touch: Telegram
    reads ``__`` as underline, so ``_a__b_`` does not parse; a carriage return, which
    Telegram ignores, keeps them apart (its own advice).
    """

    name: str
    escape: Callable[[str], str]
    bold: Callable[[str], str]
    italic: Callable[[str], str]
    link: Callable[[str, str], str]
    measure: Callable[[str], int] = len
    between_italics: str = ""
    own: Callable[[str], str] | None = None  # writes the template's own text, if not escape


def _telegram_escape(text: str) -> str:
    return re.sub(r"([_*\[\]()~`>#+\-=|{}.!\\])", r"\\\1", text)


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _discord_escape(text: str) -> str:
    return re.sub(r"([\\*_~`|>#\[\]])", r"\\\1", text)


PLATFORMS = {
    "plain": Platform("plain", str, str, str, lambda text, url: f"{text} ({url})" if url else text),
    "slack": Platform(
        "slack",
        _slack_escape,
        lambda s: f"*{s}*",
        lambda s: f"_{s}_",
        lambda text, url: f"<{url}|{text}>" if url else text,
    ),
    "discord": Platform(
        "discord",
        _discord_escape,
        lambda s: f"**{s}**",
        lambda s: f"*{s}*",
        lambda text, url: f"[{text}]({url})" if url else text,
        measure=utf16_units,
    ),
    "telegram": Platform(
        "telegram",
        _telegram_escape,
        lambda s: f"*{s}*",
        lambda s: f"_{s}_",
        lambda text, url: (
            f"[{text}]({url.replace(chr(92), chr(92) * 2).replace(')', chr(92) + ')')})"
            if url
            else text
        ),
        measure=utf16_units,
        between_italics="\r",
    ),
    "email": Platform(
        "email",
        lambda s: html.escape(s).replace("\n", "<br>\n"),
        lambda s: f"<b>{s}</b>",
        lambda s: f"<i>{s}</i>",
        lambda text, url: f'<a href="{html.escape(url)}">{text}</a>' if url else text,
        # e-mail takes HTML: the template's own markup goes through (values stay escaped);
        # the email channel sanitises the result
        own=lambda s: s.replace("\n", "<br>\n"),
    ),
}


class Own(str):
    """Text the template itself wrote (not a value): a platform may take it as markup."""

    __slots__ = ()


class _Filled:
    """Nodes with their values put in, as plain content strings that truncation can cut."""

    def __init__(self, event: dict[str, Any]) -> None:
        self.event = event

    def fill(self, nodes: tuple[Node, ...], own: bool = True) -> list[Any]:
        out: list[Any] = []
        for node in nodes:
            if isinstance(node, Text):
                out.append(Own(node.value) if own else node.value)
            elif isinstance(node, Slot):
                if node.path == "matchReasonsFormatted":  # its lines hold values
                    out.extend(self.fill(format_reasons(self.event), own=False))
                else:
                    out.append(as_text(resolve(self.event, node.path)))
            elif isinstance(node, Styled):
                out.append((node.style, self.fill(node.children, own)))
            else:
                url = PLACEHOLDER.sub(lambda m: as_text(resolve(self.event, m.group(1))), node.url)
                out.append(("link", self.fill(node.children, own), url))
        return out


def _cut(items: list[Any], budget: int) -> tuple[list[Any], int]:
    """The first ``budget`` content characters of ``items``, and what is left of the budget."""
    kept: list[Any] = []
    for item in items:
        if budget <= 0:
            break
        if isinstance(item, str):
            cut = item[:budget]
            kept.append(Own(cut) if isinstance(item, Own) else cut)
            budget -= len(cut)
        elif item[0] == "link":
            children, budget = _cut(item[1], budget)
            kept.append(("link", children, item[2]))
        else:
            children, budget = _cut(item[1], budget)
            kept.append((item[0], children))
    return kept, budget


def _length(items: list[Any]) -> int:
    return sum(len(i) if isinstance(i, str) else _length(i[1]) for i in items)


def _write(items: list[Any], platform: Platform) -> str:
    return _marked(items, platform, frozenset())[0]


def _marked(items: list[Any], platform: Platform, within: frozenset[str]) -> tuple[str, bool, bool]:
    """``items`` in ``platform``'s markup, and whether it starts and ends with an italic
    marker. A style inside the same style (``*a _b_ c*``) adds nothing and is written
    plain: no platform nests a run in a run of its kind."""
    out: list[str] = []
    starts = ends = False  # of what is written so far
    for item in items:
        if isinstance(item, str):
            write = platform.own if platform.own and isinstance(item, Own) else platform.escape
            piece, first, last = write(item), False, False
        elif item[0] == "link":
            text, first, last = _marked(item[1], platform, within)
            piece = platform.link(text, item[2])
            if piece != text:  # a link without a URL is its text alone
                first = last = False
        else:
            style = item[0]
            piece, first, last = _marked(item[1], platform, within | {style})
            if style not in within and piece.strip():
                if style == "bold":
                    piece, first, last = platform.bold(piece), False, False
                else:
                    piece, first, last = platform.italic(piece), True, True
        if not piece:
            continue
        if ends and first:
            piece = platform.between_italics + piece
        if not out:
            starts = first
        out.append(piece)
        ends = last
    return "".join(out), starts, ends


def render(
    template: Template, event: dict[str, Any], platform: str, limit: int | None = None
) -> str:
    """``template`` filled from ``event`` for ``platform``, cut to ``limit`` (or the platform's)."""
    style = PLATFORMS[platform]
    items = _Filled(event).fill(template.nodes)
    text = _write(items, style)
    limit = limit or LIMITS[platform]
    if style.measure(text) <= limit:
        return text
    marker = style.escape(TRUNCATED)
    low, high = 0, _length(items)  # most content characters that still fit with the marker
    while low < high:
        middle = (low + high + 1) // 2
        if style.measure(_write(_cut(items, middle)[0], style)) + style.measure(marker) <= limit:
            low = middle
        else:
            high = middle - 1
    return _write(_cut(items, low)[0], style) + marker


def with_links(event: dict[str, Any], explorer_url: str | None) -> dict[str, Any]:
    """The event plus ``transaction.link`` (block-explorer URL of its transaction)."""
    transaction = event.get("transaction")
    if not isinstance(transaction, dict) or not explorer_url:
        return event
    tx_hash = transaction.get("transactionHash") or transaction.get("hash") or ""
    link = explorer_url.format(hash=tx_hash) if "{hash}" in explorer_url else explorer_url + tx_hash
    return {**event, "transaction": {**transaction, "link": link}}
