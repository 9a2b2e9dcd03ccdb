"""Message templates: ``{{ path }}`` over the event schema, limited markdown per platform.

A template is parsed once into inline nodes (text, bold, italic, link) *before* values are
put in, so a value can never open a bold run or break a Telegram entity: values are escaped
for the platform as text. Truncation cuts content, not markup, so what is sent always parses.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_LINK = re.compile(r"\[([^\]]*)\]\(((?:\{\{[^{}]*\}\}|[^)\s])*)\)")
TRUNCATED = "… (truncated)"
WARN_LENGTH = 1900  # the source documents' advice for a body that fits every platform
LIMITS = {  # characters each platform takes in one message (body)
    "slack": 40_000,
    "discord": 2_000,
    "telegram": 4_096,
    "email": 100_000,
    "plain": 100_000,
}
# roots of the event schema (contract and Forta monitors) and what vigil injects
SCHEMA_ROOTS = {
    "id", "type", "hash", "blockHash", "blockNumber", "timestamp", "transaction",
    "matchReasons", "matchedAddresses", "matchedChecksumAddresses", "monitor", "sentinel",
    "value", "metadata", "alert", "matchReasonsFormatted", "retracted",
}  # fmt: skip

DEFAULT_SUBJECT = "vigil: {{ monitor.name }} matched on {{ monitor.network }}"
DEFAULT_BODY = """**Monitor Name**

{{ monitor.name }}

**Network**

{{ monitor.network }}

**Block Hash**

{{ blockHash }}

**Transaction Hash**

{{ transaction.transactionHash }}

**Transaction Link**

[Block Explorer]({{ transaction.link }})

{{ matchReasonsFormatted }}

**Value**

{{ value }}"""
DEFAULT_CHAT_BODY = """**{{ monitor.name }}** matched on {{ monitor.network }} \
(block {{ blockNumber }}, severity {{ monitor.severity }})
[{{ transaction.transactionHash }}]({{ transaction.link }})

