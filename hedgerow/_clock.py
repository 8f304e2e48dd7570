"""Clocks: where supervisors read time and schedule delayed work.

Backoff delays, intensity windows and shutdown timeouts all go through a
`Clock`, so that tests can swap in `hedgerow.testing.VirtualClock` and run a
minute of restarts in no real time.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import threading
import time
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["MAX_DELAY", "Clock", "MonotonicClock", "TimerHandle", "default_clock", "seconds"]

logger = logging.getLogger("hedgerow")

MAX_DELAY = 1e9
"""The longest delay or timeout a spec may name, in seconds (about 31 years).

Longer is a typo, not a plan (``shutdown = "infinity"`` says "wait for ever").
The clocks themselves take any delay: this bound is for specs and tree files.
"""

_LONGEST_WAIT = 86400.0
"""The real clock waits at most this long at once (a lock's timeout overflows
somewhere past 9e9 s; a timer further out than this is simply looked at again)."""


def seconds(delay: float) -> float:
    """`delay` as a float, ``inf`` for what is too big to be one; NaN is refused.

    Raises `ValueError` (in the caller's thread: the clock's own is never harmed).
    """
    try:
        value = float(delay)
    except OverflowError:  # an int beyond any float
        value = math.inf if delay > 0 else -math.inf
    if math.isnan(value):
        msg = f"delay={delay!r}: expected a number of seconds"
        raise ValueError(msg)
    return value


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
    """Real time from `time.monotonic`, with one scheduler thread for timers.

    Any delay is safe, ``inf`` and ``1e300`` included (such a timer never comes
    due): no value one tree asks for can stop the thread that runs every tree's
    timers, and neither can a callback that raises, even `SystemExit`.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, TimerHandle]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def now(self) -> float:
        return time.monotonic()

    def close(self) -> None:
        """Cancel the pending timers and end the scheduler thread (a clock made
        for one run; the process-wide one is never closed). A later
        `call_later` starts a new thread."""
        with self._cond:
            for _, _, handle in self._heap:
                handle.cancel()
            self._heap.clear()
            thread, self._thread = self._thread, None
            self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def wait(self, waiter: threading.Event, timeout: float | None) -> None:
        if timeout is None:
            waiter.wait()
            return
        deadline = time.monotonic() + max(seconds(timeout), 0.0)
        while not waiter.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            waiter.wait(min(remaining, _LONGEST_WAIT))

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> TimerHandle:
        handle = TimerHandle(time.monotonic() + max(seconds(delay), 0.0), callback, args)
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
        me = threading.current_thread()
        while True:
            with self._cond:
                while True:
                    if self._thread is not me:
                        return  # closed
                    now = time.monotonic()
                    if self._heap and self._heap[0][0] <= now:
                        break
                    timeout = min(self._heap[0][0] - now, _LONGEST_WAIT) if self._heap else None
                    self._cond.wait(timeout)
                _, _, handle = heapq.heappop(self._heap)
            try:
                handle._run()
            except BaseException:  # SystemExit too: the other trees' timers go on
                logger.exception("Timer callback %r raised", handle.callback)


_default_clock: MonotonicClock | None = None
_default_lock = threading.Lock()


def default_clock() -> MonotonicClock:
    """The process-wide real clock (its scheduler thread starts on first use)."""
    global _default_clock  # noqa: PLW0603
    with _default_lock:
        if _default_clock is None:
            _default_clock = MonotonicClock()
        return _default_clock
