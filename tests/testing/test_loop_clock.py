"""The virtual clock on asyncio loops: event-loop actors' own timers are virtual too,
and autojump counts a loop with only timers pending as idle, never one at work."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from typing import Any

import pytest

import hedgerow as hr
from hedgerow.actors._loop import hedgerow_loop
from hedgerow.testing import VirtualClock
from hedgerow.testing._loop_clock import LoopWatch

QUIET = 0.3
"""Real seconds a test waits for an event that must not happen (a jump that
would be wrong); with autojump at threshold 0 a wrong jump comes within about
a millisecond."""


class Sleeper(hr.AsyncioActor):
    """Sleeps the asked seconds on its loop; answers the loop's time before and after."""

    async def on_receive(self, message: Any) -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        began = loop.time()
        await asyncio.sleep(message)
        return began, loop.time()


class Echo(hr.AsyncioActor):
    def on_receive(self, message: Any) -> Any:
        return message


@pytest.fixture
def jumping() -> Any:
    with VirtualClock(autojump_threshold=0) as clock:
        clock.drive()
        yield clock


def test_an_event_loop_actor_alive_does_not_stop_autojump() -> None:
    """It stopped it for good: an event-loop actor has no thread of its own, and
    autojump took it for an actor always at work (the timer never ran)."""
    echo = Echo.start()
    try:
        with VirtualClock(autojump_threshold=0) as clock:
            fired = threading.Event()
            clock.call_later(5, fired.set)
            assert fired.wait(10)
            assert clock.now() == 5
    finally:
        echo.stop()


def test_asyncio_sleep_in_a_handler_is_virtual_with_autojump(jumping: VirtualClock) -> None:
    sleeper = Sleeper.start()
    try:
        began = time.perf_counter()
        assert sleeper.ask(3600.0, timeout=10) == (0.0, 3600.0)
        assert sleeper.ask(0.25, timeout=10) == (3600.0, 3600.25)
        assert time.perf_counter() - began < 5
        assert jumping.now() == 3600.25
        assert jumping.jumps == 2
    finally:
        sleeper.stop()


def test_advance_moves_a_sleeping_handler(virtual_clock: VirtualClock) -> None:
    virtual_clock.drive()
    sleeper = Sleeper.start()
    try:
        answer = sleeper.ask(5.0, block=False)
        assert virtual_clock.wait_for_timer() == 5.0
        assert virtual_clock.pending() == [5.0]
        virtual_clock.advance(4.0)
        assert virtual_clock.pending() == [5.0]
        virtual_clock.advance(1.0)
        assert answer.get(timeout=10) == (0.0, 5.0)
    finally:
        sleeper.stop()
        virtual_clock.close()


def test_loop_and_clock_timers_run_in_time_order(jumping: VirtualClock) -> None:
    order: list[tuple[str, float]] = []
    for when in (1.0, 3.0, 5.0):
        jumping.call_later(when, lambda w=when: order.append(("clock", w)))

    class Napper(hr.AsyncioActor):
        async def on_receive(self, message: Any) -> None:
            for delay in message:
                await asyncio.sleep(delay)
                order.append(("loop", jumping.now()))

    napper = Napper.start()
    try:
        napper.ask([2.0, 2.0, 2.0], timeout=10)  # at 2, 4, 6
        assert order == [
            ("clock", 1.0),
            ("loop", 2.0),
            ("clock", 3.0),
            ("loop", 4.0),
            ("clock", 5.0),
            ("loop", 6.0),
        ]
    finally:
        napper.stop()


def test_a_pending_timer_keeps_its_remaining_delay_across_drive_and_close() -> None:
    loop = hedgerow_loop()
    ran = threading.Event()
    handle = asyncio.run_coroutine_threadsafe(_call_later(loop, 3600.0, ran.set), loop).result(10)
    clock = VirtualClock(start=100.0)
    clock.drive(loop)
    try:
        (when,) = clock.pending()
        assert 100.0 + 3599.0 < when <= 100.0 + 3600.0
        assert loop.time() == 100.0
        clock.advance(when - 100.0)
        assert ran.wait(10)
        again = asyncio.run_coroutine_threadsafe(_call_later(loop, 60.0, ran.set), loop).result(10)
        clock.advance(10.0)
    finally:
        clock.close()
    assert abs(loop.time() - time.monotonic()) < 1.0  # real again
    assert 49.0 < again.when() - loop.time() <= 50.0
    again.cancel()
    handle.cancel()


async def _call_later(
    loop: asyncio.AbstractEventLoop, delay: float, fn: Any
) -> asyncio.TimerHandle:
    return loop.call_later(delay, fn)


def test_one_clock_drives_a_loop_at_a_time() -> None:
    with VirtualClock() as first, VirtualClock() as second:
        first.drive()
        first.drive()  # again: nothing changes
        with pytest.raises(RuntimeError, match=r"driven by .* already: close that clock first"):
            second.drive()
        first.undrive()
        second.drive()
    assert abs(hedgerow_loop().time() - time.monotonic()) < 1.0


