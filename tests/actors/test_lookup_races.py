"""Lookups, tells and asks from many threads while a tree starts, fails to
start, restarts a nested supervisor and stops, with a tiny switch interval so
that threads interleave everywhere. Whatever the schedule, every message is
handled or dead-lettered exactly once, no asker waits for ever, and no name
is left once the tree has ended."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from helpers import Log

import hedgerow as hr
from hedgerow.testing import EventRecorder

TARGETS = ("sink", "late", "root/inner/deep")
SENDERS = 3
SENDS = 3000
"""At most this many sends per sender: they go on until the test is calm, and a
slow machine left them (at a 1 µs switch interval) to send 2,000 to 98,000 in
all, each to be accounted for at the end. The races are at the tree's start and
the restarts the test makes at once after it, while the senders are still
under way."""


@pytest.fixture(autouse=True)
def tiny_switch_interval() -> Iterator[None]:
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # the races hide at the default interval
    yield
    sys.setswitchinterval(interval)


@dataclass
class Traffic:
    """What the senders sent and asked, what the sinks handled, and the signals
    between the test, the senders and the late child."""

    sent: Log = field(default_factory=Log)
    asked: Log = field(default_factory=Log)
    handled: Log = field(default_factory=Log)
    go: threading.Event = field(default_factory=threading.Event)
    """Set by the senders once they are under way: the late child may start."""
    calm: threading.Event = field(default_factory=threading.Event)
    """Set by the test: the senders finish."""
    finished: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))


class Sink(hr.Actor):
    """Notes every message it handles; crashes on "crash" (sent by the test only)."""

    def __init__(self, traffic: Traffic) -> None:
        super().__init__()
        self.traffic = traffic

    def on_receive(self, message: Any) -> Any:
        if message == "crash":
            raise RuntimeError("sink crashed")
        self.traffic.handled.add(message)
        return message


class Late(Sink):
    """Starts once the senders are under way, and fails to if told so."""

    def __init__(self, traffic: Traffic, *, fail: bool) -> None:
        super().__init__(traffic)
        self.fail = fail

    def on_start(self) -> None:
        self.traffic.go.wait(10)
        if self.fail:
            raise ValueError("late cannot start")


class Senders(hr.Actor):
    """Starts first; in on_start, looks up later children and starts threads that
    look them up again and again, and tell or ask each, until `calm` is set."""

    def __init__(self, traffic: Traffic) -> None:
        super().__init__()
        self.traffic = traffic

    def on_start(self) -> None:
        refs = [self.actor_lookup(name) for name in TARGETS]  # all start later
        for sender in range(SENDERS):
            threading.Thread(target=self.send, args=(sender, refs), daemon=True).start()

    def send(self, sender: int, refs: list[hr.ChildRef[Any]]) -> None:
        traffic = self.traffic
        n = 0
        while (not traffic.calm.is_set() or n < 30) and n < SENDS:
            ref = refs[n % len(refs)]
            if n % 2:  # look it up again: the same ref, a new one after a restart, or none
                with contextlib.suppress(hr.ChildNotFound):
                    ref = self.actor_lookup(TARGETS[n % len(TARGETS)])
            message = (sender, n)
            traffic.sent.add(message)
            if n % 3 == 0:
                traffic.asked.add((message, ref.ask(message, block=False)))
            else:
                ref.tell(message)
            n += 1
            if n == 20:
                traffic.go.set()
        traffic.finished.release()


def tree_spec(traffic: Traffic, *, fail: bool) -> hr.SupervisorSpec:
    inner = hr.SupervisorSpec([hr.ChildSpec("deep", Sink, args=(traffic,))], max_restarts=0)
    return hr.SupervisorSpec(
        [
            hr.ChildSpec("senders", Senders, args=(traffic,)),
            hr.ChildSpec("sink", Sink, args=(traffic,)),
            hr.ChildSpec("late", Late, args=(traffic,), kwargs={"fail": fail}),
            hr.ChildSpec("inner", inner),  # never starts if late fails: its names are released
        ],
        max_restarts=100,
    )


def settle(traffic: Traffic, recorder: EventRecorder) -> None:
    """Let the senders finish; check every answer and every message's fate."""
    traffic.calm.set()
    for _ in range(SENDERS):
        assert traffic.finished.acquire(timeout=30), "a sender never finished"
    for message, future in traffic.asked.items:
        with contextlib.suppress(hr.DeadLetterError):
            assert future.get(timeout=10) == message  # an answer or a dead letter, never a hang
    dead = [e.message for e in recorder.matching(hr.EventKind.DEAD_LETTER)]
    fates = Counter(traffic.handled.items) + Counter(m for m in dead if m != "crash")
    assert set(fates) == set(traffic.sent.items), "a message was neither handled nor dead"
    assert max(fates.values()) == 1, "a message was handled or dead-lettered twice"


@pytest.mark.parametrize("round_", range(4))
def test_a_tree_that_fails_to_start_dead_letters_what_waited_for_it(round_):
    traffic = Traffic()
    events = hr.EventStream()
    recorder = EventRecorder(events)
    with pytest.raises(hr.StartError):
        hr.start_tree(tree_spec(traffic, fail=True), events=events)
    settle(traffic, recorder)


@pytest.mark.parametrize("round_", range(4))
def test_a_nested_restart_and_the_stop_leave_no_message_unaccounted_for(round_):
    traffic = Traffic()
    events = hr.EventStream()
    recorder = EventRecorder(events)
    tree = hr.start_tree(tree_spec(traffic, fail=False), events=events)
    for times in (1, 2):  # inner gives up at its child's crash: root restarts it
        tree.lookup("root/inner/deep").tell("crash")
        recorder.wait_restarted("root/inner", times)
    tree.stop()
    settle(traffic, recorder)
    assert tree.names.paths() == []
