"""Finding children by path (`actor_lookup`, `Tree.lookup`) and timers (`actor_send_after`)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from helpers import FailingStart, Log, start, worker

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


def test_lookup_finds_siblings_by_id_and_any_child_by_path(runtime):
    inner = hr.SupervisorSpec([worker("leaf")])
    spec = hr.SupervisorSpec(
        [
            hr.ChildSpec("finder", runtime.of(Finder)),
            worker("sibling"),
            hr.ChildSpec("inner", inner),
        ]
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


def test_a_looked_up_ref_survives_the_childs_restarts(runtime):
    spec = hr.SupervisorSpec([hr.ChildSpec("finder", runtime.of(Finder)), worker("w")])
    tree, recorder = start(spec)
    with tree:
        ref = tree.get_child("finder").ask("w")
        ref.tell("crash")
        recorder.wait_for(hr.EventKind.RESTARTED, path="root/w")
        assert ref.ask("hello", timeout=10) == ("w", 2, "hello")
        assert tree.lookup("root/w") is ref


def test_a_parents_restart_gives_new_refs_and_lookup_finds_them(runtime):
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


def test_a_removed_child_is_no_longer_found(runtime):
    spec = hr.SupervisorSpec([worker("w")])
    tree, _ = start(spec)
    with tree:
        tree.stop_child("w")
        tree.delete_child("w")
        with pytest.raises(hr.ChildNotFound):
            tree.lookup("root/w")


def test_an_unsupervised_actor_cannot_look_up(runtime):
    ref = Finder.start()
    try:
        with pytest.raises(hr.ChildNotFound, match="not in a supervision tree"):
            ref.ask("anything")
    finally:
        ref.stop()


def test_send_after_runs_on_the_trees_clock(runtime, clock):
    log = Log()
    tree, _ = start(
        hr.SupervisorSpec([hr.ChildSpec("ticker", runtime.of(Ticker), args=(log,))]), clock=clock
    )
    with tree:
        for second in (1.0, 2.0, 3.0):
            clock.wait_for_timer()
            clock.advance(1.0)
            tree.get_child("ticker").ask("sync", timeout=10)  # the tick was handled first
            assert log.of("tick")[-1] == (1, second)


def test_timers_die_with_the_incarnation(runtime, clock):
    log = Log()
    spec = hr.SupervisorSpec([hr.ChildSpec("ticker", runtime.of(Ticker), args=(log,))])
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


def test_a_cancelled_timer_sends_nothing(runtime, clock):
    log = Log()
    tree, _ = start(
        hr.SupervisorSpec([hr.ChildSpec("ticker", runtime.of(Ticker), args=(log,))]), clock=clock
    )
    with tree:
        ticker = tree.get_child("ticker")
        ticker.ask("cancel", timeout=10)
        clock.advance(5.0)
        ticker.ask("sync", timeout=10)
        assert log.of("tick") == []


def test_unsupervised_send_after_uses_real_time(runtime):
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


class EarlyCaller(hr.Actor):
    """In on_start, looks up the children it is given (started after it) and asks each."""

    def __init__(self, names: list[str], log: Log) -> None:
        super().__init__()
        self.names = names
        self.log = log

    def on_start(self) -> None:
        for name in self.names:
            ref = self.actor_lookup(name)
            self.log.add(("found", (name, ref.path)))
            ref.tell(("from early", name))
            self.log.add(("answer", ref.ask(("asked early", name), block=False)))


def test_a_child_looks_up_siblings_and_cousins_that_start_after_it(runtime):
    log = Log()
    inner = hr.SupervisorSpec([worker("leaf", log)])
    spec = hr.SupervisorSpec(
        [
            hr.ChildSpec("early", runtime.of(EarlyCaller), args=(["late", "root/inner/leaf"], log)),
            worker("late", log),
            hr.ChildSpec("inner", inner),
        ]
    )
    tree, recorder = start(spec)
    with tree:
        late, leaf = tree.lookup("root/late"), tree.lookup("root/inner/leaf")
        assert log.of("found") == [("late", "root/late"), ("root/inner/leaf", "root/inner/leaf")]
        assert [f.get(timeout=10) for f in log.of("answer")] == [
            ("late", 1, ("asked early", "late")),
            ("leaf", 1, ("asked early", "root/inner/leaf")),
        ]
        # The refs found before the start are the children's own, and their
        # messages waited for the start: handled first, in order.
        assert tree.get_child("late") is late
        assert tree.supervisor("inner").get_child("leaf") is leaf
        got = [g for g in log.of("got") if g[0] == "late"]  # (leaf's may come first)
        assert got[:2] == [("late", ("from early", "late")), ("late", ("asked early", "late"))]
    assert not recorder.matching(hr.EventKind.DEAD_LETTER)


class Acknowledger(hr.Actor):
    """Half of a pipeline whose two stages hold each other's refs from on_start."""

    def __init__(self, peer: str) -> None:
        super().__init__()
        self.peer_name = peer

    def on_start(self) -> None:
        self.peer = self.actor_lookup(self.peer_name)

    def on_receive(self, message: Any) -> Any:
        match message:
            case ("item", n):
                self.peer.tell(("ack", n))
            case ("ack", n):
                return ("acked", n)
            case "peer":
                return self.peer
        return None


