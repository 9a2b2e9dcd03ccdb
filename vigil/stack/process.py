"""Child processes that die with their parent, each in a session of its own, stopped in order.

A child runs in its own session (so its own process group): the terminal's Ctrl-C reaches
`vigil up` alone, which then stops the children one by one in order. PR_SET_PDEATHSIG still
ends a child whose parent was killed outright.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Run in the child before exec: SIGTERM it when the parent dies, so nothing is orphaned."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    log_file: Path | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` as a child bound to this process's lifetime."""
    out: IO[bytes] | None = None
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        out = open(log_file, "ab")  # noqa: SIM115 - handed to the child, closed below
    try:
        return subprocess.Popen(
            list(argv),
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent if os.name == "posix" else None,
            start_new_session=True,
        )
    finally:
        if out is not None:
            out.close()  # the child holds its own descriptor


def stop(process: subprocess.Popen[bytes], name: str, *, grace: float = 20.0) -> int | None:
    """SIGTERM, wait ``grace`` seconds, then SIGKILL; returns the exit code."""
    if process.poll() is not None:
        return process.returncode
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(grace)
    except subprocess.TimeoutExpired:
        log.warning("%s (pid %s) did not stop within %.0f s; killing it", name, process.pid, grace)
        process.kill()
        return process.wait(10)


def describe_exit(code: int | None) -> str:
    """``exit status 3`` or ``killed by SIGKILL``, for a Popen return code."""
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"
