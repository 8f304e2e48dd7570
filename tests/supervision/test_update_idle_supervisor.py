"""`update_tree` and a nested supervisor that is not running (waiting out its
backoff delay, or stopped): its children cannot change one by one, so it is
changed as a whole, restarted with its new spec as a changed child is.
Before, the update waited for the delay (up to `max_retry_delay`, minutes),
or failed on the stopped supervisor with errors it could not undo."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from helpers import start, worker

import hedgerow as hr
from hedgerow.supervision._update import update_tree
from hedgerow.testing import EventRecorder, VirtualClock


def tree_of(*leaves: str) -> hr.SupervisorSpec:
    inner = hr.SupervisorSpec([worker(leaf) for leaf in leaves], max_restarts=0)
    sub = hr.ChildSpec("sub", inner, backoff=True, initial_retry_delay=10.0)
    return hr.SupervisorSpec([sub, worker("other")], name="svc")


def wait_to_restart(tree: hr.Tree, recorder: EventRecorder) -> float:
    """Make svc/sub give up twice: restarted at once, then after a delay (returned)."""
    tree.lookup("svc/sub/leaf").tell("crash")
    recorder.wait_restarted("svc/sub")
    tree.lookup("svc/sub/leaf").tell("crash")
    scheduled = recorder.wait_for(hr.EventKind.RESTART_SCHEDULED, "svc/sub")
    assert scheduled.delay is not None
    return scheduled.delay


def update_in_time(
    tree: hr.Tree, spec: hr.SupervisorSpec, clock: VirtualClock, delay: float
) -> Any:
    """update_tree in a thread; it must end without the clock's help."""
    outcome: list[Any] = []

    def update() -> None:
        try:
            outcome.append(update_tree(tree, spec))
        except hr.UpdateFailed as exc:
            outcome.append(exc)

    updating = threading.Thread(target=update)
    updating.start()
    updating.join(10)
    waited = updating.is_alive()
    if waited:  # let it end, whatever it does
        clock.advance(delay)
        updating.join(10)
    assert not waited, "the update waited for the nested supervisor's restart"
    return outcome[0]


def test_a_nested_supervisor_waiting_to_restart_takes_its_new_children_at_once():
    clock = VirtualClock()
    tree, recorder = start(tree_of("leaf"), clock=clock)
    with tree:
        delay = wait_to_restart(tree, recorder)
        plan = update_in_time(tree, tree_of("leaf", "added"), clock, delay)
        assert isinstance(plan, hr.UpdatePlan), plan
        assert plan.summary() == "svc/sub changed (supervisor.children)"
        sub = tree.supervisor("sub")
        assert [(c.id, c.state) for c in sub.which_children()] == [
            ("leaf", hr.ChildState.RUNNING),
            ("added", hr.ChildState.RUNNING),
        ]
        assert tree.lookup("svc/sub/added").ask("hi") == ("added", 1, "hi")
        assert tree.spec == tree_of("leaf", "added")
        clock.advance(delay)  # the cancelled restart does not come
        assert [c.incarnation for c in tree.which_children()] == [3, 1]
    assert tree.names.paths() == []


def test_a_stopped_nested_supervisor_takes_its_new_children():
    clock = VirtualClock()
    tree, _ = start(tree_of("leaf"), clock=clock)
    with tree:
        tree.stop_child("sub")
        plan = update_in_time(tree, tree_of("leaf", "added"), clock, 0.0)
        assert isinstance(plan, hr.UpdatePlan), plan
        assert plan.summary() == "svc/sub changed (supervisor.children)"
        assert [c.id for c in tree.supervisor("sub").which_children()] == ["leaf", "added"]
        assert tree.spec == tree_of("leaf", "added")


def test_an_update_of_a_tree_that_has_ended_is_refused():
    tree, _ = start(tree_of("leaf"), clock=VirtualClock())
    tree.stop()
    with pytest.raises(hr.UpdateFailed, match="nothing running was touched"):
        update_tree(tree, tree_of("leaf", "added"))
