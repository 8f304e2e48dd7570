"""What autojump reads of other threads: their innermost frames, and whether one
is parked in ``Condition.wait`` (idle) rather than running."""

from __future__ import annotations

import gc
import sys
import threading
from typing import Any

from hedgerow.actors._async_future import AsyncioFuture

__all__ = ["blocked", "current_frames"]

_CONDITION_WAIT = threading.Condition.wait.__code__
_FUTURE_WAIT = AsyncioFuture._hr_block.__code__


def current_frames() -> dict[int, Any]:
    """`sys._current_frames()` with the garbage collector off, as CPython itself
    does from 3.12 (gh-106883): a collection started inside it, while it holds
    the interpreter's thread-list lock, can deadlock the whole process (seen
    here on 3.11: every thread parked, pytest-timeout unable to fire)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return sys._current_frames()
    finally:
        if enabled:
            gc.enable()


def blocked(frame: Any) -> bool:
    """Is this thread (its innermost frame) blocked in ``Condition.wait`` (or in an
    `AsyncioFuture`'s get()) and not yet woken? A woken waiter's lock is released:
    it is about to run."""
    if frame is None:
        return False
    try:
        code = frame.f_code
        if code is _CONDITION_WAIT:
            waiter = frame.f_locals.get("waiter")
        elif code is _FUTURE_WAIT:  # an AsyncioFuture's get(), on a lock of its own
            waiter = frame.f_locals.get("lock")
        else:
            return False
    except Exception:  # noqa: BLE001 - another thread's frame can change under us
        # (CPython 3.11 at a tiny switch interval: an f_code that is no code
        # object); busy, then, and looked at again at the next poll.
        return False
    return waiter is not None and bool(waiter.locked())
