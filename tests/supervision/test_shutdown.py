"""Child shutdown (timeout, brutal_kill, infinity) and the supervisor's own shutdown."""

from __future__ import annotations

import sys
import threading
from typing import Any

import pytest
from helpers import IgnoresStop, Log, Worker, ran_out, start, worker

import hedgerow as hr
from hedgerow import EventKind
from hedgerow.actors._messages import _Control


@pytest.mark.allow_abandoned
def test_a_child_that_ignores_its_stop_is_abandoned_after_its_timeout(runtime, clock):
    release = threading.Event()
    log = Log()
    spec = hr.SupervisorSpec(
        [
            worker("a", log),
            hr.ChildSpec("stuck", stuck := runtime.of(IgnoresStop), args=(release,), shutdown=2.0),
            worker("c", log),
        ]
    )
    tree, rec = start(spec, clock=clock)
    stopper = threading.Thread(target=tree.stop)
    stopper.start()
    # The supervisor waits on the virtual clock: jump past the 2 s timeout.
    rec.wait_for(EventKind.STOPPED, "root/c")
    clock.jump_to_next()
    stopper.join(timeout=10)
    assert not stopper.is_alive()
    assert tree.done
    abandoned = rec.wait_for(ran_out(stuck), "root/stuck")
    assert abandoned.reason == hr.KILLED
    assert log.of("stop") == ["c", "a"]
    release.set()


@pytest.mark.allow_abandoned
def test_shutdown_completes_in_bounded_real_time_with_the_real_clock(runtime):
    release = threading.Event()
    stuck = runtime.of(IgnoresStop)
    spec = hr.SupervisorSpec([hr.ChildSpec("stuck", stuck, args=(release,), shutdown=0.05)])
    tree, rec = start(spec)
    assert tree.stop(timeout=10) == hr.SHUTDOWN
    assert rec.wait_for(ran_out(stuck), "root/stuck").reason == hr.KILLED
    release.set()


@pytest.mark.allow_abandoned
def test_brutal_kill_does_not_wait(runtime):
    release, entered = threading.Event(), threading.Event()
    spec = hr.SupervisorSpec([hr.ChildSpec("busy", runtime.of(Worker), shutdown="brutal_kill")])
    tree, rec = start(spec)
    tree.get_child("busy").tell(("block", entered, release))
    entered.wait(timeout=10)
    tree.stop(timeout=10)
    stopped = rec.wait_for(EventKind.STOPPED, "root/busy")
    assert stopped.reason == hr.KILLED
    release.set()


def test_infinity_waits_for_a_slow_stop(runtime, clock):
    release = threading.Event()
    spec = hr.SupervisorSpec(
        [hr.ChildSpec("slow", runtime.of(IgnoresStop), args=(release,), shutdown="infinity")]
    )
    tree, rec = start(spec, clock=clock)
    stopper = threading.Thread(target=tree.stop)
    stopper.start()
    clock.advance(3600)
    assert not tree.done
    release.set()
    stopper.join(timeout=10)
    assert rec.wait_for(EventKind.STOPPED, "root/slow").reason == hr.SHUTDOWN


def test_children_that_exit_by_themselves_during_shutdown_keep_their_own_reason(
    runtime, monkeypatch
):
    entered, release = threading.Event(), threading.Event()
    log = Log()
    spec = hr.SupervisorSpec([worker("a", log), worker("b", log)])
    tree, rec = start(spec)
    a = tree.get_child("a")
    stop_queued = threading.Event()
    put_front = a.actor_inbox.put_front

    def watch(envelope: Any) -> None:
        put_front(envelope)
        if isinstance(envelope.message, _Control) and envelope.message.kind == _Control.STOP:
            stop_queued.set()

    monkeypatch.setattr(a.actor_inbox, "put_front", watch)
    # a is busy; its next message will crash it. The supervisor's stop jumps
    # the queue, but b is stopped first, then a finishes the blocking message
    # (released once its stop is queued: before that, a could read the crash).
    a.tell(("block", entered, release))
    a.tell("crash")
    entered.wait(timeout=10)
    stopper = threading.Thread(target=tree.stop)
    stopper.start()
    rec.wait_for(EventKind.STOPPED, "root/b")
    assert stop_queued.wait(timeout=10)
    release.set()
    stopper.join(timeout=10)
    # The stop was put in front of "crash", so a stops cleanly with shutdown;
    # the crash message is a dead letter of the shut-down child.
    assert rec.wait_for(EventKind.STOPPED, "root/a").reason == hr.SHUTDOWN
    dead = rec.wait_for(EventKind.DEAD_LETTER, "root/a")
    assert dead.message == "crash"
    assert rec.matching(EventKind.RESTARTED) == []


