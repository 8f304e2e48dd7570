"""`hedgerow.ask` and ``await ref.ask(msg, block=False)``: an actor's answer awaited
without blocking the running loop, whatever the actor's runtime."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pykka
import pytest
from helpers import Worker

import hedgerow as hr

pytestmark = pytest.mark.timeout(30)

WAIT = 10.0


@pytest.fixture(params=["default", "tiny"])
def switching(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test also runs with the interpreter switching threads as often as it can."""
    previous = sys.getswitchinterval()
    if request.param == "tiny":
        sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)


class Gate(hr.Actor):
    """Answers once the loop has released it: a blocked loop never would."""

    def __init__(self, entered: threading.Event, release: threading.Event) -> None:
        super().__init__()
        self.entered = entered
        self.release = release

    def on_receive(self, message: Any) -> Any:
        if message == "gate":
            self.entered.set()
            if not self.release.wait(WAIT):
                return "the loop never ran while I answered"
            return "released"
        if message == "fail":
            raise ValueError("asked to fail")
        return message


class PlainGate(pykka.ThreadingActor):
    """pykka's own thread actor, not hedgerow's."""

    def __init__(self, entered: threading.Event, release: threading.Event) -> None:
        super().__init__()
        self.entered = entered
        self.release = release

    def on_receive(self, message: Any) -> Any:
        if message == "gate":
            self.entered.set()
            return "released" if self.release.wait(WAIT) else "blocked"
        if message == "fail":
            raise ValueError("asked to fail")
        return message


class LoopGate(hr.AsyncioActor):
    """An event-loop actor (on hedgerow's loop thread) that awaits the release."""

    def __init__(self, entered: threading.Event, release: threading.Event) -> None:
        super().__init__()
        self.entered = entered
        self.release = release

    async def on_receive(self, message: Any) -> Any:
        if message == "gate":
            self.entered.set()
            released = await asyncio.to_thread(self.release.wait, WAIT)
            return "released" if released else "blocked"
        if message == "fail":
            raise ValueError("asked to fail")
        return message


def _start(kind: str, entered: threading.Event, release: threading.Event) -> tuple[Any, Any]:
    """A ref of the given kind, and what stops it."""
    if kind == "child":
        spec = hr.SupervisorSpec([hr.ChildSpec("gate", Gate, args=(entered, release))])
        tree = hr.start_tree(spec)
        return tree.lookup("root/gate"), tree.stop
    cls: type[pykka.Actor] = {"actor": Gate, "pykka": PlainGate, "loop": LoopGate}[kind]
    ref = cls.start(entered, release)
    return ref, ref.stop


KINDS = ["child", "actor", "pykka", "loop"]


async def _released_while_asked(
    ask: Callable[[], Any], entered: threading.Event, release: threading.Event
) -> Any:
    """Ask; while the actor holds the answer, the loop must run a thread hand-off."""
    asking = asyncio.ensure_future(ask())
    assert await asyncio.to_thread(entered.wait, WAIT)  # needs the loop to run
    release.set()
    return await asking


@pytest.mark.parametrize("kind", KINDS)
def test_ask_suspends_the_task_only(kind, switching):
    entered, release = threading.Event(), threading.Event()
    ref, stop = _start(kind, entered, release)
    try:

        async def main() -> Any:
            return await _released_while_asked(lambda: hr.ask(ref, "gate"), entered, release)

        assert asyncio.run(main()) == "released"
    finally:
        stop()


def test_a_childs_ask_future_is_awaited_without_blocking_the_loop(switching):
    """``await ref.ask(msg, block=False)`` on a ChildRef: its future is an AsyncioFuture.

    (Before, it was pykka's ThreadingFuture, whose await blocks the loop: the
    actor saw no release and answered "the loop never ran while I answered".)"""
    entered, release = threading.Event(), threading.Event()
    ref, stop = _start("child", entered, release)
    try:
        future = ref.ask("ping", block=False)
        assert isinstance(future, hr.AsyncioFuture)
        assert future.get(timeout=WAIT) == "ping"  # a thread still blocks as before

        async def main() -> Any:
            return await _released_while_asked(
                lambda: ref.ask("gate", block=False), entered, release
            )

        assert asyncio.run(main()) == "released"
    finally:
        stop()


@pytest.mark.parametrize("kind", KINDS)
def test_ask_raises_what_the_handler_raises_and_the_actor_goes_on(kind):
    ref, stop = _start(kind, threading.Event(), threading.Event())
    try:

        async def main() -> Any:
            with pytest.raises(ValueError, match="asked to fail"):
                await hr.ask(ref, "fail")
            return await hr.ask(ref, "after")

        assert asyncio.run(main()) == "after"
    finally:
        stop()


@pytest.mark.parametrize("kind", ["actor", "pykka", "loop"])
def test_asking_a_stopped_actor_raises_actor_dead(kind):
    ref, stop = _start(kind, threading.Event(), threading.Event())
    stop()

    async def main() -> None:
        with pytest.raises(pykka.ActorDeadError, match="not found"):
            await hr.ask(ref, "anyone?")

    asyncio.run(main())


