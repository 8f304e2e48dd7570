"""How a worker process starts: forked by a zygote (``forkserver``, where this platform
can), or a new interpreter (``spawn``), and the default, which the environment may set."""

from __future__ import annotations

import os
import signal
import socket
import sys

__all__ = ["FORK_SERVER_AVAILABLE", "START_METHODS", "START_METHOD_ENV", "default_start_method"]

START_METHODS = ("forkserver", "spawn")
"""How a worker process starts: forked by a zygote, or a new interpreter."""
START_METHOD_ENV = "HEDGEROW_WORKER_START_METHOD"
"""The environment variable that sets the default start method (``spawn`` opts out)."""
FORK_SERVER_AVAILABLE = (
    sys.platform == "linux"
    and hasattr(os, "pidfd_open")
    and hasattr(os, "P_PIDFD")
    and hasattr(signal, "pidfd_send_signal")
    and hasattr(socket, "SOCK_SEQPACKET")
    and hasattr(socket, "send_fds")
)
"""Whether this platform has what a fork server needs (Linux: fork, pidfds, SCM_RIGHTS)."""


def default_start_method() -> str:
    """``forkserver`` where it works, unless `START_METHOD_ENV` says ``spawn``;
    `ValueError` naming the variable for a value that is neither."""
    chosen = os.environ.get(START_METHOD_ENV, "").strip()
    if chosen and chosen not in START_METHODS:
        msg = f"{START_METHOD_ENV}={chosen!r}: expected one of {', '.join(START_METHODS)}"
        raise ValueError(msg)
    if chosen == "spawn" or not FORK_SERVER_AVAILABLE:
        return "spawn"
    return "forkserver"
