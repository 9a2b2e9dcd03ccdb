"""A task's code as the project holds it: a ``.py`` file (it becomes main.py) or a folder
with main.py (and a requirements.txt, if it brings packages), read into a map of files, at
most 5 MB zipped (the hosted service's limit)."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

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
    return checked(files, path)


def checked(files: dict[str, bytes], path: Path) -> dict[str, bytes]:
    """``files`` as a task's package: main.py there, 5 MB zipped at most, its
    requirements.txt well-formed (``path`` names where they came from)."""
    if "main.py" not in files:
        raise ConfigError("a task needs a main.py with handler()", file=str(path))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    if buffer.tell() > MAX_PACKAGE_BYTES:
        raise ConfigError(
            f"the task is {buffer.tell() / 1e6:.1f} MB zipped; at most 5 MB", file=str(path)
        )
    if "requirements.txt" in files:
        check_requirements(files["requirements.txt"], path / "requirements.txt")
    return files


HASH_OPTION = re.compile(r"\s+--hash[= ]\S+")


def check_requirements(text: bytes, path: Path) -> list[Requirement]:
    """Each line one PEP 508 requirement (``--hash=`` allowed after it); pip options such
    as ``-r`` or ``--index-url`` are refused: the environment is built from PyPI."""
    found = []
    for number, raw in enumerate(text.decode(errors="replace").splitlines(), 1):
        line = HASH_OPTION.sub("", raw.split(" #")[0]).strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path}:{number}"
        if line.startswith("-"):
            raise ConfigError(
                f"pip options are not taken ({line.split()[0]}); one requirement per line",
                file=where,
            )
        try:
            found.append(Requirement(line))
        except InvalidRequirement as exc:
            raise ConfigError(f"not a requirement (PEP 508): {exc}", file=where) from exc
    return found
