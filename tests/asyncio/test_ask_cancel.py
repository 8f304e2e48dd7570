"""Cancelling an awaited ask takes its message back if the actor has not taken it yet.

``await hedgerow.ask(ref, msg)`` (and ``await ref.ask(msg, block=False)`` on an
event-loop actor's ref or a `ChildRef`): a cancel (or a timeout around it)
while the message still waits in the inbox removes it, so the actor never
handles it; once the actor has it, its answer is dropped and nothing else
changes (tests/asyncio/test_ask.py). (Before, the message stayed queued and
was handled later, its answer going to nobody.)
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import helpers
import pykka
import pytest
from helpers import Worker

import hedgerow as hr

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
    """Holds "hold" until `release` is set; records every message it handles."""

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

    def record(self, message: Any) -> Any:
        """Called through a proxy."""
        self.seen.append(message)
        return message


class PlainHeld(Held, pykka.ThreadingActor):
    """pykka's own thread actor (its inbox is a plain queue.Queue)."""


class Target:
    """An actor of one kind holding "hold"; `seen` is what it handled."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.entered, self.release = threading.Event(), threading.Event()
        self.seen: list[Any] = []
        self.ref: Any = None
        self._stop: Callable[[], Any] = lambda: None

    def start(self) -> None:
        """Start it (for ``same-loop``: call inside the asking loop)."""
        args = (self.entered, self.release, self.seen)
        if self.kind.startswith("child"):
            base = hr.Actor if self.kind == "child-thread" else hr.AsyncioActor
            spec = hr.SupervisorSpec([hr.ChildSpec("held", helpers.on(Held, base), args=args)])
            tree = hr.start_tree(spec)
            self.ref, self._stop = tree.lookup("root/held"), tree.stop
            return
        cls: Any = {
            "loop": helpers.on(Held, hr.AsyncioActor),
            "same-loop": helpers.on(Held, hr.AsyncioActor),
            "actor": helpers.on(Held, hr.Actor),
            "pykka": PlainHeld,
        }[self.kind]
        self.ref = cls.start(*args)
        self._stop = self.ref.stop if self.kind != "same-loop" else lambda: None

    async def hold(self) -> None:
        """The actor takes "hold" and keeps it until `release` is set."""
        self.ref.tell("hold")
        assert await asyncio.to_thread(self.entered.wait, WAIT)

    async def finish(self) -> list[Any]:
        """Release it, let it answer one more ask; what it handled."""
        self.release.set()
        assert await hr.ask(self.ref, "after") == "after"
        if self.kind == "same-loop":
            await self.ref.stop(block=False)
        return list(self.seen)

    def stop(self) -> None:
        self.release.set()
        self._stop()


KINDS = ["loop", "same-loop", "actor", "pykka", "child-thread", "child-loop"]
REF_ASK_KINDS = ["loop", "same-loop", "child-thread", "child-loop"]
"""Refs whose own ``ask(block=False)`` takes back (pykka's plain ActorRef's does not)."""


def asker(style: str, ref: Any) -> Callable[[Any], Awaitable[Any]]:
    if style == "hedgerow.ask":
        return lambda message: hr.ask(ref, message)
    if style == "ref.ask":
        return lambda message: ref.ask(message, block=False)
    return lambda message: ref.proxy().record(message)


def run(target: Target, main: Callable[[], Awaitable[Any]]) -> Any:
    async def wrapped() -> Any:
        if target.kind == "same-loop":
            target.start()
        return await main()

    if target.kind != "same-loop":
        target.start()
    try:
        return asyncio.run(wrapped())
    finally:
        target.stop()


async def _cancelled(ask: Callable[[Any], Awaitable[Any]], message: Any) -> asyncio.Future[Any]:
    """A task awaiting ``ask(message)``, cancelled once it awaits."""

    async def asking() -> Any:
        return await ask(message)

    task = asyncio.ensure_future(asking())
    await asyncio.sleep(0)  # the task has sent the message and awaits its answer
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return task


@pytest.mark.parametrize(
    ("kind", "style"),
    [(kind, "hedgerow.ask") for kind in KINDS]
    + [(kind, "ref.ask") for kind in REF_ASK_KINDS]
    + [(kind, "proxy") for kind in REF_ASK_KINDS],
)
def test_a_cancelled_ask_still_queued_is_never_handled(kind, style, switching):
    target = Target(kind)

    async def main() -> list[Any]:
        await target.hold()
        await _cancelled(asker(style, target.ref), "taken back")
        return await target.finish()

    assert run(target, main) == ["hold", "after"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_timeout_takes_the_queued_message_back(kind):
    target = Target(kind)

    async def main() -> list[Any]:
        await target.hold()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01):
                await hr.ask(target.ref, "too late")
        return await target.finish()

    assert run(target, main) == ["hold", "after"]


@pytest.mark.parametrize("kind", ["loop", "same-loop", "actor", "child-thread", "child-loop"])
def test_half_of_many_queued_asks_cancelled_the_rest_handled_in_order(kind, switching):
    target = Target(kind)

    async def main() -> list[Any]:
        await target.hold()
        tasks = [asyncio.ensure_future(hr.ask(target.ref, n)) for n in range(200)]
        await asyncio.sleep(0)  # every task awaits its answer
        for task in tasks[::2]:
            task.cancel()
        await asyncio.wait(tasks[::2])
        seen = await target.finish()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(o, asyncio.CancelledError) for o in outcomes[::2])
        assert outcomes[1::2] == list(range(1, 200, 2))
        return seen

    assert run(target, main) == ["hold", *range(1, 200, 2), "after"]


def test_the_future_of_a_message_taken_back_is_cancelled_for_every_waiter():
    """Another task awaiting the same future, and a thread's get(), get CancelledError
    (nobody will answer it) instead of waiting forever."""
    target = Target("loop")

    async def main() -> list[Any]:
        await target.hold()
        future = hr.ask(target.ref, "taken back")

        async def waiting() -> Any:
            return await future

        other = asyncio.ensure_future(waiting())
        await _cancelled(lambda _: future, None)
        with pytest.raises(asyncio.CancelledError):
            await other
        with pytest.raises(asyncio.CancelledError):
            future.get(timeout=0)
        return await target.finish()

    assert run(target, main) == ["hold", "after"]


@pytest.mark.parametrize("kind", ["same-loop", "child-loop", "actor"])
def test_a_cancelled_ask_already_being_handled_is_answered_to_nobody(kind):
    """The message is the actor's already: it runs to its end, its answer is dropped."""
    target = Target(kind)

    async def main() -> list[Any]:
        task = asyncio.ensure_future(hr.ask(target.ref, "hold"))
        assert await asyncio.to_thread(target.entered.wait, WAIT)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return await target.finish()

    assert run(target, main) == ["hold", "after"]


