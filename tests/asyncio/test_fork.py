"""A process forked while another thread holds one of the locks that awaited asks,
tells and deadlines take: the child takes them afresh."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from hedgerow.actors import _async_future, _deadlines, _inbox
from hedgerow.actors._async_future import AsyncioFuture
from hedgerow.supervision import _update

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork"),
]

WAIT = 10.0


def fork_while_held(lock: Any, in_child: Callable[[], None]) -> int:
    """Fork while another thread holds `lock`; the child runs `in_child()` (a watchdog
    ends it with 2 if that hangs); its exit code."""
    held, done = threading.Event(), threading.Event()

    def holder() -> None:
        with lock:
            held.set()
            done.wait(WAIT)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(WAIT)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            threading.Timer(5.0, os._exit, (2,)).start()
            try:
                in_child()
            except BaseException:  # the exit code says it
                os._exit(1)
            os._exit(0)
    finally:
        done.set()
        thread.join(WAIT)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_a_future_set_in_a_child_forked_while_its_waiters_lock_was_held():
    """(The child hung on the lock a thread of the parent held: seen failing, exit 2.)"""

    def in_child() -> None:
        future: AsyncioFuture[int] = AsyncioFuture()
        seen: list[int] = []
        future.add_done_callback(lambda f: seen.append(f.get(timeout=0)))
        future.set(1)
        assert seen == [1]

    assert fork_while_held(_async_future._waiters_lock, in_child) == 0


def test_a_deadline_in_a_child_forked_while_the_deadlines_lock_was_held():
    def in_child() -> None:
        came = threading.Event()
        _deadlines.at(time.monotonic(), came.set)
        assert came.wait(WAIT)

    lock = _deadlines._condition._lock  # type: ignore[attr-defined]
    assert fork_while_held(lock, in_child) == 0


class _Key:
    """Something a weak dictionary can key (a tree, for the update locks)."""


def _make_an_inbox_condition() -> None:
    assert _inbox.Inbox().not_full is not None


def _find_an_update_lock() -> None:
    assert _update._lock_of(_Key()) is not None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("lock", "in_child"),
    [
        (lambda: _inbox._making, _make_an_inbox_condition),
        (lambda: _update._locks_lock, _find_an_update_lock),
    ],
    ids=["inbox conditions", "update locks"],
)
def test_the_process_wide_locks_are_fresh_in_a_child_forked_while_one_was_held(
    lock: Callable[[], Any], in_child: Callable[[], None]
) -> None:
    """(The child hung on the lock: seen failing, each, exit 2 from its watchdog.)"""
    assert fork_while_held(lock(), in_child) == 0
