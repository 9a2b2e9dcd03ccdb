"""Telegram's MarkdownV2 parser, as the Bot API documents it and tdlib implements it
(td/telegram/MessageEntity.cpp, parse_markdown_v2): the tests check that what vigil sends
parses, and what a reader sees. It raises where Telegram answers "can't parse entities"."""

from __future__ import annotations

from dataclasses import dataclass

RESERVED = "_*[]()~`>#+-=|{}.!"


class ParseError(ValueError):
    pass


@dataclass
class Entity:
    type: str
    offset: int  # in UTF-16 code units of the visible text, as Telegram counts
    length: int
    url: str | None = None


def _units(text: str) -> int:
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)


def parse(text: str) -> tuple[str, list[Entity]]:
    """The visible text and its entities; ParseError where Telegram refuses the message."""
    result: list[str] = []
    offset = 0
    stack: list[tuple[str, int, int]] = []  # type, utf-16 offset, index in text
    entities: list[Entity] = []
    i = 0
    n = len(text)

    def at(k: int) -> str:
        return text[k] if k < n else ""

    while i < n:
        c = text[i]
        if c == "\\" and at(i + 1) and 0 < ord(at(i + 1)) <= 126:
            result.append(at(i + 1))
            offset += 1
            i += 2
            continue
        reserved = "`" if stack and stack[-1][0] in ("code", "pre") else RESERVED
        if c not in reserved:
            result.append(c)
            offset += _units(c)
            i += 1
            continue
        top = stack[-1][0] if stack else None
        ends = {
            "bold": c == "*",
            "italic": c == "_" and at(i + 1) != "_",
            "underline": c == "_" and at(i + 1) == "_",
            "strike": c == "~",
            "spoiler": c == "|" and at(i + 1) == "|",
            "code": c == "`",
            "link": c == "]",
            None: False,
        }.get(top, False)
        if not ends:
            if c == "_":
                kind = "underline" if at(i + 1) == "_" else "italic"
                i += 2 if kind == "underline" else 1
            elif c == "*":
                kind, i = "bold", i + 1
            elif c == "~":
                kind, i = "strike", i + 1
            elif c == "|" and at(i + 1) == "|":
                kind, i = "spoiler", i + 2
            elif c == "[":
                kind, i = "link", i + 1
            elif c == "`":
                kind, i = "code", i + 1
            else:
                raise ParseError(
                    f"Character '{c}' is reserved and must be escaped with the preceding '\\'"
                )
            if any(open_kind == kind for open_kind, _, _ in stack):
                raise ParseError(f"{kind} entity nested in a {kind} entity at byte offset {i}")
            stack.append((kind, offset, i))
            continue
        kind, begin, _ = stack.pop()
        i += 2 if kind in ("underline", "spoiler") else 1
        url = None
        if kind == "link":
            if at(i) != "(":
                url = "".join(result)[begin:]
            else:
                i += 1
                chars = []
                while i < n and text[i] != ")":
                    if text[i] == "\\" and at(i + 1) and 0 < ord(at(i + 1)) <= 126:
                        chars.append(text[i + 1])
                        i += 2
                        continue
                    chars.append(text[i])
                    i += 1
                if at(i) != ")":
                    raise ParseError("Can't find end of a URL")
                i += 1
                url = "".join(chars)
        if offset > begin:
            entities.append(Entity(kind, begin, offset - begin, url))
    if stack:
        raise ParseError(f"Can't find end of {stack[-1][0]} entity at byte offset {stack[-1][2]}")
    return "".join(result), entities
