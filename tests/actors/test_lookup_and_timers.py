"""Finding children by path (`actor_lookup`, `Tree.lookup`) and timers (`actor_send_after`)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from helpers import Log, start, worker

import hedgerow as hr


class Finder(hr.Actor):
    """Looks up whatever it is asked to, and says what it found."""

    def on_receive(self, message: Any) -> Any:
        return self.actor_lookup(message)


class Ticker(hr.Actor):
    """Sends itself a tick every second of its clock; logs each with its incarnation."""

    def __init__(self, log: Log) -> None:
        super().__init__()
        self.log = log

    def on_start(self) -> None:
        self.timer = self.actor_send_after(1.0, "tick")

    def on_receive(self, message: Any) -> Any:
        match message:
            case "tick":
                self.log.add(("tick", (self.actor_incarnation, self.actor_clock.now())))
                self.timer = self.actor_send_after(1.0, "tick")
            case "cancel":
                self.timer.cancel()
            case "crash":
                raise RuntimeError("ticker crashed")
        return None


def test_lookup_finds_siblings_by_id_and_any_child_by_path():
    inner = hr.SupervisorSpec([worker("leaf")])
    spec = hr.SupervisorSpec(
        [hr.ChildSpec("finder", Finder), worker("sibling"), hr.ChildSpec("inner", inner)]
    )
    tree, _ = start(spec)
    with tree:
        finder = tree.get_child("finder")
        assert finder.ask("sibling") is tree.get_child("sibling")
        leaf = finder.ask("root/inner/leaf")
        assert leaf is tree.supervisor("inner").get_child("leaf")
        assert tree.lookup("root/inner/leaf") is leaf
        with pytest.raises(hr.ChildNotFound, match="root/nobody"):
            finder.ask("nobody")
        with pytest.raises(hr.ChildNotFound, match="root/inner/nobody"):
            tree.lookup("root/inner/nobody")


def test_a_looked_up_ref_survives_the_childs_restarts():
    spec = hr.SupervisorSpec([hr.ChildSpec("finder", Finder), worker("w")])
    tree, recorder = start(spec)
    with tree:
        ref = tree.get_child("finder").ask("w")
        ref.tell("crash")
        recorder.wait_for(hr.EventKind.RESTARTED, path="root/w")
        assert ref.ask("hello", timeout=10) == ("w", 2, "hello")
        assert tree.lookup("root/w") is ref


def test_a_parents_restart_gives_new_refs_and_lookup_finds_them():
    inner = hr.SupervisorSpec([worker("leaf")], max_restarts=0)
    spec = hr.SupervisorSpec([hr.ChildSpec("inner", inner)])
    tree, recorder = start(spec)
    with tree:
        old = tree.lookup("root/inner/leaf")
        old.tell("crash")  # exceeds inner's intensity: root restarts inner
        recorder.wait_for(hr.EventKind.RESTARTED, path="root/inner")
        new = tree.lookup("root/inner/leaf")
        assert new is not old
        assert not old.is_alive()
        assert new.ask("hi", timeout=10) == ("leaf", 1, "hi")


def test_a_removed_child_is_no_longer_found():
    spec = hr.SupervisorSpec([worker("w")])
    tree, _ = start(spec)
    with tree:
        tree.stop_child("w")
        tree.delete_child("w")
        with pytest.raises(hr.ChildNotFound):
            tree.lookup("root/w")


def test_an_unsupervised_actor_cannot_look_up():
    ref = Finder.start()
    try:
        with pytest.raises(hr.ChildNotFound, match="not in a supervision tree"):
            ref.ask("anything")
    finally:
        ref.stop()


def test_send_after_runs_on_the_trees_clock(clock):
    log = Log()
    tree, _ = start(hr.SupervisorSpec([hr.ChildSpec("ticker", Ticker, args=(log,))]), clock=clock)
    with tree:
        for second in (1.0, 2.0, 3.0):
            clock.wait_for_timer()
            clock.advance(1.0)
            tree.get_child("ticker").ask("sync", timeout=10)  # the tick was handled first
            assert log.of("tick")[-1] == (1, second)


def test_timers_die_with_the_incarnation(clock):
    log = Log()
    spec = hr.SupervisorSpec([hr.ChildSpec("ticker", Ticker, args=(log,))])
    tree, recorder = start(spec, clock=clock)
    with tree:
        ticker = tree.get_child("ticker")
        clock.wait_for_timer()
        ticker.tell("crash")
        recorder.wait_for(hr.EventKind.RESTARTED, path="root/ticker")
        ticker.ask("sync", timeout=10)
        # Incarnation 1's timer was cancelled: only incarnation 2's is pending.
        assert len(clock.pending()) == 1
        clock.advance(1.0)
        ticker.ask("sync", timeout=10)
        assert log.of("tick") == [(2, 1.0)]


def test_a_cancelled_timer_sends_nothing(clock):
    log = Log()
    tree, _ = start(hr.SupervisorSpec([hr.ChildSpec("ticker", Ticker, args=(log,))]), clock=clock)
    with tree:
        ticker = tree.get_child("ticker")
        ticker.ask("cancel", timeout=10)
        clock.advance(5.0)
        ticker.ask("sync", timeout=10)
        assert log.of("tick") == []


def test_unsupervised_send_after_uses_real_time():
    got = threading.Event()

    class Once(hr.Actor):
        def on_start(self) -> None:
            self.actor_send_after(0.01, "ping")

        def on_receive(self, message: Any) -> Any:
            got.set()

    ref = Once.start()
    try:
        assert got.wait(timeout=10)
    finally:
        ref.stop()
