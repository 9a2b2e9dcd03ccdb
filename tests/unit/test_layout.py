"""The codebase's own rules that import-linter cannot state: no module imports another's
private names, and every module opens with a docstring (STYLE habits 1 and 2)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "vigil"


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_no_module_imports_another_modules_private_names() -> None:
    found = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("vigil"):
                found += [
                    f"{path.relative_to(PACKAGE.parent)}: {node.module}.{alias.name}"
                    for alias in node.names
                    if alias.name.startswith("_") and not alias.name.startswith("__")
                ]
    assert found == []


def test_every_module_opens_with_a_docstring() -> None:
    missing = [
        str(path.relative_to(PACKAGE.parent))
        for path in _modules()
        if path.stat().st_size and ast.get_docstring(ast.parse(path.read_text())) is None
    ]
    assert missing == []