def test_asking_a_child_gone_for_good_raises_dead_letter():
    spec = hr.SupervisorSpec([hr.ChildSpec("w", Worker, restart="never")])
    tree = hr.start_tree(spec)
    ref = tree.lookup("root/w")
    tree.stop()

    async def main() -> None:
        with pytest.raises(hr.DeadLetterError):
            await hr.ask(ref, "late")
        with pytest.raises(hr.DeadLetterError):
            await ref.ask("late", block=False)

    asyncio.run(main())


@pytest.mark.parametrize("kind", KINDS)
def test_cancelling_the_asking_task_leaves_the_actor_answering_to_nobody(kind, switching):
    """The task is cancelled mid-ask: it gets CancelledError at once; the actor
    still handles the message, its answer is dropped, and it goes on."""
    entered, release = threading.Event(), threading.Event()
    ref, stop = _start(kind, entered, release)
    try:

        async def main() -> Any:
            asking = asyncio.ensure_future(hr.ask(ref, "gate"))
            assert await asyncio.to_thread(entered.wait, WAIT)
            asking.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asking
            release.set()
            return await hr.ask(ref, "next")  # answered after the dropped one

        assert asyncio.run(main()) == "next"
    finally:
        stop()


def test_a_timeout_bounds_the_ask_as_any_await():
    """The actor has the message (one it has not taken yet is taken back by the
    timeout: tests/asyncio/test_ask_cancel.py)."""
    entered, release = threading.Event(), threading.Event()
    ref, stop = _start("child", entered, release)
    try:

        async def main() -> Any:
            asked = hr.ask(ref, "gate")
            assert await asyncio.to_thread(entered.wait, WAIT)
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0):
                    await asked
            release.set()
            return await hr.ask(ref, "next")

        assert asyncio.run(main()) == "next"
    finally:
        stop()


def test_a_cancelled_await_does_not_keep_its_waiter():
    """Awaiting one future many times over, each cancelled, keeps no waiter."""
    future: hr.AsyncioFuture[str] = hr.AsyncioFuture()

    async def main() -> str:
        for _ in range(100):
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0):
                    await future
        assert future._hr_waiters in (None, [])
        threading.Thread(target=future.set, args=("set",)).start()
        return await future

    assert asyncio.run(main()) == "set"


def test_an_answer_to_a_loop_that_has_closed_is_dropped_quietly(caplog):
    """The asker's loop ends before the answer comes: the answering thread is not hurt."""
    entered, release = threading.Event(), threading.Event()
    ref, stop = _start("actor", entered, release)
    try:

        async def main() -> None:
            asking = asyncio.ensure_future(hr.ask(ref, "gate"))
            assert await asyncio.to_thread(entered.wait, WAIT)
            assert not asking.done()  # left to asyncio.run, which cancels it

        asyncio.run(main())
        release.set()
        assert ref.ask("still here", timeout=WAIT) == "still here"
    finally:
        stop()
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


def test_ask_into_a_full_blocking_inbox_waits_for_room_off_the_loop():
    """A bounded inbox with overflow "block": the asker waits for room without
    holding the loop (``tell`` would hold it, as it holds a thread)."""
    entered, release = threading.Event(), threading.Event()
    spec = hr.SupervisorSpec(
        [
            hr.ChildSpec(
                "gate",
                Gate,
                args=(entered, release),
                max_inbox=1,
                inbox_overflow="block",
                inbox_timeout=WAIT,
            )
        ]
    )
    tree = hr.start_tree(spec)
    ref = tree.lookup("root/gate")
    try:

        async def main() -> list[Any]:
            first = asyncio.ensure_future(hr.ask(ref, "gate"))  # in hand
            assert await asyncio.to_thread(entered.wait, WAIT)
            second = asyncio.ensure_future(hr.ask(ref, "queued"))  # fills the inbox
            third = asyncio.ensure_future(hr.ask(ref, "waits for room"))
            await asyncio.sleep(0)  # let both send (the third waits in a thread)
            release.set()
            return list(await asyncio.gather(first, second, third))

        assert asyncio.run(main()) == ["released", "queued", "waits for room"]
    finally:
        tree.stop()


def test_a_waiter_whose_loop_has_closed_is_skipped_by_the_setter():
    future: hr.AsyncioFuture[int] = hr.AsyncioFuture()
    loop = asyncio.new_event_loop()
    future._hr_add_waiter(loop.create_future())  # as an await suspended on that loop
    loop.close()
    setter = threading.Thread(target=future.set, args=(1,))
    setter.start()
    setter.join(WAIT)
    assert future.get(timeout=0) == 1


