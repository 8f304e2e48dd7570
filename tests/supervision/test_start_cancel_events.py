"""A cancelled start reports the root's end last: after every child it had
started is stopped (the take-over), as a tree's stop does."""

from __future__ import annotations

import threading

import pytest

import hedgerow as hr
from hedgerow.testing import EventRecorder

pytestmark = pytest.mark.timeout(30)


class Waits(hr.Actor):
    """Waits in on_start for ever (until the test ends it)."""

    def __init__(self, entered: threading.Event, release: threading.Event) -> None:
        super().__init__()
        self.entered = entered
        self.release = release

    def on_start(self) -> None:
        self.entered.set()
        self.release.wait(20)


class SlowStop(hr.Actor):
    """Stops only once the root supervisor's own thread has ended, so that the
    root's end, if reported from there, comes before this child's stop."""

    def __init__(self, roots: list[threading.Thread], known: set[threading.Thread]) -> None:
        super().__init__()
        self.roots = roots
        self.known = known

    def on_start(self) -> None:
        # The root runs in pykka's thread, named after its class.
        self.roots += [
            t
            for t in threading.enumerate()
            if t.name.startswith("Supervisor-") and t not in self.known
        ]

    def on_stop(self) -> None:
        for root in self.roots:
            root.join(10)


def test_a_cancelled_start_reports_the_root_stopped_after_its_children():
    entered, release, cancel = threading.Event(), threading.Event(), threading.Event()
    roots: list[threading.Thread] = []
    spec = hr.SupervisorSpec(
        name="svc",
        children=[
            hr.ChildSpec("first", SlowStop, args=(roots, set(threading.enumerate()))),
            hr.ChildSpec("slow", Waits, args=(entered, release), shutdown="brutal_kill"),
        ],
    )
    events = hr.EventStream()
    recorder = EventRecorder(events)
    outcome: dict[str, BaseException] = {}

    def run() -> None:
        try:
            hr.start_tree(spec, events=events, cancel=cancel)
        except BaseException as exc:
            outcome["error"] = exc

    starter = threading.Thread(target=run)
    starter.start()
    try:
        assert entered.wait(10)
        cancel.set()
        starter.join(20)
    finally:
        release.set()
    assert isinstance(outcome.get("error"), hr.StartCancelled)
    ends = [(e.kind.value, e.path, e.reason) for e in recorder.events if e.kind.value != "started"]
    assert ends == [
        ("stopped", "svc/slow", "killed"),
        ("stopped", "svc/first", "shutdown"),
        ("stopped", "svc", "shutdown"),
    ]