def test_a_child_crashing_by_itself_during_shutdown_is_reported_failed_not_restarted(runtime):
    entered, release = threading.Event(), threading.Event()
    spec = hr.SupervisorSpec([worker("a"), worker("b")])
    tree, rec = start(spec)
    tree.get_child("a").tell(("block_then_crash", entered, release))
    entered.wait(timeout=10)
    stopper = threading.Thread(target=tree.stop)
    stopper.start()
    rec.wait_for(EventKind.STOPPED, "root/b")
    release.set()  # a raises now, before it ever reads its stop
    stopper.join(timeout=10)
    failed = rec.wait_for(EventKind.FAILED, "root/a")
    assert str(failed.reason) == "a crashed after blocking"
    assert rec.matching(EventKind.RESTARTED) == []
    assert rec.trail()[-2:] == [("shutdown", "root"), ("stopped", "root")]


class CrashesOnStop(hr.Actor):
    def on_stop(self) -> None:
        raise RuntimeError("cleanup failed")


def test_a_failing_on_stop_during_shutdown_is_reported_with_its_reason(runtime):
    tree, rec = start(hr.SupervisorSpec([hr.ChildSpec("x", runtime.of(CrashesOnStop))]))
    tree.stop(timeout=10)
    failed = rec.wait_for(EventKind.FAILED, "root/x")
    assert isinstance(failed.reason, RuntimeError)
    assert "cleanup failed" in failed.traceback


def test_nothing_restarts_while_the_supervisor_shuts_down(runtime):
    spec = hr.SupervisorSpec([worker(x) for x in "abcdef"], strategy="one_for_all")
    tree, rec = start(spec)
    for ref in [tree.get_child(x) for x in "abcdef"]:
        ref.tell("crash")
    tree.stop(timeout=10)
    after_shutdown = False
    for event in rec.events:
        if event.kind is EventKind.SHUTDOWN:
            after_shutdown = True
        assert not (after_shutdown and event.kind is EventKind.RESTARTED)


def test_messages_to_a_shut_down_tree_are_dead_letters(runtime):
    tree, rec = start(hr.SupervisorSpec([worker("a")]))
    a = tree.get_child("a")
    tree.stop(timeout=10)
    a.tell("late")
    assert rec.wait_for(EventKind.DEAD_LETTER, "root/a").message == "late"
    with pytest.raises(hr.DeadLetterError) as info:
        a.ask("late ask", timeout=5)
    assert "shutdown" in str(info.value)


def test_brutal_kill_never_runs_a_graceful_stop_even_for_an_idle_child(runtime):
    """An idle child must never read the stop first and run on_stop (the races
    hide at the default switch interval)."""
    log = Log()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        tree, rec = start(hr.SupervisorSpec([worker("w", log, shutdown="brutal_kill")]))
        with tree:
            w = tree.get_child("w")
            for round_ in range(1, 301):
                assert w.ask("ready?", timeout=10)[1] == round_  # idle in its loop now
                tree.stop_child("w")
                stopped = rec.wait_for(EventKind.STOPPED, "root/w", count=round_)
                assert stopped.reason == hr.KILLED, round_
                tree.restart_child("w")
    finally:
        sys.setswitchinterval(interval)
    assert log.of("stop") == []