def test_a_cancelled_ask_waiting_for_room_in_a_full_block_inbox_is_withdrawn():
    """hedgerow.ask into a full ``block`` inbox waits in its queue of deferred sends:
    cancelled there, it is never sent, and it is not a dead letter."""
    entered, release = threading.Event(), threading.Event()
    seen: list[Any] = []
    letters: list[Any] = []
    events = hr.EventStream()
    events.subscribe(
        lambda event: (
            letters.append(event.message) if event.kind is hr.EventKind.DEAD_LETTER else None
        )
    )
    child = hr.ChildSpec(
        "held",
        helpers.on(Held, hr.Actor),
        args=(entered, release, seen),
        max_inbox=1,
        inbox_overflow="block",
        inbox_timeout=WAIT,
    )
    tree = hr.start_tree(hr.SupervisorSpec([child]), events=events)
    ref = tree.lookup("root/held")
    try:

        async def main() -> None:
            ref.tell("hold")
            assert await asyncio.to_thread(entered.wait, WAIT)
            ref.tell("filler")  # the inbox is full now
            await _cancelled(lambda message: hr.ask(ref, message), "waiting")
            release.set()
            assert await hr.ask(ref, "after") == "after"

        asyncio.run(main())
    finally:
        release.set()
        tree.stop()
    assert seen == ["hold", "filler", "after"]
    assert letters == []


class SlowStart(hr.Actor):
    """Its on_start waits until released: its supervisor waits with it."""

    def __init__(self, entered: threading.Event, release: threading.Event) -> None:
        super().__init__()
        self.entered = entered
        self.release = release

    def on_start(self) -> None:
        self.entered.set()
        self.release.wait(WAIT)


def test_a_cancelled_tree_call_still_queued_never_runs():
    """`await tree.start_child(spec)` cancelled while its supervisor is busy: the
    call is taken back, and the child is never started."""
    entered, release = threading.Event(), threading.Event()

    async def main() -> list[str]:
        async with hr.open_tree(hr.SupervisorSpec([])) as tree:
            slow = asyncio.ensure_future(
                tree.start_child(hr.ChildSpec("slow", SlowStart, args=(entered, release)))
            )
            assert await asyncio.to_thread(entered.wait, WAIT)  # the supervisor waits
            late = asyncio.ensure_future(tree.start_child(hr.ChildSpec("late", Worker)))
            await asyncio.sleep(0)  # its call is queued behind slow's
            late.cancel()
            with pytest.raises(asyncio.CancelledError):
                await late
            release.set()
            await slow
            return [c.id for c in await tree.which_children()]

    try:
        assert asyncio.run(main()) == ["slow"]
    finally:
        release.set()
