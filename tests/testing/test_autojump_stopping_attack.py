"""Diagnosis of a flaky test of test_faults.py,
``test_hang_ignores_stop_until_the_shutdown_timeout_abandons_it`` (seen reporting
a hung child killed at 8.0 instead of 3.0, about once in 15-25 runs).

What happens: the tree's stop makes its root supervisor leave pykka's registry
(pykka unregisters an actor before its ``on_stop``), and autojump watches only
actors in the registry and those it saw there during an earlier look with a
timer pending (`VirtualClock._exiting`). No timer was pending before the stop,
so the root was never seen: while it stops its children it is invisible. It
stops ``b`` (shutdown 5 s: a timer at 5.0 on the virtual clock), ``b`` exits at
once and wakes it; but if the root's thread does not run within the autojump's
two looks (0.2 ms apart), the actors it can see (the hung ``a``, the idle loop)
look quiescent, and it jumps to 5.0: ``b`` is reported stopped at 5.0, ``a``
(shutdown 3 s) killed at 8.0. The 8.0 is 5.0 + 3.0, not KILL_LANDS.

The test below makes the window wide (the root's thread is slow to run again
after each wait, as a descheduled thread on a loaded machine is), so the jump
that the flaky test sees once in ~20 runs happens every time.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

import hedgerow as hr
from hedgerow import EventKind

pytestmark = pytest.mark.timeout(60)

INVISIBLE = (
    "autojump cannot see a supervisor that left pykka's registry to stop (its "
    "on_stop stops its children) unless an earlier look with a timer pending saw "
    "it registered: woken by its child's exit but not yet running, it looks idle, "
    "and the clock jumps to the child's shutdown deadline"
)


class Quick(hr.Actor):
    def on_receive(self, message: Any) -> Any:
        return message


@pytest.mark.xfail(strict=True, reason=INVISIBLE)
def test_a_child_that_stops_at_once_is_reported_at_once_though_its_supervisor_is_slow_to_run(
    hedgerow_tree_factory, hedgerow_clock, hedgerow_recorder, monkeypatch
):
    tree = hedgerow_tree_factory(hr.SupervisorSpec([hr.ChildSpec("b", Quick)]))  # shutdown 5 s
    root_thread: list[threading.Thread] = []

    def slow_to_run_again(waiter: threading.Event, timeout: float | None) -> None:
        """`VirtualClock.wait`, but the root's thread, once woken, runs 0.2 s later."""
        handle = hedgerow_clock.call_later(timeout, waiter.set) if timeout is not None else None
        try:
            waiter.wait()
            if threading.current_thread() in root_thread:
                time.sleep(0.2)  # not a sync: a thread descheduled for 0.2 s, as under load
        finally:
            if handle is not None:
                handle.cancel()

    monkeypatch.setattr(hedgerow_clock, "wait", slow_to_run_again)
    root = tree.ref._actor_weakref()
    root_thread.extend(
        t for t in threading.enumerate() if getattr(t, "_target", None) == root._actor_loop
    )
    assert root_thread, "the root supervisor's thread"
    assert tree.stop(timeout=10) == hr.SHUTDOWN
    stopped = hedgerow_recorder.wait_for(EventKind.STOPPED, "root/b")
    assert (stopped.time, stopped.reason) == (0.0, hr.SHUTDOWN)
