"""The message template language a monitor's or channel's ``template:`` is written in.

``{{ path }}`` reads the event schema (dot notation into objects and arrays); ``**bold**``,
``*italic*`` / ``_italic_`` and ``[text](url)`` are the markup. A template is parsed once
into inline nodes before values are put in; ``connectors.notify.render`` writes the nodes
for each platform. Parsing lives here so loading a project can check templates.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from vigil.config.problems import suggestion
from vigil.schemas.events import EVENT_SHAPE, LEAF, OPEN

PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_LINK = re.compile(r"\[([^\]]*)\]\(((?:\{\{[^{}]*\}\}|[^)\s])*)\)")
WARN_LENGTH = 1900  # the source documents' advice for a body that fits every platform
_INDEX = re.compile(r"\.?\[(\d+)\]")
_UNEVEN = (  # syntax some platforms show and others do not, by what it looks like
    ("headings (#)", re.compile(r"^#{1,6} ", re.M)),
    ("quotes (>)", re.compile(r"^> ", re.M)),
    ("tables (|)", re.compile(r"^\|.*\|\s*$", re.M)),
    ("code (`)", re.compile(r"`[^`\n]+`|^```", re.M)),
    ("strikethrough (~~)", re.compile(r"~~[^~\n]+~~")),
)  # Handlebars `a.[0].b` and `a[0].b` both read `a.0.b`

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

    def unsupported(self) -> list[str]:
        """Markdown beyond bold, italic and links that the template uses: chat services
        support it unevenly, and vigil writes it as plain text everywhere."""
        found = [name for name, pattern in _UNEVEN if pattern.search(self.source)]
        return found

    def has_text(self) -> bool:
        """Whether the template writes anything besides its values (markup and links
        aside): without, it renders empty when the values are missing."""

        def text(nodes: tuple[Node, ...]) -> bool:
            return any(
                (isinstance(n, Text) and n.value.strip())
                or (isinstance(n, Slot) and n.path == "matchReasonsFormatted")  # never empty
                or (isinstance(n, Styled | Link) and text(n.children))
                for n in nodes
            )

        return text(self.nodes)

    def paths(self) -> list[str]:
        found = [m.group(1) for m in PLACEHOLDER.finditer(self.source)]
        return list(dict.fromkeys(found))

    def warnings(self) -> list[str]:
        """Paths that cannot exist in the event schema, and bodies too long for every platform."""
        problems = [
            f"{{{{ {path} }}}}: {problem}"
            for path in self.paths()
            if (problem := path_problem(path)) is not None
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


def normalized(path: str) -> str:
    """``path`` in dot notation: ``a.[0].b`` (Handlebars) and ``a[0].b`` read ``a.0.b``."""
    return _INDEX.sub(r".\1", path).removeprefix(".") if "[" in path else path


def path_problem(path: str) -> str | None:
    """Why ``path`` cannot exist in a match event (naming the nearest field), or None."""
    node: Any = EVENT_SHAPE
    walked: list[str] = []
    for part in normalized(path).split("."):
        where = ".".join(walked) or "the event"
        if node == OPEN:
            return None
        if node is LEAF:
            return f"{where} is a value; it has no field {part!r}"
        if isinstance(node, list):
            if not part.isdigit():
                return f"{where} is a list; index it, as {where}.0.{part} or {where}.[0].{part}"
            node = node[0]
        elif part in node:
            node = node[part]
        else:
            hint = suggestion(part, list(node)) or f"; its fields: {', '.join(sorted(node))}"
            return f"{where} has no field {part!r}{hint}"
        walked.append(part)
    return None


def resolve(event: Any, path: str) -> Any:
    """The value at ``a.b.0.c`` (dot notation into objects and arrays), or MISSING."""
    value = event
    for part in normalized(path).split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return MISSING
    return value
