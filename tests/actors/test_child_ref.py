"""Stable references: messages wait across restarts, in order; dead letters otherwise."""

from __future__ import annotations

import threading

import pykka
import pytest
from helpers import Log, Worker, start, worker

import hedgerow as hr
from hedgerow import EventKind
from hedgerow.testing import EventRecorder


def test_messages_queued_behind_a_crash_reach_the_next_incarnation_in_order(runtime):
    log = Log()
    tree, rec = start(hr.SupervisorSpec([worker("a", log)]))
    with tree:
        a = tree.get_child("a")
        entered, release = threading.Event(), threading.Event()
        a.tell(("block", entered, release))
        entered.wait(timeout=10)
        a.tell("crash")
        for n in range(50):
            a.tell(n)
        future = a.ask("last", block=False)
        release.set()
        assert future.get(timeout=10) == ("a", 2, "last")
        got = [m for name, m in log.of("got") if isinstance(m, int)]
        assert got == list(range(50))
        dead = rec.wait_for(EventKind.DEAD_LETTER, "root/a")
        assert dead.message == "crash"
        assert isinstance(dead.reason, RuntimeError)


def test_messages_wait_during_a_backoff_delay(runtime, clock):
    tree, rec = start(hr.SupervisorSpec([worker("a", initial_retry_delay=1)]), clock=clock)
    with tree:
        a = tree.get_child("a")
        a.tell("crash")
        rec.wait_for(EventKind.RESTARTED)
        a.tell("crash")
        scheduled = rec.wait_for(EventKind.RESTART_SCHEDULED)
        future = a.ask("waiting", block=False)
        with pytest.raises(pykka.Timeout):
            future.get(timeout=0.01)
        clock.advance(scheduled.delay)
        assert future.get(timeout=10) == ("a", 3, "waiting")


def test_ask_error_goes_back_to_the_asker_and_the_child_goes_on(runtime):
    tree, rec = start(hr.SupervisorSpec([worker("a")]))
    with tree:
        a = tree.get_child("a")
        with pytest.raises(RuntimeError, match="crashed"):
            a.ask("crash")
        assert a.ask("still here") == ("a", 1, "still here")
        assert rec.matching(EventKind.FAILED) == []


def test_ask_errors_fail_applies_erlangs_rule(runtime):
    tree, rec = start(hr.SupervisorSpec([worker("a", ask_errors_fail=True)]))
    with tree:
        a = tree.get_child("a")
        with pytest.raises(RuntimeError, match="crashed"):
            a.ask("crash")
        rec.wait_for(EventKind.RESTARTED, "root/a")
        assert a.ask("again") == ("a", 2, "again")
        # The asker got the error, so the message is not also a dead letter.
        assert rec.matching(EventKind.DEAD_LETTER) == []


def test_proxy_through_a_child_ref_survives_restarts(runtime):
    class Counter(hr.Actor):
        def __init__(self) -> None:
            super().__init__()
            self.count = 0

        def add(self, n: int) -> int:
            self.count += n
            return self.count

        def crash(self) -> None:
            self.actor_ref.tell("boom")

        def on_receive(self, message):
            raise RuntimeError(message)

    events = hr.EventStream()
    rec = EventRecorder(events)
    with hr.start_tree(hr.SupervisorSpec([hr.ChildSpec("c", Counter)]), events=events) as tree:
        proxy = tree.get_child("c").proxy()
        assert proxy.add(2).get() == 2
        proxy.crash().get()
        rec.wait_for(EventKind.RESTARTED)
        assert proxy.add(5).get() == 5  # state is fresh in the new incarnation
        assert proxy.count.get() == 5


def test_actor_child_ref_is_the_stable_ref_and_the_incarnation_counts(runtime):
    tree, _ = start(hr.SupervisorSpec([worker("a")]))
    with tree:
        a = tree.get_child("a")
        assert a.incarnation.actor_child_ref is a
        assert a.ask("x") == ("a", 1, "x")
        assert isinstance(a, pykka.ActorRef)
        assert a.is_alive()
    unsupervised = Worker.start()
    try:
        assert unsupervised.proxy().actor_child_ref.get() is None
    finally:
        unsupervised.stop()


def test_child_ref_stop_is_a_normal_stop_that_the_policy_handles(runtime):
    tree, rec = start(hr.SupervisorSpec([worker("a"), worker("t", restart="transient")]))
    with tree:
        assert tree.get_child("a").stop() is True
        rec.wait_for(EventKind.RESTARTED, "root/a")
        t = tree.get_child("t")
        assert t.stop() is True
        rec.wait_for(EventKind.STOPPED, "root/t")
        assert not t.is_alive()
        assert t.stop() is False
