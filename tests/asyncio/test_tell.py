"""`hedgerow.tell`, and a plain ``tell`` from an event loop, into a full ``block`` inbox:
the loop never waits for room; an awaited tell does, suspending its task only."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import helpers
import pytest

import hedgerow as hr
from hedgerow import EventKind

pytestmark = pytest.mark.timeout(60)

WAIT = 10.0


@pytest.fixture(params=["default", "tiny"])
def switching(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test also runs with the interpreter switching threads as often as it can."""
    previous = sys.getswitchinterval()
    if request.param == "tiny":
        sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)


class Held:
    """A body: holds its first message ("hold") until `release` is set; records the
    order in which messages reach it."""

    def __init__(self, entered: threading.Event, release: threading.Event, seen: list[Any]):
        super().__init__()
        self.entered = entered
        self.release = release
        self.seen = seen

    def on_receive(self, message: Any) -> Any:
        self.seen.append(message)
        if message == "hold":
            self.entered.set()
            return helpers.blocking(self, self.release, lambda: "released")
        return message


class Letters:
    """The dead letters of a tree: (message, reason)."""

    def __init__(self, events: hr.EventStream) -> None:
        self.lock = threading.Lock()
        self.items: list[tuple[Any, Any]] = []
        events.subscribe(self.on_event)

    def on_event(self, event: hr.Event) -> None:
        if event.kind is EventKind.DEAD_LETTER:
            with self.lock:
                self.items.append((event.message, event.reason))

    @property
    def messages(self) -> list[Any]:
        with self.lock:
            return [m for m, _ in self.items]


class Full:
    """A tree of one child ``root/held`` whose inbox (max_inbox) is full: it holds
    "hold", and `max_inbox` more wait behind it."""

    def __init__(
        self, body: type = Held, *, max_inbox: int = 1, timeout: float = WAIT, **options: Any
    ) -> None:
        self.entered, self.release = threading.Event(), threading.Event()
        self.seen: list[Any] = []
        self.events = hr.EventStream()
        self.letters = Letters(self.events)
        cls = helpers.current[0].of(body)
        child = hr.ChildSpec(
            "held",
            cls,
            args=(self.entered, self.release, self.seen),
            max_inbox=max_inbox,
            inbox_overflow="block",
            inbox_timeout=timeout,
            **options,
        )
        self.spec = hr.SupervisorSpec([child])
        self.max_inbox = max_inbox

    def fill(self, ref: hr.ChildRef[Any]) -> None:
        ref.tell("hold")
        assert self.entered.wait(WAIT)
        for n in range(self.max_inbox):
            ref.tell(("filler", n))
        assert ref.inbox_statistics().depth == self.max_inbox

    def fillers(self) -> list[Any]:
        return [("filler", n) for n in range(self.max_inbox)]


# -- a plain tell from a loop never waits --------------------------------------


class Teller(hr.AsyncioActor):
    """An event-loop actor (on hedgerow's loop thread) that tells what it is asked to."""

    def on_receive(self, message: Any) -> Any:
        ref, what = message
        began = time.monotonic()
        ref.tell(what)
        return time.monotonic() - began


@pytest.mark.parametrize("sender", ["application", "loop actor"])
def test_a_plain_tell_from_a_loop_into_a_full_block_inbox_drops_at_once(runtime, sender):
    """(It blocked the loop for the inbox's timeout, all its tasks and actors with it.)"""
    full = Full(timeout=3.0)
    with hr.start_tree(full.spec, events=full.events) as tree:
        ref = tree.lookup("root/held")
        full.fill(ref)
        teller = Teller.start()
        try:

            async def main() -> float:
                if sender == "loop actor":
                    return await hr.ask(teller, (ref, "late"))  # type: ignore[no-any-return]
                began = time.monotonic()
                ref.tell("late")
                return time.monotonic() - began

            took = asyncio.run(main())
        finally:
            teller.stop()
            full.release.set()  # (also when an assertion fails: nothing left held)
        assert took < 1.0
        [(message, reason)] = full.letters.items
        assert message == "late"
        assert isinstance(reason, hr.InboxFull)
        assert "event loop" in str(reason)
        assert "hedgerow.tell" in str(reason)
        assert ref.ask("done", timeout=WAIT) == "done"
        assert full.seen == ["hold", *full.fillers(), "done"]
