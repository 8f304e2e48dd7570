"""Abandoned children: a supervisor that is abandoned still stops its own children,
and a handler that finishes after its actor was abandoned is still accounted for."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pykka
import pytest
from helpers import Log, SlowStart, Worker, ran_out, start, wait_threads_end, worker

import hedgerow as hr
from hedgerow import EventKind
from hedgerow.testing import Faults


def assert_nothing_alive(tree: hr.Tree, paths: list[str], before: set[threading.Thread]) -> None:
    """No actor of the tree is registered, answers, or keeps a thread."""
    assert pykka.ActorRegistry.get_all() == []
    for path in paths:
        ref = tree.names.get(path)
        assert ref is None or not ref.is_alive(), path
    assert wait_threads_end(before) == []


def test_a_brutally_killed_supervisor_still_stops_its_children(runtime):
    log = Log()
    nested = hr.SupervisorSpec([worker("a", log), worker("b", log)])
    spec = hr.SupervisorSpec([hr.ChildSpec("s", nested, shutdown="brutal_kill")])
    before = set(threading.enumerate())
    tree, rec = start(spec)
    a, b = tree.lookup("root/s/a"), tree.lookup("root/s/b")
    assert tree.stop(timeout=10) == hr.SHUTDOWN
    assert pykka.ActorRegistry.get_all() == []
    for ref in (a, b):
        with pytest.raises(hr.DeadLetterError):
            ref.ask("anyone?", timeout=5)
    # The killed supervisor ran no on_stop, but its children got theirs, in reverse order.
    assert log.of("stop") == ["b", "a"]
    assert rec.wait_for(EventKind.STOPPED, "root/s").reason == hr.KILLED
    assert rec.matching(EventKind.SHUTDOWN, "root/s") == []
    for path in ("root/s/a", "root/s/b"):
        assert rec.wait_for(EventKind.STOPPED, path).reason == hr.SHUTDOWN
    assert wait_threads_end(before) == []


def test_a_killed_supervisor_gives_its_children_their_own_timeouts_and_abandons_the_rest(runtime):
    release = threading.Event()
    entered = threading.Event()
    log = Log()
    nested = hr.SupervisorSpec(
        [
            worker("a", log),
            hr.ChildSpec("stuck", stuck := runtime.of(Worker), args=("stuck", log), shutdown=0.05),
        ]
    )
    spec = hr.SupervisorSpec([hr.ChildSpec("s", nested, shutdown="brutal_kill")])
    before = set(threading.enumerate())
    tree, rec = start(spec)
    tree.lookup("root/s/stuck").tell(("block", entered, release))
    assert entered.wait(timeout=10)
    assert tree.stop(timeout=10) == hr.SHUTDOWN
    assert rec.wait_for(ran_out(stuck), "root/s/stuck").reason == hr.KILLED
    assert rec.wait_for(EventKind.STOPPED, "root/s/a").reason == hr.SHUTDOWN
    assert [e.path for e in rec.events if e.kind in (EventKind.STOPPED, EventKind.ABANDONED)][
        :3
    ] == ["root/s/stuck", "root/s/a", "root/s"]
    assert pykka.ActorRegistry.get_all() == []
    release.set()
    assert wait_threads_end(before) == []
    assert log.of("stop") == ["a"]  # the abandoned one never runs on_stop


def test_a_supervisor_abandoned_while_restarting_a_group_still_stops_its_children(runtime):
    entered, release = threading.Event(), threading.Event()
    nested = hr.SupervisorSpec(
        [
            worker("a"),
            hr.ChildSpec("slow", runtime.of(SlowStart), args=(entered, release), shutdown=0.05),
            worker("c"),
        ],
        strategy="one_for_all",
    )
    spec = hr.SupervisorSpec([hr.ChildSpec("s", nested, shutdown=0.1)])
    before = set(threading.enumerate())
    tree, rec = start(spec)
    a = tree.lookup("root/s/a")
    a.tell("crash")  # s restarts its group: a#2 starts, then slow#2 blocks in on_start
    assert entered.wait(timeout=10)
    assert tree.stop(timeout=10) == hr.SHUTDOWN  # s is busy: abandoned after 0.1 s
    # A supervisor on a thread is abandoned; one on the loop is killed (its task cancelled).
    kind = EventKind.STOPPED if nested.runtime == "loop" else EventKind.ABANDONED
    assert rec.wait_for(kind, "root/s").reason == hr.KILLED
    assert pykka.ActorRegistry.get_all() == []
    with pytest.raises(hr.DeadLetterError):
        a.ask("anyone?", timeout=5)
    release.set()  # slow#2's on_start returns: it must not go on, nor s start c#2
    assert wait_threads_end(before) == []
    assert pykka.ActorRegistry.get_all() == []
    assert rec.matching(EventKind.RESTARTED, "root/s/c") == []
    assert_nothing_alive(tree, ["root/s/a", "root/s/slow", "root/s/c"], before)


class LateHandler(hr.Actor):
    """Blocks on `release` while handling a message, then returns or raises."""

    def __init__(self, entered: threading.Event, release: threading.Event) -> None:
        super().__init__()
        self.entered = entered
        self.release = release

    def on_receive(self, message: Any) -> Any:
        self.entered.set()
        self.release.wait()
        if message == "raise":
            raise RuntimeError("late failure")
        return ("done", message)


@pytest.mark.parametrize("outcome", ["return", "raise"])
@pytest.mark.parametrize("send", ["tell", "ask"])
def test_a_late_handler_of_an_abandoned_child_is_accounted_for(send, outcome):
    entered, release = threading.Event(), threading.Event()
    spec = hr.SupervisorSpec(
        [hr.ChildSpec("slow", LateHandler, args=(entered, release), shutdown=0.1)]
    )
    before = set(threading.enumerate())
    tree, rec = start(spec)
    faults = Faults(tree)
    ref = tree.get_child("slow")
    future = ref.ask(outcome, block=False) if send == "ask" else None
    if future is None:
        ref.tell(outcome)
    assert entered.wait(timeout=10)
    tree.stop(timeout=10)
    assert rec.wait_for(EventKind.ABANDONED, "root/slow").reason == hr.KILLED
    release.set()
    assert wait_threads_end(before) == []
    counts = faults.messages
    dead = rec.matching(EventKind.DEAD_LETTER, "root/slow")
    if outcome == "raise" and send == "tell":
        letter = rec.wait_for(EventKind.DEAD_LETTER, "root/slow")
        assert letter.message == "raise"
        assert isinstance(letter.reason, RuntimeError)
        assert (counts.handled, counts.dead_lettered) == (0, 1)
    else:
        assert dead == []
        assert (counts.handled, counts.dead_lettered) == (1, 0)
    if future is not None:
        if outcome == "raise":
            with pytest.raises(RuntimeError, match="late failure"):
                future.get(timeout=5)
        else:
            assert future.get(timeout=5) == ("done", "return")
    faults.close()


class Sleeper(hr.AsyncioActor):
    """An event-loop actor whose handler awaits until cancelled."""

    def __init__(self, entered: threading.Event) -> None:
        super().__init__()
        self.entered = entered
        self.after: list[Any] = []

    async def on_receive(self, message: Any) -> Any:
        self.entered.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.after.append(message)
            raise
        return ("done", message)


@pytest.mark.parametrize("shutdown", [0.05, "brutal_kill"])
@pytest.mark.parametrize("send", ["tell", "ask"])
def test_a_killed_event_loop_child_s_message_in_hand_is_a_dead_letter(send, shutdown):
    """The event-loop counterpart of the late handler above: a stop that runs
    out (or brutal_kill) cancels the handler's task at once, the child is
    stopped with reason killed (never abandoned), and the message it held is a
    dead letter; nothing of it comes later."""
    entered = threading.Event()
    spec = hr.SupervisorSpec([hr.ChildSpec("slow", Sleeper, args=(entered,), shutdown=shutdown)])
    tree, rec = start(spec)
    ref = tree.get_child("slow")
    actor = ref.incarnation
    future = ref.ask("held", block=False) if send == "ask" else None
    if future is None:
        ref.tell("held")
    assert entered.wait(timeout=10)
    assert tree.stop(timeout=10) == hr.SHUTDOWN
    # Reported once the kill has landed: its dead letter is there already.
    (letter,) = rec.matching(EventKind.DEAD_LETTER, "root/slow")
    assert (letter.message, letter.reason) == ("held", hr.KILLED)
    stopped = rec.wait_for(EventKind.STOPPED, "root/slow")
    assert stopped.reason == hr.KILLED
    assert rec.matching(EventKind.ABANDONED) == []
    if future is not None:
        with pytest.raises(hr.DeadLetterError, match="killed"):
            future.get(timeout=5)
    assert actor._hr_exited.wait(timeout=5)
    assert len(rec.matching(EventKind.DEAD_LETTER, "root/slow")) == 1


def test_a_root_that_gives_up_leaves_nothing_of_a_killed_nested_supervisor(runtime):
    log = Log()
    nested = hr.SupervisorSpec([worker("a", log), worker("b", log)])
    spec = hr.SupervisorSpec(
        [hr.ChildSpec("s", nested, shutdown="brutal_kill"), worker("crasher")], max_restarts=0
    )
    before = set(threading.enumerate())
    tree, rec = start(spec)
    tree.get_child("crasher").tell("crash")
    assert isinstance(tree.wait(timeout=10), hr.IntensityExceeded)
    assert pykka.ActorRegistry.get_all() == []
    assert log.of("stop") == ["b", "a"]
    assert rec.wait_for(EventKind.STOPPED, "root/s").reason == hr.KILLED
    assert_nothing_alive(tree, ["root/s/a", "root/s/b", "root/crasher"], before)


class Watcher(hr.Actor):
    """Monitors and links (trapping exits) what it is told to; keeps what it gets."""

    actor_trap_exits = True

    def __init__(self) -> None:
        super().__init__()
        self.got: list[Any] = []

    def on_receive(self, message: Any) -> Any:
        match message:
            case ("watch", ref):
                self.actor_monitor(ref)
                self.actor_link(ref)
            case "got":
                return list(self.got)
            case _:
                self.got.append(message)
        return None


def test_links_and_monitors_of_an_abandoned_incarnation_fire_once_when_it_is_abandoned(runtime):
    entered, release = threading.Event(), threading.Event()
    spec = hr.SupervisorSpec(
        [
            hr.ChildSpec("w", runtime.of(Watcher)),
            hr.ChildSpec("s", runtime.of(Worker), args=("s",), shutdown=0.02),
        ]
    )
    tree, rec = start(spec)
    watcher, stuck = tree.lookup("root/w"), tree.lookup("root/s")
    watcher.ask(("watch", stuck), timeout=5)
    stuck.tell(("block_then_crash", entered, release))
    assert entered.wait(timeout=10)
    tree.stop_child("s")  # abandoned after 0.02 s: for its watchers it is killed now
    got = watcher.ask("got", timeout=5)
    assert sorted(type(m).__name__ for m in got) == ["Down", "Exit"]
    assert all(m.reason == hr.KILLED for m in got)
    tree.restart_child("s")
    release.set()  # the old incarnation's late handler raises: no second word of it
    rec.wait_for(EventKind.DEAD_LETTER, "root/s")
    assert watcher.ask("got", timeout=5) == got
    assert stuck.ask("still there?", timeout=5) == ("s", 2, "still there?")
    assert tree.stop(timeout=10) == hr.SHUTDOWN


def test_a_supervised_event_loop_child_whose_loop_closes_is_killed_and_cannot_restart():
    """On a loop that has closed (not hedgerow's, which never does), a message
    to the child finds nobody to run it: the incarnation is killed, and each
    restart fails to start, until the supervisor gives up (never a hang)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    class OnItsLoop(hr.AsyncioActor):
        _hr_start_loop = loop

        def on_receive(self, message: Any) -> Any:
            return message

    tree, rec = start(hr.SupervisorSpec([hr.ChildSpec("x", OnItsLoop)], max_restarts=2))
    x = tree.get_child("x")
    assert x.ask("hi", timeout=5) == "hi"
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)
    loop.close()
    x.tell("anyone?")
    assert isinstance(tree.wait(timeout=10), hr.IntensityExceeded)
    assert rec.wait_for(EventKind.FAILED, "root/x").reason == hr.KILLED
    failed_starts = rec.matching(EventKind.START_FAILED, "root/x")
    assert failed_starts
    assert all("is closed" in str(e.reason) for e in failed_starts)
    (letter,) = rec.matching(EventKind.DEAD_LETTER, "root/x")
    assert letter.message == "anyone?"
