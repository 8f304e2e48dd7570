"""What autojump reads of other threads: their innermost frames, and whether one
is parked in ``Condition.wait`` (idle) rather than running."""

from __future__ import annotations

import gc
import sys
import threading
from typing import Any

__all__ = ["blocked", "current_frames"]

_CONDITION_WAIT = threading.Condition.wait.__code__


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
    """Is this thread (its innermost frame) blocked in ``Condition.wait`` and not
    yet notified? A notified waiter's lock is released: it is about to run."""
    if frame is None:
        return False
    try:
        if frame.f_code is not _CONDITION_WAIT:
            return False
        waiter = frame.f_locals.get("waiter")
    except Exception:  # noqa: BLE001 - another thread's frame can change under us
        # (CPython 3.11 at a tiny switch interval: an f_code that is no code
        # object); busy, then, and looked at again at the next poll.
        return False
    return waiter is not None and bool(waiter.locked())
