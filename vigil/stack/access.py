"""The stack's own API key, and the clients that present it.

`vigil up` (or `vigil serve`) makes a key with every scope once per data dir, readable by
its owner only (``<data dir>/api-key``); its children and the CLI on the same machine read it
there. With ``VIGIL_API_KEY`` set (compose, several machines), that key is the stack key.
"""

from __future__ import annotations

import os
import secrets

from vigil.schemas.registry import HttpRegistry
from vigil.settings import Settings

FILE = "api-key"
ROUTE_FILE = "route-secret"


def stack_key(settings: Settings, *, create: bool = False) -> str | None:
    """VIGIL_API_KEY, else the data dir's key; made (mode 0600) on first use if ``create``."""
    if settings.api_key is not None:
        return settings.api_key.get_secret_value()
    return _kept(settings, FILE, "vigil_stack_", create)


def route_secret(settings: Settings, *, create: bool = False) -> str | None:
    """VIGIL_ROUTE_SECRET, else the data dir's (``route-secret``, made like the stack key):
    the server secret sink routes are signed with."""
    if settings.route_secret is not None:
        return settings.route_secret.get_secret_value()
    return _kept(settings, ROUTE_FILE, "", create)


def _kept(settings: Settings, name: str, prefix: str, create: bool) -> str | None:
    """A secret kept in the data dir's file ``name`` (0600), made on first use if ``create``."""
    path = settings.data_dir / name
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        if not create:
            return None
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    key = f"{prefix}{secrets.token_urlsafe(32)}"
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process of the stack made it first
        return path.read_text().strip() or None
    with os.fdopen(descriptor, "w") as file:
        file.write(key + "\n")
    return key


def api_headers(settings: Settings) -> dict[str, str]:
    """The headers that authenticate a request to this stack's API (none without a key)."""
    key = stack_key(settings)
    return {"Authorization": f"Bearer {key}"} if key else {}


def registry_client(settings: Settings) -> HttpRegistry:
    """The registry in force; vigil's own API gets the stack key, an external one does not."""
    if settings.schema_registry_url:
        return HttpRegistry(settings.schema_registry_url)
    return HttpRegistry(settings.registry_url, headers=api_headers(settings))
