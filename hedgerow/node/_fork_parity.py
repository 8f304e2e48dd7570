"""What makes a worker a zygote forks start as a spawned one would: an environment
`subprocess.Popen` would take, the node's stderr as a spawned child would inherit it,
and descriptors handed to a zygote kept clear of its stdio."""

from __future__ import annotations

import fcntl
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["check_env", "has_stderr", "past_stdio"]


def check_env(env: Mapping[str, str]) -> None:
    """`ValueError` or `TypeError` for an environment `subprocess.Popen` refuses, with
    its message, so that a fork fails as a spawn would (not in the worker, with a
    traceback)."""
    for name, value in env.items():
        encoded = os.fsencode(name)  # TypeError for what is not text, as Popen's
        if b"=" in encoded:
            msg = "illegal environment variable name"
            raise ValueError(msg)
        if b"\0" in encoded or b"\0" in os.fsencode(value):
            msg = "embedded null byte"
            raise ValueError(msg)


def past_stdio(fd: int) -> int:
    """`fd`, moved past 0 to 2 if it is one of them (a node started with its stdio
    closed): passed to a zygote, it would be replaced by the zygote's stdio."""
    if fd > 2:  # noqa: PLR2004 - stdio
        return fd
    try:
        return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    finally:
        os.close(fd)


def has_stderr() -> bool:
    """Whether descriptor 2 is the node's stderr, as a spawned child would inherit it: open
    and inheritable. A node started with it closed has whatever it opened next there
    (close-on-exec: a file, or a zygote's socket), which no child may get."""
    try:
        return os.get_inheritable(2)
    except OSError:
        return False
