"""A task's code as the project holds it: a ``.py`` file (it becomes main.py) or a folder
with main.py, read into a map of files, at most 5 MB zipped (the hosted service's limit)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from vigil.errors import ConfigError

MAX_PACKAGE_BYTES = 5 * 1024 * 1024
SKIPPED = {"__pycache__", ".venv", ".git", "node_modules"}


def package(path: Path, *, obj: str | None = None, field: str | None = None) -> dict[str, bytes]:
    """The task's files; a ConfigError names the file (and ``obj``/``field`` when a task
    definition named the path)."""
    if path.is_file():
        if path.suffix != ".py":
            raise ConfigError(
                f"expected a .py file or a folder with main.py: {path}", file=str(path)
            )
        files = {"main.py": path.read_bytes()}
    elif path.is_dir():
        if not (path / "main.py").is_file():
            raise ConfigError("a task folder needs a main.py with handler()", file=str(path))
        files = {
            str(p.relative_to(path)): p.read_bytes()
            for p in sorted(path.rglob("*"))
            if p.is_file() and not SKIPPED & set(p.relative_to(path).parts)
        }
    else:
        raise ConfigError("no such file or folder", file=str(path), obj=obj, field=field)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    if buffer.tell() > MAX_PACKAGE_BYTES:
        raise ConfigError(
            f"the task is {buffer.tell() / 1e6:.1f} MB zipped; at most 5 MB", file=str(path)
        )
    return files