def test_a_cycle_of_references_is_looked_up_in_on_start(runtime):
    spec = hr.SupervisorSpec(
        [
            hr.ChildSpec("source", runtime.of(Acknowledger), args=("sink",)),
            hr.ChildSpec("sink", runtime.of(Acknowledger), args=("source",)),
        ]
    )
    tree, _ = start(spec)
    with tree:
        source, sink = tree.get_child("source"), tree.get_child("sink")
        assert source.ask("peer") is sink
        assert sink.ask("peer") is source


def test_a_name_in_no_spec_raises_at_once_in_on_start(runtime):
    log = Log()
    spec = hr.SupervisorSpec(
        [hr.ChildSpec("early", runtime.of(EarlyCaller), args=(["nobody"], log)), worker("late")]
    )
    with pytest.raises(hr.StartError, match="root/nobody"):
        start(spec)


def test_messages_for_a_child_that_never_starts_are_dead_letters(runtime):
    """The tree fails to start before `late` does: what waited for it is accounted for."""
    log = Log()
    spec = hr.SupervisorSpec(
        [
            hr.ChildSpec("early", runtime.of(EarlyCaller), args=(["late", "root/inner/leaf"], log)),
            hr.ChildSpec("broken", runtime.of(FailingStart)),
            worker("late", log),
            hr.ChildSpec("inner", hr.SupervisorSpec([worker("leaf", log)])),
        ]
    )
    events = hr.EventStream()
    recorder = hr.testing.EventRecorder(events)
    with pytest.raises(hr.StartError):
        hr.start_tree(spec, events=events)
    for answer in log.of("answer"):
        with pytest.raises(hr.DeadLetterError):
            answer.get(timeout=10)
    letters = sorted((e.path, e.message) for e in recorder.matching(hr.EventKind.DEAD_LETTER))
    assert letters == [
        ("root/inner/leaf", ("asked early", "root/inner/leaf")),
        ("root/inner/leaf", ("from early", "root/inner/leaf")),
        ("root/late", ("asked early", "late")),
        ("root/late", ("from early", "late")),
    ]
    assert not log.of("got")


def make_finder() -> Finder:
    """A factory: its child's class is known only once it runs."""
    return Finder()


def test_a_lookup_told_the_class_checks_it():
    spec = hr.SupervisorSpec(
        [hr.ChildSpec("finder", Finder), worker("w"), hr.ChildSpec("made", make_finder)]
    )
    tree, _ = start(spec)
    with tree:
        assert tree.get_child("finder", Finder) is tree.get_child("finder")
        assert tree.lookup("root/finder", Finder) is tree.get_child("finder")
        assert tree.lookup("root/finder", hr.Actor) is tree.get_child("finder")  # a base class
        assert tree.get_child("made", Finder) is tree.get_child("made")  # a factory's: unknown
        with pytest.raises(TypeError, match="root/w is a Worker, not a Finder"):
            tree.get_child("w", Finder)
        with pytest.raises(TypeError, match="root/finder is a Finder, not a Ticker"):
            tree.lookup("root/finder", Ticker)
