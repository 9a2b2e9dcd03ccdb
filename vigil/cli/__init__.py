"""The `vigil` command: one module per command group, parsing and printing only.

``main`` (top-level commands and error handling), ``monitors``, ``notify`` (channels and
deliveries), ``common`` (settings, console, the running stack's address).
"""

from vigil.cli.main import app, main

__all__ = ["app", "main"]
