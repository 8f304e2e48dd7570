"""The signal handler and the wake-up of `hedgerow run`."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
from typing import TYPE_CHECKING

from hedgerow.node import Bus, SignalHandler

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType


class _Signals(SignalHandler):
    """The bus's signal handling, remembering the last signal for the log line
    that says why the tree stops."""

    def __init__(
        self, bus: Bus, on_repeat: Callable[[int], None], on_exit: Callable[[], None]
    ) -> None:
        super().__init__(bus, on_repeat, on_exit)
        self.last: str | None = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.last = signal.Signals(signum).name
        super()._handle(signum, frame)


class _Wakeup:
    """Wakes the main thread: set from any thread or signal handler, waited on
    by the main thread, also from a signal handler that interrupted its wait.

    A pipe, not a `threading.Event`: the bus's stop listener often runs in a
    signal handler and waits too, and an Event's lock, held by the frame the
    handler interrupted, would deadlock it.
    """

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._lock = threading.Lock()  # only threads take it (and close): never a handler
        self._closed = False

    def set(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self._poke()  # perhaps in a signal handler: no lock
            return
        with self._lock:
            if not self._closed:
                self._poke()

    def _poke(self) -> None:
        with contextlib.suppress(BlockingIOError):  # the pipe is full: a wake-up is pending
            os.write(self._write, b"\0")

    def wait(self, timeout: float) -> None:
        poll = select.poll()  # one per call: a poll object refuses a nested poll()
        poll.register(self._read, select.POLLIN)
        poll.poll(timeout * 1000)
        with contextlib.suppress(BlockingIOError):
            os.read(self._read, 4096)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            os.close(self._read)
            os.close(self._write)
