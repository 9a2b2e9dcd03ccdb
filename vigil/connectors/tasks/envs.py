"""Per-task Python environments: a task folder's ``requirements.txt`` is installed, once,
into a virtualenv of its own under the data dir, named by the file's hash (so one version,
or several with the same requirements, build it once).

- The virtualenv is made from the interpreter vigil runs on (``venv --without-pip``), and
  vigil's own pip installs into it (``pip --python``): the task's packages, and their
  dependencies, all in the task's environment.
- After the install, a ``.pth`` file puts vigil's own packages (web3, httpx…) after the
  task's on its path: a task gets the common libraries, as the hosted service's runtime
  preinstalled them, and its own pinned versions win.
- A file lock lets one process build while others wait; a build that failed or was cut off
  leaves no ``.ready`` mark, and the next run builds again from scratch.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Mapping
from pathlib import Path

from vigil.errors import VigilError

REQUIREMENTS = "requirements.txt"
BUILD_TIMEOUT_S = 600.0


class RequirementsError(VigilError):
    """A task's requirements could not be installed (pip's own words follow)."""


def for_files(root: Path, files: Mapping[str, bytes]) -> Path | None:
    """The python for a task of ``files``: its environment's when it has requirements (None:
    vigil's own). Raises RequirementsError."""
    wanted = files.get(REQUIREMENTS)
    return interpreter(root, wanted) if wanted is not None else None


def interpreter(root: Path, requirements: bytes, timeout: float = BUILD_TIMEOUT_S) -> Path:
    """The python of the environment for ``requirements`` under ``root``, built if needed."""
    digest = hashlib.sha256(requirements).hexdigest()[:16]
    target = root / digest
    python = target / "bin" / "python"
    if (target / ".ready").exists():
        return python
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{digest}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if (target / ".ready").exists():  # another process built it while this one waited
            return python
        shutil.rmtree(target, ignore_errors=True)  # a build that did not finish
        _build(target, requirements, timeout)
    return python


def _build(target: Path, requirements: bytes, timeout: float) -> None:
    _run([sys.executable, "-m", "venv", "--without-pip", str(target)], timeout, "venv")
    wanted = target / REQUIREMENTS
    wanted.write_bytes(requirements)
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(target / "bin" / "python"),
            "install",
            "--no-input",
            "--disable-pip-version-check",
            "--no-warn-script-location",
            "-r",
            str(wanted),
        ],
        timeout,
        "pip install",
    )
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = target / "lib" / version / "site-packages"
    (site / "zz_vigil_common.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    (target / ".ready").touch()


def _run(argv: list[str], timeout: float, what: str) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise RequirementsError(f"{what} took over {timeout:.0f} s") from None
    if done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip()).splitlines()[-5:]
        raise RequirementsError(f"{what} failed: " + " / ".join(said))
