"""RPC URLs as users write them (``${NAME}`` for an API key) and as vigil shows them
(scheme and host only)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def redact(url: str) -> str:
    """``url`` as logs and errors show it: scheme and host only, never a path or query
    (where providers put API keys) nor a user:password."""
    if url.startswith("${"):
        return url.split("}", 1)[0] + "}"
    parts = urlsplit(url)
    host = parts.hostname or "?"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # not a number: show none of it
        port = ""
    tail = "/…" if parts.path not in ("", "/") or parts.query else ""
    return f"{parts.scheme}://{host}{port}{tail}"


def references(url: str) -> list[str]:
    """The names ``${NAME}`` in ``url`` refers to."""
    return REFERENCE.findall(url)