@pytest.mark.parametrize("not_a_ref", ["root/a", None, threading.Event()])
def test_asking_what_is_not_a_ref_is_a_type_error_that_says_so(not_a_ref):
    """(It was an AttributeError from deep inside: 'str' object has no attribute 'is_alive'.)"""

    async def main() -> None:
        with pytest.raises(TypeError, match=r"hedgerow\.ask needs an actor's ref"):
            await hr.ask(not_a_ref, "hello")

    asyncio.run(main())


class Recording(Gate):
    """A Gate that records the order in which messages reach it."""

    def __init__(self, entered: threading.Event, release: threading.Event, seen: list[Any]):
        super().__init__(entered, release)
        self.seen = seen

    def on_receive(self, message: Any) -> Any:
        self.seen.append(message)
        return super().on_receive(message)


def test_asks_into_a_full_blocking_inbox_keep_their_order(switching):
    entered, release = threading.Event(), threading.Event()
    seen: list[Any] = []
    spec = hr.SupervisorSpec(
        [
            hr.ChildSpec(
                "gate",
                Recording,
                args=(entered, release, seen),
                max_inbox=2,
                inbox_overflow="block",
                inbox_timeout=WAIT,
            )
        ]
    )
    tree = hr.start_tree(spec)
    ref = tree.lookup("root/gate")
    try:

        async def main() -> list[Any]:
            first = hr.ask(ref, "gate")
            assert await asyncio.to_thread(entered.wait, WAIT)
            rest = [hr.ask(ref, n) for n in range(20)]  # 18 of them wait for room
            release.set()
            return list(await asyncio.gather(first, *rest))

        assert asyncio.run(main()) == ["released", *range(20)]
        assert seen == ["gate", *range(20)]
    finally:
        tree.stop()


@pytest.mark.parametrize("kind", KINDS)
def test_many_asks_in_flight_half_of_them_cancelled(kind, switching, caplog):
    """500 asks at once; every other asking task is cancelled while it awaits: the
    rest get their own answers, and nothing is logged as an error."""
    ref, stop = _start(kind, threading.Event(), threading.Event())
    try:

        async def main() -> list[Any]:
            tasks = [asyncio.ensure_future(hr.ask(ref, n)) for n in range(500)]
            await asyncio.sleep(0)  # every task is awaiting its answer (or has it)
            cancelled = [task.cancel() for task in tasks[::2]]
            done = await asyncio.gather(*tasks, return_exceptions=True)
            evens = zip(done[::2], cancelled, range(0, 500, 2), strict=True)
            for outcome, was_cancelled, n in evens:
                # A task whose answer had come before the cancel keeps it.
                if was_cancelled:
                    assert isinstance(outcome, asyncio.CancelledError)
                else:
                    assert outcome == n
            return done[1::2]

        assert asyncio.run(main()) == list(range(1, 500, 2))
        assert ref.ask("after", timeout=WAIT) == "after"
    finally:
        stop()
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


def test_a_thread_actors_own_asks_and_proxies_are_awaited_without_blocking_the_loop(switching):
    """``await ref.ask(msg, block=False)`` and ``await ref.proxy().method()`` on an
    unsupervised hedgerow.Actor's ref: their futures are AsyncioFutures too.

    (Before, pykka's ThreadingFuture: its await blocked the loop, and the actor
    answered "the loop never ran while I answered".)"""
    entered, release = threading.Event(), threading.Event()
    ref, stop = _start("actor", entered, release)
    try:
        assert isinstance(ref.ask("ping", block=False), hr.AsyncioFuture)

        async def main() -> list[Any]:
            by_ask = await _released_while_asked(
                lambda: ref.ask("gate", block=False), entered, release
            )
            entered.clear()
            release.clear()
            by_proxy = await _released_while_asked(
                lambda: ref.proxy().on_receive("gate"), entered, release
            )
            return [by_ask, by_proxy]

        assert asyncio.run(main()) == ["released", "released"]
    finally:
        stop()


def test_a_bounded_ask_times_out_is_cancellable_and_keeps_no_waiter():
    """`ask_within` (every awaited call of a tree): its own timer, not asyncio.timeout."""
    from hedgerow.actors._ask import AskTimeout, ask_within  # noqa: PLC0415 - private

    entered, release = threading.Event(), threading.Event()
    ref, stop = _start("child", entered, release)
    try:

        async def main() -> Any:
            with pytest.raises(AskTimeout, match=r"\(slow\) did not answer within 0\.01 seconds"):
                await ask_within(ref, "gate", 0.01, "slow")
            task = asyncio.ensure_future(ask_within(ref, "queued", WAIT))
            await asyncio.sleep(0)  # the task now awaits its answer
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            timers = asyncio.get_running_loop()._scheduled  # type: ignore[attr-defined]
            assert all(timer.cancelled() for timer in timers)  # its timer was cancelled
            assert await asyncio.to_thread(entered.wait, WAIT)
            release.set()
            return await ask_within(ref, "next", WAIT)

        assert asyncio.run(main()) == "next"
    finally:
        stop()