def test_a_loop_that_is_not_a_selector_loop_is_refused_with_a_clear_error() -> None:
    class Other:
        pass

    with pytest.raises(TypeError, match="not one of asyncio's selector event loops"):
        LoopWatch(Other())  # type: ignore[arg-type]


def test_the_tests_own_running_loop_can_be_driven() -> None:
    async def main() -> tuple[float, Any]:
        with VirtualClock(autojump_threshold=0) as clock:
            clock.drive(asyncio.get_running_loop())
            sleeper = Sleeper.start()  # on this loop
            try:
                await asyncio.sleep(30)
                answer = await sleeper.ask(12.0, block=False)
            finally:
                sleeper.stop(block=False)
            return clock.now(), answer

    assert asyncio.run(main()) == (42.0, (30.0, 42.0))


# -- autojump never jumps past real work ------------------------------------------


class Spinner(hr.Actor):
    """A thread actor doing real (CPU) work until the test releases it."""

    def __init__(self, working: threading.Event, release: threading.Event) -> None:
        super().__init__()
        self.working = working
        self.release = release

    def on_receive(self, message: Any) -> Any:
        self.working.set()
        while not self.release.is_set():
            pass
        return message


def _spin(working: threading.Event, release: threading.Event) -> str:
    working.set()
    while not release.is_set():
        pass
    return "done"


def test_no_jump_while_a_loop_actor_awaits_a_thread_actor_at_work(
    jumping: VirtualClock,
) -> None:
    working, release = threading.Event(), threading.Event()
    spinner = Spinner.start(working, release)

    class Asker(hr.AsyncioActor):
        async def on_receive(self, message: Any) -> Any:
            answer = await asyncio.wait_for(spinner.ask(message, block=False), timeout=5)
            return answer, asyncio.get_running_loop().time()

    asker = Asker.start()
    jumped = threading.Event()
    jumping.call_later(1.0, jumped.set)
    try:
        answer = asker.ask("work", block=False)
        assert working.wait(10)
        assert not jumped.wait(QUIET)
        release.set()
        assert answer.get(timeout=10) == ("work", 0.0)
        assert jumped.wait(10)
    finally:
        release.set()
        asker.stop()
        spinner.stop()


def test_no_jump_while_a_loop_actor_awaits_work_in_the_default_executor(
    jumping: VirtualClock,
) -> None:
    working, release = threading.Event(), threading.Event()

    class Offloader(hr.AsyncioActor):
        async def on_receive(self, message: Any) -> Any:
            loop = asyncio.get_running_loop()
            result = await asyncio.wait_for(asyncio.to_thread(_spin, working, release), 5)
            return result, loop.time()

    offloader = Offloader.start()
    jumped = threading.Event()
    jumping.call_later(1.0, jumped.set)
    try:
        answer = offloader.ask("go", block=False)
        assert working.wait(10)
        assert not jumped.wait(QUIET)
        release.set()
        assert answer.get(timeout=10) == ("done", 0.0)
        assert jumped.wait(10)
    finally:
        release.set()
        offloader.stop()


def test_no_jump_while_a_handler_holds_the_loop_and_advance_meanwhile(
    jumping: VirtualClock,
) -> None:
    working, release = threading.Event(), threading.Event()

    class Busy(hr.AsyncioActor):
        async def on_receive(self, message: Any) -> Any:
            loop = asyncio.get_running_loop()
            began = loop.time()
            _spin(working, release)  # holds the loop: nothing else runs on it
            middle = loop.time()
            await asyncio.sleep(5)
            return began, middle, loop.time()

    busy = Busy.start()
    jumped = threading.Event()
    jumping.call_later(1.0, jumped.set)
    try:
        answer = busy.ask("go", block=False)
        assert working.wait(10)
        assert not jumped.wait(QUIET)
        jumping.advance(2.0)  # by hand, while the handler runs: the timer at 1 runs
        assert jumped.is_set()
        release.set()
        assert answer.get(timeout=10) == (0.0, 2.0, 7.0)
    finally:
        release.set()
        busy.stop()


def test_autojump_waits_for_a_loop_actor_that_awaits_a_plain_future(
    jumping: VirtualClock,
) -> None:
    """A loop actor awaiting a future that only the test resolves is idle (as a
    thread actor blocked on an event the test sets): its own timeout fires in
    virtual time, and the loop's time is exactly the timeout."""

    class Waiter(hr.AsyncioActor):
        async def on_receive(self, message: Any) -> Any:
            loop = asyncio.get_running_loop()
            never = loop.create_future()
            try:
                await asyncio.wait_for(never, timeout=message)
            except TimeoutError:
                return loop.time()
            return None

    waiter = Waiter.start()
    try:
        assert waiter.ask(math.pi, timeout=10) == math.pi
    finally:
        waiter.stop()
