"""Clocks: where supervisors read time and schedule delayed work.

Backoff delays, intensity windows and shutdown timeouts all go through a
`Clock`, so that tests can swap in `hedgerow.testing.VirtualClock` and run a
minute of restarts in no real time.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Clock", "MonotonicClock", "TimerHandle", "default_clock"]

logger = logging.getLogger("hedgerow")


class TimerHandle:
    """A scheduled callback; `cancel()` stops it from running if it has not yet."""

    __slots__ = ("args", "callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.when = when
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def _run(self) -> None:
        if self.cancelled:
            return
        try:
            self.callback(*self.args)
        except Exception:
            logger.exception("Timer callback %r failed", self.callback)


class Clock(Protocol):
    """What the runtime needs from time: read it, and run something later.

    Callbacks given to `call_later` run on a thread of the clock's choosing and
    must be quick: hedgerow's own only put a message in an inbox or set an event.
    """

    def now(self) -> float: ...

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> TimerHandle: ...

    def wait(self, waiter: threading.Event, timeout: float | None) -> None:
        """Block until `waiter` is set or `timeout` seconds of this clock pass.

        The clock may set `waiter` itself at the deadline, so pass a private
        event that whatever you wait for also sets, and check the outcome after.
        """
        ...


class MonotonicClock:
    """Real time from `time.monotonic`, with one scheduler thread for timers."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, TimerHandle]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def now(self) -> float:
        return time.monotonic()

    def wait(self, waiter: threading.Event, timeout: float | None) -> None:
        waiter.wait(timeout)

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> TimerHandle:
        handle = TimerHandle(time.monotonic() + max(delay, 0.0), callback, args)
        with self._cond:
            heapq.heappush(self._heap, (handle.when, next(self._seq), handle))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, daemon=True, name="hedgerow-clock"
                )
                self._thread.start()
            self._cond.notify()
        return handle

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(timeout)
                _, _, handle = heapq.heappop(self._heap)
            handle._run()


_default_clock: MonotonicClock | None = None
_default_lock = threading.Lock()


def default_clock() -> MonotonicClock:
    """The process-wide real clock (its scheduler thread starts on first use)."""
    global _default_clock  # noqa: PLW0603
    with _default_lock:
        if _default_clock is None:
            _default_clock = MonotonicClock()
        return _default_clock
