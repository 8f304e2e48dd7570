"""Updates while threads look children up and tell or ask them, with a tiny
switch interval: children change class and kwargs, swap ids, move between
supervisors, are removed and added again. Whatever the schedule, every
message is handled or dead-lettered exactly once and every ask is answered."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import Log

import hedgerow as hr
from hedgerow.supervision._update import update_tree
from hedgerow.testing import EventRecorder

PATHS = ("svc/a", "svc/b", "svc/c", "svc/sub/x", "svc/sub/y", "svc/sub/c")


@pytest.fixture(autouse=True)
def tiny_switch_interval() -> Iterator[None]:
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # the races hide at the default interval
    yield
    sys.setswitchinterval(interval)


class Sink(hr.Actor):
    def __init__(self, handled: Log, tag: str = "") -> None:
        super().__init__()
        self.handled = handled
        self.tag = tag

    def on_receive(self, message: Any) -> Any:
        self.handled.add(message)
        return message


class OtherSink(Sink):
    pass


class Traffic:
    """Threads that look up `PATHS` and tell or ask what they find, until calmed."""

    def __init__(self, tree: hr.Tree, senders: int = 3) -> None:
        self.tree = tree
        self.sent, self.asked = Log(), Log()
        self.calm = threading.Event()
        self.threads = [threading.Thread(target=self.send, args=(k,)) for k in range(senders)]
        for thread in self.threads:
            thread.start()

    def send(self, sender: int) -> None:
        n = 0
        while not self.calm.is_set():
            n += 1
            try:
                ref = self.tree.lookup(PATHS[n % len(PATHS)])
            except hr.ChildNotFound:  # not in the spec at this moment
                continue
            message = (sender, n)
            self.sent.add(message)
            if n % 4 == 0:
                self.asked.add((message, ref.ask(message, block=False)))
            else:
                ref.tell(message)

    def stop(self) -> None:
        self.calm.set()
        for thread in self.threads:
            thread.join()
        for message, future in self.asked.items:
            with contextlib.suppress(hr.DeadLetterError):
                assert future.get(timeout=10) == message  # answered, or a dead letter


def specs(handled: Log) -> list[hr.SupervisorSpec]:
    def child(child_id: str, cls: type[Sink] = Sink, tag: str = "") -> hr.ChildSpec:
        return hr.ChildSpec(child_id, cls, args=(handled,), kwargs={"tag": tag})

    def tree_of(*children: hr.ChildSpec, sub: list[hr.ChildSpec]) -> hr.SupervisorSpec:
        nested = hr.ChildSpec("sub", hr.SupervisorSpec(sub))
        return hr.SupervisorSpec([*children, nested], name="svc")

    return [
        tree_of(child("a"), child("b"), child("c"), sub=[child("x"), child("y")]),
        # ids swapped (classes too), c moved into sub, x changed, sub reordered
        tree_of(
            child("b", OtherSink),
            child("a", OtherSink),
            sub=[child("y"), child("x", tag="2"), child("c")],
        ),
        # c moved back, y removed, b changed
        tree_of(child("a"), child("b", tag="3"), child("c"), sub=[child("x", OtherSink)]),
    ]


def test_updates_under_traffic_leave_no_message_unaccounted_for():
    before = set(threading.enumerate())
    handled = Log()
    first, *others = specs(handled)
    events = hr.EventStream()
    recorder = EventRecorder(events)
    tree = hr.start_tree(first, events=events)
    traffic = Traffic(tree)
    try:
        for _ in range(4):
            for spec in (*others, first):
                update_tree(tree, spec)
    finally:
        traffic.stop()
    tree.stop()
    dead = [e.message for e in recorder.matching(hr.EventKind.DEAD_LETTER)]
    fates = Counter(handled.items) + Counter(dead)
    assert set(fates) == set(traffic.sent.items), "a message was neither handled nor dead"
    assert max(fates.values()) == 1, "a message was handled or dead-lettered twice"
    assert tree.names.paths() == []
    for thread in set(threading.enumerate()) - before:  # every actor's thread ends
        thread.join(10)
        assert not thread.is_alive(), thread
