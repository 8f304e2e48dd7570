"""`at`: call a function at a deadline, in real time, from a thread of its own.

A send that waits for room in a full inbox without blocking its sender (an
event loop's: `hedgerow.tell`) is a dead letter after the inbox's timeout, as
a blocked thread's is. Its loop cannot keep that deadline: the loop may be
driven by a virtual clock (the inbox timeout is real time), or be closed
before it comes. One daemon thread per process keeps them all; it ends when
it has none left, and the next deadline starts it again.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["at"]

logger = logging.getLogger("hedgerow.actors")

_THREAD_NAME = "hedgerow-deadlines"
"""Not "hedgerow ..." (an actor's thread): it is the process's, not a test's leftover."""

_condition = threading.Condition(threading.Lock())
_due: list[tuple[float, int, Callable[[], None]]] = []
_order = itertools.count()
_running = False


def at(deadline: float, call: Callable[[], None]) -> None:
    """Call ``call()`` at `deadline` (`time.monotonic` terms), or soon after, in the
    deadlines' thread: it must be quick. What it raises is logged."""
    global _running  # noqa: PLW0603 - the one thread of the process
    with _condition:
        heapq.heappush(_due, (deadline, next(_order), call))
        if not _running:
            _running = True
            threading.Thread(target=_run, name=_THREAD_NAME, daemon=True).start()
        elif _due[0][2] is call:
            _condition.notify()


def _run() -> None:
    global _running  # noqa: PLW0603
    while True:
        with _condition:
            while True:
                if not _due:
                    _running = False
                    return
                remaining = _due[0][0] - time.monotonic()
                if remaining <= 0:
                    call = heapq.heappop(_due)[2]
                    break
                _condition.wait(remaining)
        try:
            call()
        except Exception:
            logger.exception("A deadline's call %r failed", call)
