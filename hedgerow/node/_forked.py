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
    from collections.abc import Callable, Sequence

__all__ = ["REPORT_TIMEOUT", "STATUS_LOST", "ForkedProcess"]

STATUS_LOST = 255
"""The return code of a forked worker whose zygote died (or hung) before it told its
exit (``status_lost``)."""
REPORT_TIMEOUT = 10.0
"""Seconds a zygote has to report the exit of a worker it forked once the worker's pidfd
says it exited; past them, the zygote is taken to hang."""


class ForkedProcess:
    """A worker forked by a zygote: the part of `subprocess.Popen` a `WorkerActor` uses.

    Signals go through a pidfd (so never to a reused pid); the exit status
    comes from the zygote. If the zygote dies first, the exit is seen on the
    pidfd, and `returncode` is `STATUS_LOST` with `status_lost` set. So it is
    if the zygote hangs: a worker the pidfd says has exited, and the zygote has
    not reported `REPORT_TIMEOUT` seconds later, is lost, and `on_unreported`
    (the node's: it kills the zygote) is called.
    """

    def __init__(
        self,
        pid: int,
        pidfd: int,
        args: Sequence[str],
        on_unreported: Callable[[], None] | None = None,
    ) -> None:
        self.pid = pid
        self.args = list(args)
        self.stdin: IO[bytes] | None = None
        self.stdout: IO[bytes] | None = None
        self.returncode: int | None = None
        self.status_lost = False
        self._pidfd = pidfd
        self._close_pidfd = weakref.finalize(self, os.close, pidfd)
        self._lost = False  # its zygote died: the pidfd tells the exit
        self._watching = 0  # threads that wait on the pidfd: it stays open for them
        self._on_unreported = on_unreported
        self._changed = threading.Condition()

    def __repr__(self) -> str:
        return f"<ForkedProcess pid {self.pid} returncode {self.returncode}>"

    # -- from the fork server's reader ------------------------------------------------

    def _exited(self, returncode: int) -> None:
        """The zygote reaped it and reports how it ended."""
        with self._changed:
            if self.returncode is None:
                self.returncode = returncode
                self._release()
            self._changed.notify_all()

    def _lose(self) -> None:
        """The zygote died: from now on, the exit is the pidfd's to tell."""
        with self._changed:
            self._lost = True
            self._changed.notify_all()

    def _release(self) -> None:
        """With `_changed` held and the exit known: close the pidfd (nothing needs it
        any more), unless a thread still waits on it (that thread closes it)."""
        if not self._watching:
            self._close_pidfd()

    def exit_descriptor(self) -> int | None:
        """A copy of its pidfd, readable once it has exited, for the caller to close;
        None once its exit is known (the pidfd may be closed), or out of descriptors."""
        with self._changed:
            if self.returncode is not None:
                return None
            try:
                return os.dup(self._pidfd)
            except OSError:
                return None

    # -- Popen's ----------------------------------------------------------------------

    def _pidfd_says_exited(self, timeout: float | None) -> bool:
        """Wait up to `timeout` seconds (None: for ever) for the pidfd to say it exited.
        With `poll`, not `select`: a busy node's pidfd may be numbered past FD_SETSIZE."""
        poller = select.poll()
        poller.register(self._pidfd, select.POLLIN)
        millis = None if timeout is None else max(int(timeout * 1000), 0)
        return bool(poller.poll(millis))

    def _lost_exit(self) -> None:
        """Its exit, which no zygote will report (`_changed` held)."""
        if self.returncode is None:
            self.returncode = STATUS_LOST
            self.status_lost = True
            self._release()
            self._changed.notify_all()

    def poll(self) -> int | None:
        with self._changed:
            if self.returncode is None and self._lost and self._pidfd_says_exited(0):
                self._lost_exit()
            return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else monotonic() + timeout
        with self._changed:
            if self.returncode is not None:
                return self.returncode
            self._watching += 1
        try:
            return self._wait(deadline, timeout)
        finally:
            with self._changed:
                self._watching -= 1
                if self.returncode is not None:
                    self._release()

    def _wait(self, deadline: float | None, timeout: float | None) -> int:
        """`wait`'s, with the pidfd kept open: first the pidfd says the process ended,
        then the zygote says how (up to `REPORT_TIMEOUT` seconds later)."""
        remaining = None if deadline is None else max(deadline - monotonic(), 0.0)
        if self.returncode is None and not self._pidfd_says_exited(remaining):
            raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
        report_by = monotonic() + REPORT_TIMEOUT
        with self._changed:
            while self.returncode is None and not self._lost:
                until = report_by if deadline is None else min(report_by, deadline)
                remaining = until - monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            if self.returncode is not None:
                return self.returncode
            if not self._lost and deadline is not None and deadline < report_by:
                raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
            unreported = not self._lost
            self._lost = True  # the pidfd told it, and no zygote will
            self._lost_exit()
            returncode = self.returncode
        assert returncode is not None
        if unreported and self._on_unreported is not None:
            self._on_unreported()
        return returncode

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
            if not self._pidfd_says_exited(0):
                with contextlib.suppress(OSError):
                    os.killpg(self.pid, signum)
