"""A task with a requirements.txt runs in a virtualenv of its own, built once per distinct
requirements (here a wheel made by the test, so no index is needed): the task imports its
package, vigil's common libraries stay reachable behind it, other tasks do not see it, and
requirements that do not install fail the run with pip's words."""

import base64
import hashlib
import json
import time
import zipfile
from pathlib import Path

import pytest

from tests.helpers import vigil_cli
from vigil.connectors.tasks.envs import RequirementsError, for_files
from vigil.connectors.tasks.kv import LocalApi
from vigil.connectors.tasks.runner import run

pytestmark = pytest.mark.integration

USES_IT = """import sys
import httpx
import vigil_tiny_dep

def handler(event):
    return {"value": vigil_tiny_dep.VALUE, "prefix": sys.prefix, "httpx": httpx.__name__}
"""


def tiny_wheel(folder: Path) -> Path:
    """vigil-tiny-dep 1.0, a one-module pure-Python wheel."""
    files = {
        "vigil_tiny_dep.py": b"VALUE = 42\n",
        "vigil_tiny_dep-1.0.dist-info/METADATA": (
            b"Metadata-Version: 2.1\nName: vigil-tiny-dep\nVersion: 1.0\n"
        ),
        "vigil_tiny_dep-1.0.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: vigil-tests\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n"
        ),
    }
    record = []
    for name, content in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=")
        record.append(f"{name},sha256={digest.decode()},{len(content)}")
    record.append("vigil_tiny_dep-1.0.dist-info/RECORD,,")
    path = folder / "vigil_tiny_dep-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
        archive.writestr("vigil_tiny_dep-1.0.dist-info/RECORD", "\n".join(record) + "\n")
    return path


def test_requirements_are_installed_once_into_the_tasks_own_environment(tmp_path: Path) -> None:
    wheel = tiny_wheel(tmp_path)
    files = {
        "main.py": USES_IT.encode(),
        "requirements.txt": f"vigil-tiny-dep @ {wheel.as_uri()}\n".encode(),
    }
    envs = tmp_path / "envs"
    python = for_files(envs, files)
    assert python is not None and python.is_relative_to(envs)
    record = run(files, {"request": {"body": {}}}, LocalApi(), python=python)
    assert record.status == "success", record.logs
    assert record.result["value"] == 42 and record.result["httpx"] == "httpx"
    assert Path(record.result["prefix"]) == python.parent.parent
    started = time.monotonic()
    assert for_files(envs, files) == python  # built once: the second ask finds it ready
    assert time.monotonic() - started < 0.5
    assert len([p for p in envs.iterdir() if p.is_dir()]) == 1

    # a task without requirements runs on vigil's own python and does not see the package
    alone = run({"main.py": USES_IT.encode()}, {"request": {"body": {}}}, LocalApi())
    assert (alone.status, alone.error_type) == ("error", "ModuleNotFoundError")


def test_requirements_that_do_not_install_fail_with_pips_words(tmp_path: Path) -> None:
    missing = (tmp_path / "gone-1.0-py3-none-any.whl").as_uri()
    files = {
        "main.py": b"def handler(event):\n    return 1\n",
        "requirements.txt": f"gone @ {missing}\n".encode(),
    }
    with pytest.raises(RequirementsError, match=r"pip install failed: .*gone-1\.0"):
        for_files(tmp_path / "envs", files)
    assert not any((tmp_path / "envs").glob("*/.ready"))  # tried again at the next run


def test_a_local_run_builds_the_folders_requirements(tmp_path: Path) -> None:
    folder = tmp_path / "task"
    folder.mkdir()
    (folder / "main.py").write_text(USES_IT)
    (folder / "requirements.txt").write_text(f"vigil-tiny-dep @ {tiny_wheel(tmp_path).as_uri()}\n")
    env = {"VIGIL_DATA_DIR": str(tmp_path / "data")}
    done = vigil_cli("tasks", "run", str(folder), "--local", "--format", "json", env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)["result"]
    assert result["value"] == 42
    assert Path(result["prefix"]).is_relative_to(tmp_path / "data" / "task-envs")
