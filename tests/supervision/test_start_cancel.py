"""A start under way is cancelled in bounded time: what had started is stopped
in reverse order, the child still in its ``on_start`` is abandoned after its own
shutdown, and `start_tree` raises `StartCancelled`."""

from __future__ import annotations

import threading

import pykka
import pytest
from helpers import Log, Worker, blocking, ran_out, wait_threads_end, worker

import hedgerow as hr
from hedgerow import EventKind
from hedgerow.testing import EventRecorder


class Waits(hr.Actor):
    """Waits in on_start until released (a router that is not there)."""

    def __init__(self, entered: threading.Event, release: threading.Event) -> None:
        super().__init__()
        self.entered = entered
        self.release = release

    def on_start(self) -> object:
        self.entered.set()
        return blocking(self, self.release, lambda: None)  # awaits, on the loop


def _start_in_thread(spec: hr.SupervisorSpec, cancel: threading.Event, events: hr.EventStream):
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["tree"] = hr.start_tree(spec, events=events, cancel=cancel)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="starter")
    thread.start()
    return thread, outcome


@pytest.mark.parametrize("nested", [False, True])
def test_a_cancelled_start_stops_what_started_and_abandons_the_waiting_child(runtime, nested):
    log = Log()
    entered, release = threading.Event(), threading.Event()
    children = [worker("a", log), worker("b", log)]
    waits_class = runtime.of(Waits)
    waits = hr.ChildSpec("waits", waits_class, args=(entered, release), shutdown=0.05)
    children += [waits, worker("never", log)]
    if nested:
        inner = hr.SupervisorSpec(children)
        spec = hr.SupervisorSpec([worker("first", log), hr.ChildSpec("s", inner)])
    else:
        spec = hr.SupervisorSpec(children)
    events = hr.EventStream()
    rec = EventRecorder(events)
    before = set(threading.enumerate())
    cancel = threading.Event()
    thread, outcome = _start_in_thread(spec, cancel, events)
    assert entered.wait(timeout=10)
    cancel.set()
    thread.join(timeout=10)
    assert not thread.is_alive(), "the start was not cancelled"
    error = outcome.get("error")
    assert isinstance(error, hr.StartCancelled), outcome
    started = ["first", "a", "b"] if nested else ["a", "b"]
    assert log.of("start") == started
    assert log.of("stop") == started[::-1]
    prefix = "root/s" if nested else "root"
    assert rec.wait_for(ran_out(waits_class), f"{prefix}/waits").reason == hr.KILLED
    assert pykka.ActorRegistry.get_all() == []
    release.set()  # the abandoned on_start returns: it runs nothing more
    assert wait_threads_end(before) == []
    assert "never" not in log.of("start")


def test_a_cancel_after_the_start_finished_leaves_the_tree_running():
    cancel = threading.Event()
    tree = hr.start_tree(hr.SupervisorSpec([hr.ChildSpec("a", Worker)]), cancel=cancel)
    cancel.set()
    assert tree.lookup("root/a").ask("hi", timeout=5) == ("w", 1, "hi")
    assert tree.stop(timeout=10) == hr.SHUTDOWN


class Armed(hr.Actor):
    """Waits in on_start, once `armed` is set, until released; crashes on "crash"."""

    def __init__(self, armed: threading.Event, entered: threading.Event, release: threading.Event):
        super().__init__()
        self.armed, self.entered, self.release = armed, entered, release

    def on_start(self) -> object:
        if self.armed.is_set():
            self.entered.set()
            return blocking(self, self.release, lambda: None)  # awaits, on the loop
        return None

    def on_receive(self, message: object) -> object:
        if message == "crash":
            raise RuntimeError("crashed")
        return message


@pytest.mark.parametrize("nested", [False, True])
def test_a_stop_while_the_root_restarts_a_child_stuck_in_on_start_ends_in_bounded_time(
    runtime, nested
):
    armed, entered, release = threading.Event(), threading.Event(), threading.Event()
    armed_class = runtime.of(Armed)
    slow = hr.ChildSpec("k", armed_class, args=(armed, entered, release), shutdown=0.05)
    if nested:  # k's crash makes s give up: the root restarts s, which starts k
        inner = hr.SupervisorSpec([hr.ChildSpec("a", Worker), slow], max_restarts=0)
        spec = hr.SupervisorSpec([hr.ChildSpec("s", inner, shutdown=0.05)])
        path = "root/s/k"
    else:
        spec = hr.SupervisorSpec([hr.ChildSpec("a", Worker), slow])
        path = "root/k"
    events = hr.EventStream()
    rec = EventRecorder(events)
    before = set(threading.enumerate())
    tree = hr.start_tree(spec, events=events)
    armed.set()
    tree.lookup(path).tell("crash")
    assert entered.wait(timeout=10)
    assert tree.stop(timeout=5) == hr.SHUTDOWN
    assert pykka.ActorRegistry.get_all() == []
    release.set()  # the abandoned on_start returns: nothing more starts
    assert wait_threads_end(before) == []
    assert rec.matching(EventKind.RESTARTED, path) == []
    assert rec.matching(ran_out(armed_class), path, lambda e: e.reason == hr.KILLED)
