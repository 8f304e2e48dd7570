"""`VirtualClock`: time that moves only when a test says so."""

from __future__ import annotations

import heapq
import itertools
import threading
from typing import TYPE_CHECKING, Any

from hedgerow._clock import TimerHandle

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["VirtualClock"]


class VirtualClock:
    """A `Clock` for tests: `advance()` moves time and runs the timers that fall due.

    Backoff delays, intensity windows and shutdown timeouts read this clock,
    so a test of five restarts with exponential backoff takes no real time.
    Due callbacks run in the thread that calls `advance`, in time order.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._heap: list[tuple[float, int, TimerHandle]] = []
        self._seq = itertools.count()
        self._lock = threading.Condition()

    def now(self) -> float:
        return self._now

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> TimerHandle:
        with self._lock:
            handle = TimerHandle(self._now + max(delay, 0.0), callback, args)
            heapq.heappush(self._heap, (handle.when, next(self._seq), handle))
            self._lock.notify_all()
        return handle

    def wait(self, waiter: threading.Event, timeout: float | None) -> None:
        if timeout is None:
            waiter.wait()
            return
        handle = self.call_later(timeout, waiter.set)
        try:
            waiter.wait()
        finally:
            handle.cancel()

    def pending(self) -> list[float]:
        """When the timers not yet run are due (cancelled ones left out)."""
        with self._lock:
            return sorted(h.when for _, _, h in self._heap if not h.cancelled)

    def next_deadline(self) -> float | None:
        times = self.pending()
        return times[0] if times else None

    def wait_for_timer(self, timeout: float | None = 10.0) -> float:
        """Block (in real time) until some timer is pending; its due time."""
        with self._lock:
            ok = self._lock.wait_for(
                lambda: any(not h.cancelled for _, _, h in self._heap), timeout
            )
        if not ok:
            msg = f"no timer was scheduled within {timeout} s"
            raise TimeoutError(msg)
        deadline = self.next_deadline()
        assert deadline is not None
        return deadline

    def advance(self, seconds: float) -> None:
        """Move time forward by `seconds`, running every timer that falls due."""
        if seconds < 0:
            msg = f"cannot move a clock backwards ({seconds} s)"
            raise ValueError(msg)
        target = self._now + seconds
        while True:
            with self._lock:
                if not self._heap or self._heap[0][0] > target:
                    self._now = target
                    return
                when, _, handle = heapq.heappop(self._heap)
                self._now = max(self._now, when)
            handle._run()

    def jump_to_next(self) -> float:
        """Advance exactly to the next pending timer (waiting for one if needed)."""
        deadline = self.wait_for_timer()
        self.advance(max(deadline - self._now, 0.0))
        return deadline
