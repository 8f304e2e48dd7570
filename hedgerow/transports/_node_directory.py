"""Temporary Crossbar node directories that do not outlive their router, even killed.

Crossbar keeps its node key in its node directory. A router that makes a
temporary one removes it when it stops, and its guard removes it when the
router dies; if both die at once (SIGKILL to both, the OOM killer, a cgroup
killed whole) nothing is left to do it. So each such directory holds a lock
file, locked (``flock``) by the router and, through an inherited descriptor,
by crossbar's guard: the kernel lets go of the lock when the last of them
dies. `sweep` removes the directories of this user whose lock nobody holds;
`hedgerow router` and `Crossbar` sweep before they make a new one.

The lock file is written (the owner's pid) only once it is locked, and a
sweeper leaves an empty one alone: it may be a directory being made.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["LOCK_NAME", "NodeDirectory", "sweep"]

LOCK_NAME = ".hedgerow-router.lock"


class NodeDirectory:
    """A fresh temporary node directory (`path`) whose lock this process holds (`fd`)."""

    def __init__(self, prefix: str) -> None:
        self.path = Path(tempfile.mkdtemp(prefix=prefix))
        self.fd = os.open(self.path / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)  # waits out a sweeper that looked first
        os.write(self.fd, f"{os.getpid()}\n".encode())

    def remove(self) -> None:
        """Remove the directory, then let go of the lock."""
        shutil.rmtree(self.path, ignore_errors=True)
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def sweep(prefix: str, directory: str | Path | None = None) -> list[Path]:
    """Remove the node directories named `prefix`* in `directory` (the temporary
    directory by default) that this user owns and whose lock nobody holds; their paths."""
    root = Path(directory if directory is not None else tempfile.gettempdir())
    removed = []
    with contextlib.suppress(OSError):
        for path in root.glob(f"{prefix}*"):
            if _abandoned(path):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
    return removed


def _abandoned(path: Path) -> bool:
    """True if `path` is our directory with a written lock file that nobody holds."""
    try:
        if path.is_symlink() or not path.is_dir() or path.stat().st_uid != os.getuid():
            return False
        fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return False  # no lock file: not ours to judge (or being made)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # held: its router (or guard) lives
        return os.fstat(fd).st_size > 0
    finally:
        os.close(fd)
