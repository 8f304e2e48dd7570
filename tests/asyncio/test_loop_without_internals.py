"""Event-loop actors run on an asyncio loop that has no ``_ready`` attribute.

hedgerow may read asyncio's private ready queue (``loop._ready``) as a hint;
a third-party loop (uvloop, say) has no such attribute. Here a selector loop
hides it from everything but asyncio itself: actors started on it, alone and
in a tree (a loop supervisor's calls included), answer asks, tells and proxy
calls, and stop.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import Any

import pytest

import hedgerow as hr
from hedgerow.testing import VirtualClock

pytestmark = pytest.mark.timeout(30)


class HiddenReady(asyncio.SelectorEventLoop):
    """A selector loop whose ``_ready`` only asyncio's own modules can see."""

    looked: int = 0

    def __getattribute__(self, name: str) -> Any:
        if name == "_ready":
            caller = sys._getframe(1).f_globals.get("__name__", "")
            if not caller.startswith("asyncio"):
                type(self).looked += 1
                raise AttributeError(name)
        return super().__getattribute__(name)


class Echo(hr.AsyncioActor):
    def __init__(self, told: asyncio.Event | None = None) -> None:
        super().__init__()
        self.told = told

    async def on_receive(self, message: Any) -> Any:
        await asyncio.sleep(0)
        if message == "tell" and self.told is not None:
            self.told.set()
        return ("echo", message)

    def double(self, n: int) -> int:
        return 2 * n


class Plain(hr.AsyncioActor):
    def on_receive(self, message: Any) -> Any:
        return ("plain", message)


def run(main: Any) -> Any:
    with asyncio.Runner(loop_factory=HiddenReady) as runner:
        return runner.run(main())


def test_the_loop_hides_ready_from_outside_asyncio():
    async def main() -> None:
        loop = asyncio.get_running_loop()
        assert not hasattr(loop, "_ready")
        await asyncio.sleep(0)  # asyncio itself still runs it

    run(main)


@pytest.mark.parametrize("cls", [Echo, Plain])
def test_an_actor_on_the_running_loop_answers_and_stops(cls):
    async def main() -> None:
        ref = cls.start()
        assert (await hr.ask(ref, "hi"))[1] == "hi"
        assert (await ref.ask("again", block=False))[1] == "again"
        ref.tell("tell")
        await hr.tell(ref, "tell too")
        if cls is Echo:
            assert await ref.proxy().double(21) == 42
        await ref.stop(block=False)
        assert not ref.is_alive()

    run(main)


@pytest.mark.parametrize("supervisors", ["thread", "loop"])
def test_a_tree_on_the_running_loop_answers_updates_and_stops(supervisors):
    async def main() -> None:
        told = asyncio.Event()
        spec = hr.SupervisorSpec(
            [hr.ChildSpec("echo", Echo, args=(told,)), hr.ChildSpec("plain", Plain)],
            name="svc",
            runtime=supervisors,
        )
        async with hr.open_tree(spec, use_running_loop=True) as tree:
            echo = tree.lookup("svc/echo")
            assert await hr.ask(echo, "hi") == ("echo", "hi")
            echo.tell("tell")
            await asyncio.wait_for(told.wait(), 10)
            assert await echo.proxy().double(2) == 4
            assert [c.id for c in await tree.which_children()] == ["echo", "plain"]
            await tree.stop_child("plain")
            await tree.restart_child("plain")
            assert await hr.ask(tree.lookup("svc/plain"), 1) == ("plain", 1)
            new = hr.SupervisorSpec(
                [hr.ChildSpec("echo", Echo, args=(told,))], name="svc", runtime=supervisors
            )
            plan = await tree.update_tree(new)
            assert plan.summary() == "svc/plain removed"
        assert tree.reason == hr.SHUTDOWN

    HiddenReady.looked = 0
    run(main)
    if supervisors == "loop":  # a call to the loop supervisor looked for it (then went by message)
        assert HiddenReady.looked > 0


@pytest.fixture
def hidden_loop() -> Any:
    """A `HiddenReady` loop running in a thread of its own."""
    loop = HiddenReady()
    thread = threading.Thread(target=loop.run_forever, name="hidden-ready-loop")
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def test_autojump_goes_on_while_an_actor_lives_on_such_a_loop(hidden_loop):
    """The test kit watches the loops of event-loop actors through asyncio's
    internals; it cannot on this one, so it judges that loop idle by its actors
    (none busy, their inboxes empty). (The autojump thread died on a TypeError:
    the timer never ran.)"""

    async def start() -> Any:
        return Plain.start()

    ref = asyncio.run_coroutine_threadsafe(start(), hidden_loop).result(10)
    try:
        assert ref.ask("hi", timeout=10) == ("plain", "hi")
        with VirtualClock(autojump_threshold=0) as clock:
            fired = threading.Event()
            clock.call_later(5, fired.set)
            assert fired.wait(10)
            assert clock.now() == 5
        with pytest.raises(TypeError, match="not one of asyncio's selector event loops"):
            VirtualClock().drive(hidden_loop)
    finally:
        ref.stop()
