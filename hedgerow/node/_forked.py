"""A worker forked by a zygote, as its node sees it: the part of `subprocess.Popen` it uses."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import threading
import weakref
from time import monotonic
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["STATUS_LOST", "ForkedProcess"]

STATUS_LOST = 255
"""The return code of a forked worker whose zygote died before it did (``status_lost``)."""


class ForkedProcess:
    """A worker forked by a zygote: the part of `subprocess.Popen` a `WorkerActor` uses.

    Signals go through a pidfd (so never to a reused pid); the exit status
    comes from the zygote. If the zygote dies first, the exit is seen on the
    pidfd, and `returncode` is `STATUS_LOST` with `status_lost` set.
    """

    def __init__(self, pid: int, pidfd: int, args: Sequence[str]) -> None:
        self.pid = pid
        self.args = list(args)
        self.stdin: IO[bytes] | None = None
        self.stdout: IO[bytes] | None = None
        self.returncode: int | None = None
        self.status_lost = False
        self._pidfd = pidfd
        self._close_pidfd = weakref.finalize(self, os.close, pidfd)
        self._lost = False  # its zygote died: the pidfd tells the exit
        self._changed = threading.Condition()

    def __repr__(self) -> str:
        return f"<ForkedProcess pid {self.pid} returncode {self.returncode}>"

    # -- from the fork server's reader ------------------------------------------------

    def _exited(self, returncode: int) -> None:
        """The zygote reaped it and reports how it ended."""
        with self._changed:
            if self.returncode is None:
                self.returncode = returncode
                if not self._lost:  # nobody waits on the pidfd: close it now
                    self._close_pidfd()
            self._changed.notify_all()

    def _lose(self) -> None:
        """The zygote died: from now on, the exit is the pidfd's to tell."""
        with self._changed:
            self._lost = True
            self._changed.notify_all()

    # -- Popen's ----------------------------------------------------------------------

    def _exited_by_pidfd(self, timeout: float | None) -> bool:
        """With the zygote gone: wait up to `timeout` for the pidfd to say it exited."""
        try:
            ready, _, _ = select.select([self._pidfd], [], [], timeout)
        except (OSError, ValueError):
            ready = [self._pidfd]
        if not ready:
            return False
        with self._changed:
            if self.returncode is None:
                self.returncode = STATUS_LOST
                self.status_lost = True
                self._changed.notify_all()
        return True

    def poll(self) -> int | None:
        if self.returncode is None and self._lost:
            self._exited_by_pidfd(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else monotonic() + timeout
        with self._changed:
            while self.returncode is None and not self._lost:
                remaining = None if deadline is None else deadline - monotonic()
                if remaining is not None and remaining <= 0:
                    raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
                self._changed.wait(remaining)
            if self.returncode is not None:
                return self.returncode
        remaining = None if deadline is None else max(deadline - monotonic(), 0.0)
        if not self._exited_by_pidfd(remaining):
            raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, signum: int) -> None:
        with self._changed:
            if self.returncode is not None:
                return  # exited: its pid may be another's now
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self._pidfd, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def kill_group(self, signum: int = signal.SIGKILL) -> None:
        """Signal its process group (its session's, whose leader it is) while it
        runs: a running leader's pid is its group's and nobody else's."""
        with self._changed:
            if self.returncode is not None:
                return
            ready, _, _ = select.select([self._pidfd], [], [], 0)
            if not ready:
                with contextlib.suppress(OSError):
                    os.killpg(self.pid, signum)
