"""Which asyncio tasks wait for a task: those its end wakes, directly or through others.

An update awaited in a task that a child's handler waits for (``await task``,
``asyncio.wait_for`` on Python 3.11, ``gather``, ``shield``, ``asyncio.wait``,
a ``TaskGroup`` of the handler's) would wait for that child's stop, which
waits for the handler: `update_tree` refuses it, as it refuses the handler's
own. asyncio keeps no "awaited by" link, but what a future's end does is in
its done callbacks: a task's wakeup (bound to the waiting task), a partial
or a closure holding the future it resolves next (``wait_for``'s waiter,
``gather``'s and ``shield``'s outer futures), a ``TaskGroup``'s callback
(bound to the group, whose parent task waits at its end). They are followed
from the task, up. asyncio is not imported for it.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

__all__ = ["waiting_for"]

_LIMIT = 10_000
"""Futures looked at, at most (a bound against a pathological graph)."""


def waiting_for(task: object) -> list[Any]:
    """The tasks that wait for `task` (an asyncio task, or None: none), nearest first."""
    aio = sys.modules.get("asyncio")
    if task is None or aio is None or not isinstance(task, aio.Future):
        return []
    found: list[Any] = []
    seen = {id(task)}
    todo = [task]
    while todo and len(seen) < _LIMIT:
        future = todo.pop(0)
        callbacks = getattr(future, "_callbacks", None) or ()
        for entry in list(callbacks):
            callback = entry[0] if isinstance(entry, tuple) else entry
            for waiter in _woken_by(callback, aio):
                if id(waiter) in seen:
                    continue
                seen.add(id(waiter))
                if isinstance(waiter, aio.Task):
                    found.append(waiter)
                todo.append(waiter)
    return found


def _woken_by(callback: Any, aio: Any) -> list[Any]:
    """The futures (tasks among them) that `callback`, a done callback, resolves or wakes."""
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, aio.Future):  # a task awaiting it: its wakeup
        return [owner]
    parent = getattr(owner, "_parent_task", None)
    if isinstance(parent, aio.Task):  # a TaskGroup's: its parent waits for it at its end
        return [parent]
    if isinstance(callback, functools.partial):
        values = (*callback.args, *callback.keywords.values())
        return [v for v in values if isinstance(v, aio.Future)]
    woken = []
    for cell in getattr(callback, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if isinstance(value, aio.Future):
            woken.append(value)
    return woken
