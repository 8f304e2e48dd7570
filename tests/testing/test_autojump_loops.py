"""Autojump and the asyncio loops that read a `VirtualClock`.

`VirtualClock.now` and `call_later` note the running loop they are called
from; autojump watches each noted loop while it hosts actors' work
(`hosts_actors`), registered or not, so time does not jump while such a loop
still has ready work. A noted loop that hosts no actor's work is not watched:
one that never settles (a task of the test's own) must not keep time still
for ever (tests/testing/test_autojump_stopping_attack.py has the loop
supervisor that made this needed).
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

import pykka
import pytest

import hedgerow as hr
from hedgerow.actors import _registry
from hedgerow.testing import VirtualClock
from hedgerow.testing._loop_clock import hosts_actors

if TYPE_CHECKING:
    from collections.abc import Coroutine, Iterator

pytestmark = pytest.mark.timeout(60)

WAIT = 10.0


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An asyncio loop of the test's own, running in a thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield loop
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(WAIT)
        loop.close()


def on(loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run_coroutine_threadsafe(coroutine, loop).result(WAIT)


class Spinning(hr.AsyncioActor):
    """A handler that keeps its loop's ready queue full until released, reading
    the clock (as a supervisor reads its own)."""

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__()
        self.clock = clock

    async def on_receive(self, message: Any) -> Any:
        entered, release = message
        self.clock.now()
        entered.set()
        while not release.is_set():  # noqa: ASYNC110 - busy on purpose: ready work
            await asyncio.sleep(0)
        return "done"


async def _spin_for_ever(stop: threading.Event) -> None:
    while not stop.is_set():  # noqa: ASYNC110 - a loop that never settles
        await asyncio.sleep(0)


def test_a_loop_that_reads_the_clock_is_noted_and_hosts_actors_only_while_they_work(loop):
    with VirtualClock() as clock:

        async def read() -> None:
            clock.now()

        on(loop, read())
        assert clock._noted[id(loop)]() is loop
        assert not hosts_actors(loop)

        async def start() -> Any:
            return Spinning.start(clock)

        ref = on(loop, start())
        entered, release = threading.Event(), threading.Event()
        try:
            answer = ref.ask((entered, release), block=False)
            assert entered.wait(WAIT)
            assert hosts_actors(loop)
        finally:
            release.set()
        assert answer.get(timeout=WAIT) == "done"
        ref.stop()
        assert not hosts_actors(loop)


def test_time_waits_for_an_unregistered_actors_work_on_a_noted_loop(loop):
    """An actor out of pykka's registry (as a supervisor stopping its children),
    busy on a loop the clock does not drive: no jump until it is done."""
    with VirtualClock(autojump_threshold=0) as clock:

        async def start() -> Any:
            return Spinning.start(clock)

        ref = on(loop, start())
        entered, release = threading.Event(), threading.Event()
        fired = threading.Event()
        try:
            answer = ref.ask((entered, release), block=False)
            assert entered.wait(WAIT)
            _registry.unregister(ref)  # only the noted loop shows its work now
            assert ref not in pykka.ActorRegistry.get_all()
            clock.call_later(1.0, fired.set)
            assert not fired.wait(0.2)  # a bounded wait for what must not happen
            assert clock.now() == 0.0
        finally:
            release.set()
        assert answer.get(timeout=WAIT) == "done"
        assert fired.wait(WAIT)
        assert clock.now() == 1.0
        ref.stop()


def test_a_noted_loop_that_never_settles_but_hosts_no_actor_does_not_stop_time(loop):
    """The reason autojump does not watch every loop that ever read the clock,
    or ever hosted actors."""
    with VirtualClock(autojump_threshold=0) as clock:

        async def start() -> Any:
            return Spinning.start(clock)

        ref = on(loop, start())
        entered, release = threading.Event(), threading.Event()
        release.set()
        assert ref.ask((entered, release), timeout=WAIT) == "done"  # it read the clock
        ref.stop()
        stop = threading.Event()
        spinning = asyncio.run_coroutine_threadsafe(_spin_for_ever(stop), loop)
        try:
            fired = threading.Event()
            clock.call_later(1.0, fired.set)
            assert fired.wait(WAIT)
            assert clock.now() == 1.0
        finally:
            stop.set()
            spinning.result(WAIT)