{{ matchReasonsFormatted }}"""


@dataclass(frozen=True)
class Text:
    value: str


@dataclass(frozen=True)
class Slot:
    """A ``{{ path }}`` in text: filled with the value at render time, escaped as text."""

    path: str


@dataclass(frozen=True)
class Styled:
    style: str  # bold | italic
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Link:
    children: tuple[Node, ...]
    url: str  # may hold {{ path }}: filled raw, URL-escaped per platform


Node = Text | Slot | Styled | Link


def _closing(text: str, start: int, marker: str) -> int:
    """Index of the marker that closes a run opened at ``start``, or -1."""
    index = text.find(marker, start)
    while index != -1 and marker == "*" and text.startswith("**", index):
        index = text.find(marker, index + 2)
    return index


def _inline(text: str) -> tuple[Node, ...]:
    nodes: list[Node] = []
    buffer: list[str] = []
    i = 0

    def flush() -> None:
        if buffer:
            nodes.extend(_slots("".join(buffer)))
            buffer.clear()

    while i < len(text):
        if text.startswith("**", i) and (end := text.find("**", i + 2)) > i + 2:
            flush()
            nodes.append(Styled("bold", _inline(text[i + 2 : end])))
            i = end + 2
            continue
        char = text[i]
        boundary = i == 0 or not text[i - 1].isalnum()
        if (
            char in "*_"
            and boundary
            and (end := _closing(text, i + 1, char)) > i + 1
            and (char == "*" or end + 1 >= len(text) or not text[end + 1].isalnum())
        ):
            flush()
            nodes.append(Styled("italic", _inline(text[i + 1 : end])))
            i = end + 1
            continue
        if char == "[":
            match = _LINK.match(text, i)
            if match:
                flush()
                nodes.append(Link(_inline(match.group(1)), match.group(2)))
                i = match.end()
                continue
        if char == "{" and (slot := PLACEHOLDER.match(text, i)):
            buffer.append(slot.group(0))  # kept whole: `_` in a path is not italic
            i = slot.end()
            continue
        buffer.append(char)
        i += 1
    flush()
    return tuple(nodes)


def _slots(text: str) -> Iterable[Node]:
    last = 0
    for match in PLACEHOLDER.finditer(text):
        if match.start() > last:
            yield Text(text[last : match.start()])
        yield Slot(match.group(1))
        last = match.end()
    if last < len(text):
        yield Text(text[last:])


@dataclass(frozen=True)
class Template:
    """A parsed template and the paths it reads."""

    source: str
    nodes: tuple[Node, ...]

    @classmethod
    def parse(cls, source: str) -> Template:
        return cls(source, _inline(source))

    def paths(self) -> list[str]:
        found = [m.group(1) for m in PLACEHOLDER.finditer(self.source)]
        return list(dict.fromkeys(found))

    def warnings(self) -> list[str]:
        """Paths that cannot exist in the event schema, and bodies too long for every platform."""
        roots = ", ".join(sorted(SCHEMA_ROOTS))
        problems = [
            f"{{{{ {path} }}}} is not in the event schema (its roots: {roots})"
            for path in self.paths()
            if path.split(".")[0] not in SCHEMA_ROOTS
        ]
        if len(self.source) > WARN_LENGTH:
            problems.append(
                f"the template is {len(self.source)} characters; over {WARN_LENGTH} some "
                "platforms truncate the message"
            )
        return problems


@lru_cache(maxsize=1024)
def parsed(source: str) -> Template:
    """``Template.parse`` once per distinct source (templates repeat for every match)."""
    return Template.parse(source)


MISSING = object()


def resolve(event: Any, path: str) -> Any:
    """The value at ``a.b.0.c`` (dot notation into objects and arrays), or MISSING."""
    value = event
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return MISSING
    return value


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


@dataclass(frozen=True)
class Platform:
    """How one platform writes text, bold, italic and links."""

    name: str
    escape: Callable[[str], str]
    bold: Callable[[str], str]
    italic: Callable[[str], str]
    link: Callable[[str, str], str]


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
    ),
    "email": Platform(
        "email",
        lambda s: html.escape(s).replace("\n", "<br>\n"),
        lambda s: f"<b>{s}</b>",
        lambda s: f"<i>{s}</i>",
        lambda text, url: f'<a href="{html.escape(url)}">{text}</a>' if url else text,
    ),
}


class _Filled:
    """Nodes with their values put in, as plain content strings that truncation can cut."""

    def __init__(self, event: dict[str, Any]) -> None:
        self.event = event

    def fill(self, nodes: tuple[Node, ...]) -> list[Any]:
        out: list[Any] = []
        for node in nodes:
            if isinstance(node, Text):
                out.append(node.value)
            elif isinstance(node, Slot):
                if node.path == "matchReasonsFormatted":
                    out.extend(self.fill(format_reasons(self.event)))
                else:
                    out.append(as_text(resolve(self.event, node.path)))
            elif isinstance(node, Styled):
                out.append((node.style, self.fill(node.children)))
            else:
                url = PLACEHOLDER.sub(lambda m: as_text(resolve(self.event, m.group(1))), node.url)
                out.append(("link", self.fill(node.children), url))
        return out


def _cut(items: list[Any], budget: int) -> tuple[list[Any], int]:
    """The first ``budget`` content characters of ``items``, and what is left of the budget."""
    kept: list[Any] = []
    for item in items:
        if budget <= 0:
            break
        if isinstance(item, str):
            kept.append(item[:budget])
            budget -= len(item[:budget])
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
    out = []
    for item in items:
        if isinstance(item, str):
            out.append(platform.escape(item))
        elif item[0] == "link":
            out.append(platform.link(_write(item[1], platform), item[2]))
        else:
            inner = _write(item[1], platform)
            if inner.strip():
                out.append(platform.bold(inner) if item[0] == "bold" else platform.italic(inner))
            else:
                out.append(inner)
    return "".join(out)


def render(
    template: Template, event: dict[str, Any], platform: str, limit: int | None = None
) -> str:
    """``template`` filled from ``event`` for ``platform``, cut to ``limit`` (or the platform's)."""
    style = PLATFORMS[platform]
    items = _Filled(event).fill(template.nodes)
    text = _write(items, style)
    limit = limit or LIMITS[platform]
    if len(text) <= limit:
        return text
    marker = style.escape(TRUNCATED)
    low, high = 0, _length(items)  # most content characters that still fit with the marker
    while low < high:
        middle = (low + high + 1) // 2
        if len(_write(_cut(items, middle)[0], style)) + len(marker) <= limit:
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
