"""The harness counts exactly: never more handled than sent, never a negative loss."""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import TYPE_CHECKING, Any

import helpers
import pytest

import hedgerow as hr
from hedgerow.testing import EventRecorder, Faults

if TYPE_CHECKING:
    from helpers import Runtime


class Player(hr.Actor):
    """Plays ping-pong with its partner for ever (until stopped)."""

    def __init__(self, partner: str) -> None:
        super().__init__()
        self.partner = partner

    def on_receive(self, message: Any) -> None:
        self.actor_lookup(self.partner).tell(message + 1)


def rally(pairs: int, runtime: Runtime) -> hr.SupervisorSpec:
    """Pairs of players, on the test's runtime (thread, event-loop, or mixed pairs)."""
    children = []
    for n in range(pairs):
        children.append(hr.ChildSpec(f"ping{n}", runtime.of(Player), args=(f"pong{n}",)))
        children.append(hr.ChildSpec(f"pong{n}", runtime.of(Player), args=(f"ping{n}",)))
    return hr.SupervisorSpec(children)


@pytest.fixture
def fast_switching():
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # the races hide at the default interval
    yield
    sys.setswitchinterval(interval)


def test_faults_attached_mid_rally_never_count_more_handled_than_sent(fast_switching, runtime):
    pairs = 3
    with hr.start_tree(rally(pairs, runtime)) as tree:
        for n in range(pairs):
            tree.lookup(f"root/ping{n}").tell(0)
        for _ in range(30):
            faults = Faults(tree)
            counts = [faults.messages for _ in range(20)]
            faults.close()
            assert all(c.handled + c.dead_lettered <= c.sent for c in counts), counts


def test_after_the_tree_stops_every_counted_message_is_handled_or_dead_lettered(
    fast_switching, runtime
):
    pairs = 3
    tree = hr.start_tree(rally(pairs, runtime))
    try:
        for n in range(pairs):
            tree.lookup(f"root/ping{n}").tell(0)
        faults = Faults(tree)
    finally:
        tree.stop(timeout=30)
    counts = faults.messages
    faults.close()
    assert counts.sent > 0
    assert counts.sent == counts.handled + counts.dead_lettered, counts


class Slow(hr.Actor):
    """Waits for `release` in its handler, then does nothing."""

    def __init__(self, entered: threading.Event, release: threading.Event) -> None:
        super().__init__()
        self.entered = entered
        self.release = release

    def on_receive(self, message: Any) -> None:
        self.entered.set()
        self.release.wait(timeout=30)


def test_a_message_in_flight_when_faults_attach_is_not_counted():
    entered, release = threading.Event(), threading.Event()
    spec = hr.SupervisorSpec([hr.ChildSpec("slow", Slow, args=(entered, release))])
    with hr.start_tree(spec) as tree:
        ref = tree.lookup("root/slow")
        ref.tell("before")
        assert entered.wait(timeout=30)
        faults = Faults(tree)
        release.set()
        assert ref.ask("after") is None
        counts = faults.messages
        faults.close()
    assert (counts.sent, counts.handled, counts.dead_lettered) == (1, 1, 0)


class Stopper(hr.Actor):
    """Its on_stop waits for `release` (or a while): the root stops slowly."""

    def __init__(self, release: threading.Event) -> None:
        super().__init__()
        self.release = release

    def on_stop(self) -> None:
        self.release.wait(timeout=2)


class Broken(hr.Actor):
    def on_receive(self, message: Any) -> None:
        raise RuntimeError(message)


def test_tree_gave_up_is_true_when_wait_gave_up_returns():
    release = threading.Event()
    spec = hr.SupervisorSpec(
        [hr.ChildSpec("stopper", Stopper, args=(release,)), hr.ChildSpec("broken", Broken)],
        max_restarts=0,
    )
    events = hr.EventStream()
    recorder = EventRecorder(events)
    tree = hr.start_tree(spec, events=events)
    try:
        tree.lookup("root/broken").tell("boom")
        event = recorder.wait_gave_up("root", timeout=30)
        gave_up = tree.gave_up
        release.set()
    finally:
        release.set()
        tree.stop(timeout=30)
    assert event.path == "root"
    assert gave_up


class Holds:
    """Holds "hold" until `release` is set (in its thread, or its task on the loop)."""

    def __init__(self, entered: threading.Event, release: threading.Event) -> None:
        super().__init__()
        self.entered = entered
        self.release = release

    def on_receive(self, message: Any) -> Any:
        if message == "hold":
            self.entered.set()
            return helpers.blocking(self, self.release, lambda: "released")
        return message


@pytest.mark.parametrize("style", ["hedgerow.ask", "ref.ask"])
@pytest.mark.parametrize("base", [hr.Actor, hr.AsyncioActor], ids=["thread", "loop"])
def test_an_ask_its_cancelled_asker_took_back_is_counted_withdrawn(base, style):
    """Its message leaves the inbox unhandled and is no dead letter: withdrawn,
    not lost (it stayed counted as on its way: a chaos run reported it lost)."""
    entered, release = threading.Event(), threading.Event()
    spec = hr.SupervisorSpec(
        [hr.ChildSpec("held", helpers.on(Holds, base), args=(entered, release))]
    )
    with hr.start_tree(spec) as tree:
        ref = tree.lookup("root/held")
        faults = Faults(tree)

        async def main() -> None:
            ref.tell("hold")
            assert await asyncio.to_thread(entered.wait, 30)
            ask = (
                hr.ask(ref, "taken back")
                if style == "hedgerow.ask"
                else ref.ask("taken back", block=False)
            )
            task = asyncio.ensure_future(ask)
            await asyncio.sleep(0)  # the task has sent it and awaits the answer
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            release.set()
            assert await hr.ask(ref, "after") == "after"

        try:
            asyncio.run(main())
            counts = faults.messages
        finally:
            release.set()
            faults.close()
    assert (counts.sent, counts.handled, counts.dead_lettered) == (3, 2, 0), counts
    assert counts.withdrawn == 1, counts
    assert counts.sent == counts.handled + counts.dead_lettered + counts.withdrawn
