"""The reference in docs/ is what the code says, and the examples validate against the
published JSON Schemas (as an editor with the YAML language server would check them)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from vigil.settings import REPO_ROOT

EXAMPLES = REPO_ROOT / "examples"
MODELINE = re.compile(r"^# yaml-language-server: \$schema=(\S+)$", re.MULTILINE)


def test_the_reference_is_up_to_date_with_the_code() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "docs" / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def _examples() -> list[Path]:
    return sorted(p for p in EXAMPLES.rglob("*.yaml") if "abis" not in p.parts)


@pytest.mark.parametrize("path", _examples(), ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_every_example_names_its_schema_and_validates_against_it(path: Path) -> None:
    text = path.read_text()
    modeline = MODELINE.search(text)
    assert modeline, f"{path} has no yaml-language-server modeline"
    schema_path = (path.parent / modeline.group(1)).resolve()
    schema = json.loads(schema_path.read_text())
    jsonschema.validate(yaml.safe_load(text), schema)


def test_the_schemas_refuse_what_the_loader_refuses() -> None:
    schema = json.loads((REPO_ROOT / "docs/schemas/monitor.schema.json").read_text())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"name": "m", "network": "x", "adresses": ["0x" + "1" * 40]}, schema)
    channel = json.loads((REPO_ROOT / "docs/schemas/channel.schema.json").read_text())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"alias": "a", "type": "pigeon"}, channel)
