"""Attacks on the flags made when first asked for (55b0bcb): an incarnation's exit
flag (`ActorCore._hr_exited`) and its lock, and a `ChildRef`'s ``actor_stopped``.

Whoever makes such a flag, and whenever, every reader must get the one flag,
telling the truth (set if the change it tells of has happened) from the moment
it can be read; a thread that waits on it must wake when it is set; and a
process forked while another thread makes one must still be able to make its own.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import TYPE_CHECKING, Any

import pytest

import hedgerow as hr
from hedgerow.actors import _actor_core, _ref
from hedgerow.actors._ref import ChildRef

if TYPE_CHECKING:
    from hedgerow.actors._flag import StopFlag

pytestmark = pytest.mark.timeout(60)


class Quiet(hr.Actor):
    def on_receive(self, message: Any) -> Any:
        return message


def _ended() -> tuple[Any, Any]:
    """A thread actor started and stopped; its exit flag not asked for yet."""
    ref = Quiet.start()
    actor = ref._actor_weakref()
    done = threading.Event()
    assert actor._hr_add_exit_callback(lambda _actor, _reason: done.set()) is not None
    ref.stop()
    assert done.wait(10)
    assert actor._hr_has_exited
    return ref, actor


# -- the flag is true from the moment it can be read ----------------------------------


class SeenWhenPublished:
    """A data descriptor for the attribute a lazy flag is stored in: when the flag
    is stored, another reader looks at once (what a thread does that reads it
    between the two stores of the maker), and what it saw is kept in ``seen``."""

    def __init__(self, name: str, read: Any) -> None:
        self.name = name
        self.read = read

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return None
        return obj.__dict__.get(self.name)

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__[self.name] = value
        if value is not None and "seen" not in obj.__dict__:
            obj.__dict__["seen"] = []
            flag = self.read(obj)  # another reader, now: its fast path finds the flag
            obj.seen.extend([flag is value, flag.is_set(), flag.wait(timeout=0.05)])


def test_an_exit_flag_is_set_before_any_reader_can_find_it():
    _, actor = _ended()

    class Probed(type(actor)):  # the same actor, its flag's store watched
        _hr_exited_flag = SeenWhenPublished("_flag_made", lambda a: a._hr_exited)

    actor.__class__ = Probed
    assert actor._hr_exited.is_set()
    assert actor.seen == [True, True, True]  # the other reader: the flag, set


def test_a_refs_actor_stopped_is_set_before_any_reader_can_find_it():
    class Probed(ChildRef):
        _stopped = SeenWhenPublished("_stopped_made", lambda r: r.actor_stopped)

    ref = Probed(Quiet, "root/gone")
    ref._mark_gone(hr.SHUTDOWN)
    assert ref.actor_stopped.is_set()
    assert ref.seen == [True, True, True]


# -- a waiter made after the end returns at once; racing makers agree ---------------


def test_an_exit_flag_asked_for_after_the_exit_returns_at_once():
    _, actor = _ended()
    assert actor._hr_exited_flag is None  # nobody asked: not made
    assert actor._hr_exited.wait()  # no timeout: it must not block
    assert actor._hr_exited is actor._hr_exited_flag


@pytest.fixture
def switchy() -> Any:
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def test_threads_asking_for_the_flag_and_lock_while_the_actor_stops_agree(switchy):
    """Many rounds: three threads ask for an incarnation's exit flag and lock while
    it stops; each gets the same flag and lock, and each wait returns set."""
    for _ in range(60):
        ref = Quiet.start()
        actor = ref._actor_weakref()
        go = threading.Barrier(4)
        got: list[tuple[int, int, bool]] = []

        def ask(actor: Any = actor, go: threading.Barrier = go, got: list[Any] = got) -> None:
            go.wait()
            lock = actor._hr_lock
            flag = actor._hr_exited
            got.append((id(flag), id(lock), flag.wait(timeout=10)))

        threads = [threading.Thread(target=ask) for _ in range(3)]
        for thread in threads:
            thread.start()
        go.wait()
        ref.stop()
        for thread in threads:
            thread.join(10)
        assert len(got) == 3
        assert {g[0] for g in got} == {id(actor._hr_exited)}
        assert {g[1] for g in got} == {id(actor._hr_lock)}
        assert all(g[2] for g in got)


def test_threads_asking_for_a_refs_actor_stopped_while_it_goes_and_comes_back_agree(switchy):
    for n in range(200):
        ref = ChildRef(Quiet, f"root/w{n}")
        go = threading.Barrier(3)
        flags: list[StopFlag] = []

        def ask(
            ref: ChildRef[Any] = ref, go: threading.Barrier = go, flags: list[Any] = flags
        ) -> None:
            go.wait()
            flags.append(ref.actor_stopped)

        threads = [threading.Thread(target=ask) for _ in range(2)]
        for thread in threads:
            thread.start()
        go.wait()
        ref._mark_gone(hr.SHUTDOWN)
        for thread in threads:
            thread.join(10)
        assert flags[0] is flags[1] is ref.actor_stopped
        assert ref.actor_stopped.is_set()
        ref._revive()
        assert not ref.actor_stopped.is_set()


# -- fork --------------------------------------------------------------------------


def _in_a_child_forked_while_held(lock: Any, make: Any) -> int:
    """Fork while another thread holds `lock`; in the child, `make()` in a thread:
    0 if it returned within 2 s, 1 if it blocked."""
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with lock:
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(10)
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            worker = threading.Thread(target=make, daemon=True)
            worker.start()
            worker.join(2)
            os._exit(1 if worker.is_alive() else 0)
    finally:
        release.set()
        holder.join(10)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_child_forked_while_an_exit_flag_was_being_made_can_make_its_own():
    actor = Quiet()  # never started: its lock and flag not made
    assert _in_a_child_forked_while_held(_actor_core._making, lambda: actor._hr_lock) == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_child_forked_while_a_refs_actor_stopped_was_being_made_can_make_its_own():
    ref = ChildRef(Quiet, "root/w")
    assert _in_a_child_forked_while_held(_ref._stopped_lock, lambda: ref.actor_stopped) == 0


# -- dead letters through the supervisor's one bound method; overflow only when bounded --


class Holds(hr.Actor):
    """Blocks on the event it is told, so what comes next waits in its inbox."""

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, threading.Event):
            message.wait(10)
        return message


def _dead_letters(tree: hr.Tree) -> list[tuple[str, Any, str]]:
    seen: list[tuple[str, Any, str]] = []

    def keep(event: hr.Event) -> None:
        if event.kind is hr.EventKind.DEAD_LETTER:
            seen.append((event.path, event.message, type(event.reason).__name__))

    tree.events.subscribe(keep)
    return seen


def test_a_stale_refs_dead_letters_are_reported_after_its_supervisor_restarted():
    sub = hr.SupervisorSpec([hr.ChildSpec("w", Quiet)])
    tree = hr.start_tree(hr.SupervisorSpec([hr.ChildSpec("sub", sub)]))
    with tree:
        seen = _dead_letters(tree)
        old = tree.lookup("root/sub/w")
        tree.stop_child("sub")
        old.tell("after its supervisor stopped")
        tree.restart_child("sub")
        new = tree.lookup("root/sub/w")
        assert new is not old  # the new supervisor's child has a new ref
        assert new.ask("hi", timeout=5) == "hi"
        old.tell("after its supervisor restarted")  # through the old one's bound method
        assert [s[:2] for s in seen] == [
            ("root/sub/w", "after its supervisor stopped"),
            ("root/sub/w", "after its supervisor restarted"),
        ]


def _one(max_inbox: int | None) -> hr.SupervisorSpec:
    return hr.SupervisorSpec([hr.ChildSpec("w", Holds, max_inbox=max_inbox)])


def test_an_inbox_bounded_by_an_update_reports_its_overflow_and_unbounded_again_does_not():
    tree = hr.start_tree(_one(None))
    with tree:
        seen = _dead_letters(tree)

        def flood(tag: str) -> None:
            ref = tree.lookup("root/w")
            release = threading.Event()
            ref.tell(release)  # it holds this one: what follows waits in its inbox
            for n in range(3):
                ref.tell(f"{tag} {n}")
            release.set()
            for _ in range(1000):  # a full inbox refuses the sync too: ask again
                try:
                    assert ref.ask("sync", timeout=10) == "sync"
                    break
                except hr.InboxFull:
                    continue

        flood("unbounded")
        hr.update_tree(tree, _one(1))
        flood("bounded")
        hr.update_tree(tree, _one(None))
        flood("unbounded again")
        hr.update_tree(tree, _one(1))
        flood("bounded again")
        dropped = [message for _path, message, _reason in seen if message != "sync"]
        assert all(reason == "InboxFull" for *_, reason in seen)
        assert [m.split()[0] for m in dropped] == ["bounded"] * (len(dropped))
        assert any(m.startswith("bounded again") for m in dropped)
        assert any(m.startswith("bounded ") and "again" not in m for m in dropped)
