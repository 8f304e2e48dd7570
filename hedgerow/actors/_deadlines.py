"""`at`: call a function at a deadline, in real time, from a thread of its own.

A send that waits for room in a full inbox without blocking its sender (an
event loop's: `hedgerow.tell`) is a dead letter after the inbox's timeout, as
a blocked thread's is. Its loop cannot keep that deadline: the loop may be
driven by a virtual clock (the inbox timeout is real time), or be closed
before it comes. One daemon thread per process keeps them all; it ends when
it has none left, and the next deadline starts it again. A deadline no longer
needed (the send found room) is cancelled: it keeps nothing alive, and the
cancelled ones are swept out once they are half of those waiting.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import os
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Deadline", "at", "cancel"]

logger = logging.getLogger("hedgerow.actors")

_THREAD_NAME = "hedgerow-deadlines"
"""Not "hedgerow ..." (an actor's thread): it is the process's, not a test's leftover."""

_SWEEP_AT = 64
"""Sweep the cancelled deadlines out once there are this many, and half of all."""

_LONGEST_WAIT = 3600.0
"""The longest the thread waits at once (a lock cannot wait beyond `threading.TIMEOUT_MAX`,
nor for an infinite deadline): it looks again after this long."""

Deadline = list[Any]
"""[when, order, call]: what `at` returns, for `cancel` (call None once cancelled)."""

_condition = threading.Condition(threading.Lock())
_due: list[Deadline] = []
_order = itertools.count()
_running = False
_cancelled = 0


def at(deadline: float, call: Callable[[], None]) -> Deadline:
    """Call ``call()`` at `deadline` (`time.monotonic` terms), or soon after, in the
    deadlines' thread, unless cancelled first: it must be quick. What it raises is logged."""
    global _running  # noqa: PLW0603 - the one thread of the process
    if math.isnan(deadline):
        msg = f"a deadline must be a number (time.monotonic() terms), not {deadline!r}"
        raise ValueError(msg)
    entry: Deadline = [deadline, next(_order), call]
    with _condition:
        heapq.heappush(_due, entry)
        if not _running:
            _running = True
            threading.Thread(target=_run, name=_THREAD_NAME, daemon=True).start()
        elif _due[0] is entry:
            _condition.notify()
    return entry


def cancel(entry: Deadline) -> None:
    """Never call what `entry` was to call (nothing if it has been called)."""
    global _due, _cancelled  # noqa: PLW0603
    with _condition:
        if entry[2] is None:
            return
        entry[2] = None
        _cancelled += 1
        if _due and _due[0] is entry:
            _condition.notify()  # the thread pops it (and ends, if it was the last)
        elif _cancelled >= _SWEEP_AT and _cancelled * 2 >= len(_due):
            _due = [e for e in _due if e[2] is not None]
            heapq.heapify(_due)
            _cancelled = 0


def _forked() -> None:
    """In a forked child: the parent's thread is not there (nor, maybe, its lock's
    owner). The next deadline starts the child's own; those copied from the
    parent (their senders' loops are not in the child either) are let go."""
    global _condition, _due, _running, _cancelled  # noqa: PLW0603
    _condition = threading.Condition(threading.Lock())
    _due = []
    _running = False
    _cancelled = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


def _run() -> None:
    global _running, _cancelled  # noqa: PLW0603
    while True:
        with _condition:
            while True:
                if not _due:
                    _running = False
                    return
                remaining = _due[0][0] - time.monotonic()
                if remaining <= 0 or _due[0][2] is None:
                    entry = heapq.heappop(_due)
                    call = entry[2]
                    if call is None:
                        _cancelled -= 1
                        continue
                    entry[2] = None
                    break
                _condition.wait(min(remaining, _LONGEST_WAIT))
        try:
            call()
        except Exception:
            logger.exception("A deadline's call %r failed", call)
