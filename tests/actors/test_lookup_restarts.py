"""Lookups in any order hold across restarts too: while a supervisor restarts
a nested supervisor (with its group, or after a backoff delay), the names in
that supervisor's spec resolve, and their messages wait for the new start."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import Log, start, worker

import hedgerow as hr
from hedgerow.testing import EventRecorder, VirtualClock


class Early(hr.Actor):
    """Looks up a cousin that starts after it, in on_start; passes asks on to it."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def on_start(self) -> None:
        self.cousin = self.actor_lookup(self.path)

    def on_receive(self, message: Any) -> Any:
        if message == "crash":
            raise RuntimeError("early crashed")
        return self.cousin.ask(message, timeout=10)


def wait_to_restart(tree: hr.Tree, recorder: EventRecorder) -> float:
    """Make svc/inner give up twice: restarted at once, then after its backoff
    delay, which this returns."""
    tree.lookup("svc/inner/leaf").tell("crash")
    recorder.wait_restarted("svc/inner")
    tree.lookup("svc/inner/leaf").tell("crash")
    scheduled = recorder.wait_for(hr.EventKind.RESTART_SCHEDULED, "svc/inner")
    assert scheduled.delay is not None
    return scheduled.delay


@pytest.mark.parametrize("strategy", ["one_for_all", "rest_for_one"])
def test_a_group_restart_names_a_nested_supervisors_children_before_any_starts(runtime, strategy):
    inner = hr.SupervisorSpec([worker("leaf")])
    spec = hr.SupervisorSpec(
        [
            # A thread: it asks its cousin and blocks for the answer (an event-loop
            # actor must not block its loop on a ChildRef's ask).
            hr.ChildSpec("early", Early, args=("root/inner/leaf",)),
            hr.ChildSpec("inner", inner),
        ],
        strategy=strategy,
    )
    tree, recorder = start(spec)
    with tree:
        early = tree.get_child("early")
        assert early.ask("hi") == ("leaf", 1, "hi")
        early.tell("crash")  # early and inner restart, early first
        recorder.wait_restarted("root/inner")
        assert early.ask("again") == ("leaf", 1, "again")  # the new inner's leaf
        assert not tree.done
        assert recorder.matching(hr.EventKind.START_FAILED) == []


def test_a_nested_supervisor_waiting_to_restart_keeps_its_childrens_names(runtime):
    clock = VirtualClock()
    inner = hr.SupervisorSpec([worker("leaf")], max_restarts=0)
    spec = hr.SupervisorSpec(
        [hr.ChildSpec("inner", inner, backoff=True, initial_retry_delay=10.0)], name="svc"
    )
    tree, recorder = start(spec, clock=clock)
    with tree:
        delay = wait_to_restart(tree, recorder)
        leaf = tree.lookup("svc/inner/leaf")  # in the spec: found while inner waits
        answer = leaf.ask("meanwhile", block=False)
        clock.advance(delay)
        recorder.wait_restarted("svc/inner", times=2)
        assert answer.get(timeout=10) == ("leaf", 1, "meanwhile")
        assert tree.supervisor("inner").get_child("leaf") is leaf
    assert tree.names.paths() == []


def test_stopping_a_nested_supervisor_that_waits_to_restart_dead_letters_what_waits(runtime):
    clock = VirtualClock()
    inner = hr.SupervisorSpec([worker("leaf")], max_restarts=0)
    spec = hr.SupervisorSpec(
        [hr.ChildSpec("inner", inner, backoff=True, initial_retry_delay=10.0), worker("other")],
        name="svc",
    )
    tree, recorder = start(spec, clock=clock)
    with tree:
        wait_to_restart(tree, recorder)
        answer = tree.lookup("svc/inner/leaf").ask("waits", block=False)
        tree.stop_child("inner")
        with pytest.raises(hr.DeadLetterError):
            answer.get(timeout=10)
        assert recorder.dead_letters("svc/inner/leaf").count("waits") == 1
        with pytest.raises(hr.ChildNotFound):
            tree.lookup("svc/inner/leaf")
        assert tree.names.paths() == ["svc/inner", "svc/other"]
        tree.restart_child("inner")
        assert tree.lookup("svc/inner/leaf").ask("back") == ("leaf", 1, "back")
    assert tree.names.paths() == []


def test_replacing_a_nested_supervisor_that_waits_to_restart_names_its_new_children(runtime):
    clock = VirtualClock()
    log = Log()
    inner = hr.SupervisorSpec([worker("leaf", log), worker("gone", log)], max_restarts=0)
    spec = hr.SupervisorSpec(
        [hr.ChildSpec("inner", inner, backoff=True, initial_retry_delay=10.0)], name="svc"
    )
    tree, recorder = start(spec, clock=clock)
    with tree:
        wait_to_restart(tree, recorder)
        new_inner = hr.SupervisorSpec([worker("leaf", log, shutdown="brutal_kill")])
        tree.replace_child(hr.ChildSpec("inner", new_inner))
        assert tree.names.paths() == ["svc/inner", "svc/inner/leaf"]
        assert tree.lookup("svc/inner/leaf").shutdown == "brutal_kill"
    assert tree.names.paths() == []
