"""Interleavings found in review: each once lost a message, hung an asker or left a thread."""

from __future__ import annotations

import queue
import threading
from typing import Any

import pytest
from helpers import FailNTimes, Worker, start, worker

import hedgerow as hr
from hedgerow import EventKind
from hedgerow.actors._messages import _Control


def test_stopping_one_member_of_a_pending_group_restart_keeps_the_others_restarting(runtime, clock):
    children = [worker(x, initial_retry_delay=1.0, retry_delay_jitter=0) for x in "abc"]
    tree, rec = start(hr.SupervisorSpec(children, strategy="one_for_all"), clock=clock)
    with tree:
        a = tree.get_child("a")
        a.tell("crash")
        rec.wait_for(EventKind.RESTARTED, "root/c")
        a.tell("crash")
        due = rec.wait_for(EventKind.RESTART_SCHEDULED, "root/a")
        tree.stop_child("b")
        clock.advance(due.delay)
        assert a.ask("back", timeout=10) == ("a", 3, "back")
        states = {c.id: c.state for c in tree.which_children()}
        assert states == {
            "a": hr.ChildState.RUNNING,
            "b": hr.ChildState.STOPPED,
            "c": hr.ChildState.RUNNING,
        }


class Linker(Worker):
    def on_receive(self, message: Any) -> Any:
        if isinstance(message, tuple) and message[0] == "link":
            self.actor_link(message[1])
            return "linked"
        return super().on_receive(message)


def test_an_exit_signal_left_for_a_stopped_incarnation_does_not_kill_the_next(runtime, monkeypatch):
    spec = hr.SupervisorSpec(
        [worker("a"), hr.ChildSpec("b", runtime.of(Linker), args=("b",))],
        strategy="one_for_all",
        max_restarts=10,
    )
    tree, rec = start(spec)
    with tree:
        a, b = tree.get_child("a"), tree.get_child("b")
        assert b.ask(("link", a)) == "linked"
        entered, release = threading.Event(), threading.Event()
        stop_queued = threading.Event()
        put_front = b.actor_inbox.put_front

        def watch(envelope: Any) -> None:
            put_front(envelope)
            if isinstance(envelope.message, _Control) and envelope.message.kind == "stop":
                stop_queued.set()

        monkeypatch.setattr(b.actor_inbox, "put_front", watch)
        b.tell(("block", entered, release))
        entered.wait(timeout=10)
        a.tell("crash")  # signals b #1 through the link; the supervisor stops b #1
        assert stop_queued.wait(timeout=10)
        release.set()
        rec.wait_for(EventKind.RESTARTED, "root/b")
        assert b.ask("alive?", timeout=10) == ("b", 2, "alive?")
        assert rec.matching(EventKind.FAILED, "root/b", lambda e: e.incarnation == 2) == []


def test_brutal_kill_of_an_idle_child_leaves_no_thread_and_no_hanging_asker(runtime):
    for _ in range(10):
        spec = hr.SupervisorSpec([worker("w", shutdown="brutal_kill", restart="failed")])
        tree, _ = start(spec)
        w = tree.get_child("w")
        tree.stop_child("w")
        tree.stop(timeout=10)
        with pytest.raises(hr.DeadLetterError):
            w.ask("anyone?", timeout=10)
    # The autouse fixture then checks that no actor thread is left running.


def test_failed_restarts_after_a_long_uptime_still_back_off(runtime, clock):
    remaining = [0]
    spec = hr.SupervisorSpec(
        [hr.ChildSpec("c", runtime.of(FailNTimes), args=(remaining,), retry_delay_jitter=0)],
        max_restarts=10,
        period=5,
    )
    tree, rec = start(spec, clock=clock)
    with tree:
        clock.advance(100)
        remaining[0] = 1
        tree.get_child("c").tell("crash")
        scheduled = rec.wait_for(EventKind.RESTART_SCHEDULED, "root/c")
        assert scheduled.delay == pytest.approx(2.25)
        assert len(rec.matching(EventKind.START_FAILED)) == 1
        clock.advance(scheduled.delay)
        rec.wait_for(EventKind.RESTARTED, "root/c")


def test_a_failed_restart_child_leaves_the_ref_dead_not_waiting(runtime):
    remaining = [0]
    tree, _ = start(
        hr.SupervisorSpec([hr.ChildSpec("c", runtime.of(FailNTimes), args=(remaining,))])
    )
    with tree:
        c = tree.get_child("c")
        tree.stop_child("c")
        remaining[0] = 1
        with pytest.raises(hr.StartError):
            tree.restart_child("c")
        assert not c.is_alive()
        with pytest.raises(hr.DeadLetterError):
            c.ask("hello", timeout=10)


class Watcher(hr.Actor):
    def __init__(self, out: queue.Queue[Any]) -> None:
        super().__init__()
        self.out = out

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, hr.Down):
            self.out.put((self.actor_incarnation, message.reason))
            return None
        if message == "crash":
            raise RuntimeError("watcher crashed")
        return self.actor_monitor(message)


def test_a_restarted_watcher_does_not_get_its_predecessors_down_messages(runtime):
    out: queue.Queue[Any] = queue.Queue()
    tree, rec = start(
        hr.SupervisorSpec([hr.ChildSpec("watcher", runtime.of(Watcher), args=(out,))])
    )
    with tree:
        watcher = tree.get_child("watcher")
        target = runtime.of(Worker).start()
        watcher.ask(target)
        watcher.tell("crash")
        rec.wait_for(EventKind.RESTARTED, "root/watcher")
        target.stop()
        second = runtime.of(Worker).start()
        watcher.ask(second)  # the new incarnation's own monitor
        second.stop()
        assert out.get(timeout=10) == (2, hr.NORMAL)
        assert out.empty()


def test_a_base_exception_in_on_start_is_a_start_failure(runtime):
    class Exits(hr.Actor):
        def on_start(self) -> None:
            raise SystemExit(3)

    with pytest.raises(hr.StartError) as info:
        hr.start_tree(hr.SupervisorSpec([hr.ChildSpec("x", runtime.of(Exits))]))
    assert isinstance(info.value.cause.cause, SystemExit)


def _send_until(
    ref: hr.ChildRef[Any],
    tag: tuple[int, int],
    restarted: threading.Event,
    out: list[Any],
) -> None:
    """Tell `ref` numbered messages until 100 were sent after `restarted`; keep those."""
    seq = 0
    while len(out) < 100:
        seq += 1
        was_restarted = restarted.is_set()
        ref.tell(("n", *tag, seq))
        if was_restarted:
            out.append(("n", *tag, seq))


def test_restart_child_does_not_eat_messages_sent_after_it_returned(runtime):
    """Senders that began dead-lettering to a stopped child's ref must stop as soon
    as restart_child has revived it: what they send after that reaches the child."""
    spec = hr.SupervisorSpec([worker("w")])
    tree, rec = start(spec)
    with tree:
        w = tree.get_child("w")
        for round_ in range(5):
            tree.stop_child("w")
            restarted = threading.Event()
            after: list[list[Any]] = [[] for _ in range(3)]
            senders = [
                threading.Thread(target=_send_until, args=(w, (round_, i), restarted, after[i]))
                for i in range(3)
            ]
            for sender in senders:
                sender.start()
            tree.restart_child("w")
            restarted.set()
            for sender in senders:
                sender.join(timeout=10)
            w.ask("sync", timeout=10)  # behind every tell above
            sent_after = {m for a in after for m in a}
            eaten = [
                e.message
                for e in rec.matching(EventKind.DEAD_LETTER, "root/w")
                if e.message in sent_after
            ]
            assert eaten == []
