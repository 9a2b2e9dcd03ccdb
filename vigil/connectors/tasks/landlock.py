"""The sandbox's filesystem rules, with Linux Landlock (5.13+; no privileges needed, and it
works inside containers): a run may read the system's and Python's files, and write only
its own working directory. vigil's data dir, project, keys and other runs' directories are
out of its reach although it runs as vigil's user.

The ruleset is built in the runner (``Rules.build``: one O_PATH descriptor per allowed
tree) and enforced in the child between fork and exec (``Rules.enforce``), so it binds the
run and everything it starts, never the runner. Written over the three system calls with
ctypes: PyPI's ``landlock`` is a development release only.
"""

from __future__ import annotations

import ctypes
import os
import struct
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

CREATE_RULESET, ADD_RULE, RESTRICT_SELF = 444, 445, 446  # the same on x86_64 and arm64
VERSION_FLAG = 1  # LANDLOCK_CREATE_RULESET_VERSION
RULE_PATH_BENEATH = 1
PR_SET_NO_NEW_PRIVS = 38

EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
ABI1_ALL = (1 << 13) - 1  # execute … make_sym
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV
READ = EXECUTE | READ_FILE | READ_DIR

# not /proc: a run could read the runner's /proc/<pid>/environ (its secrets) from there
SYSTEM = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc", "/opt", "/sys")

LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None  # the C library


def abi() -> int:
    """The kernel's Landlock ABI version; 0 when there is none (or it is disabled)."""
    if LIBC is None:
        return 0
    found = int(LIBC.syscall(CREATE_RULESET, None, ctypes.c_size_t(0), VERSION_FLAG))
    return max(found, 0)


def _handled(version: int) -> int:
    rights = ABI1_ALL
    if version >= 2:
        rights |= REFER
    if version >= 3:
        rights |= TRUNCATE
    if version >= 5:
        rights |= IOCTL_DEV
    return rights


@dataclass(frozen=True)
class Rules:
    """A ruleset's descriptor; close it once the child has started."""

    fd: int

    @classmethod
    def build(cls, workdir: Path, readable: Iterable[Path]) -> Rules | None:
        """Read (and execute) the system's trees and ``readable``; anything in ``workdir``
        and /dev. None when the kernel has no Landlock."""
        version = abi()
        if version == 0 or LIBC is None:
            return None
        handled = _handled(version)
        attr = struct.pack("=Q", handled)
        fd = int(LIBC.syscall(CREATE_RULESET, attr, ctypes.c_size_t(len(attr)), 0))
        if fd < 0:
            return None
        rules = cls(fd)
        for path in [*map(Path, SYSTEM), *readable]:
            rules._allow(path, READ & handled)
        rules._allow(Path("/dev"), (READ | WRITE_FILE | IOCTL_DEV) & handled)
        rules._allow(workdir, handled)
        return rules

    def _allow(self, path: Path, rights: int) -> None:
        assert LIBC is not None
        try:
            target = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            return  # not on this system (/lib32, /opt…)
        try:
            if not os.path.isdir(path):
                rights &= FILE_RIGHTS
            attr = struct.pack("=Qi", rights, target)  # landlock_path_beneath_attr, packed
            LIBC.syscall(ADD_RULE, self.fd, RULE_PATH_BENEATH, attr, 0)
        finally:
            os.close(target)

    def enforce(self) -> None:
        """In the child before exec: no new privileges, then the ruleset for good."""
        assert LIBC is not None
        if LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        if LIBC.syscall(RESTRICT_SELF, self.fd, 0) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")

    def close(self) -> None:
        os.close(self.fd)
