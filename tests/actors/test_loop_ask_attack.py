"""Attacks on the faster loop-to-loop ask (ffce93d): AsyncioFuture without __init__,
its waiters' lock, the inline set/await paths, LoopActorRef.ask's inline put."""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import hedgerow as hr
import hedgerow.actors._async_future as async_future_module
from hedgerow.actors._async_future import AsyncioFuture

pytestmark = pytest.mark.timeout(60)

WAIT = 10.0


@pytest.fixture
def tiny_switch() -> Iterator[None]:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)


class AsksItself(hr.AsyncioActor):
    """Its handler of "outer" awaits an ask of its own ref."""

    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how

    async def on_receive(self, message: Any) -> Any:
        if message == "outer":
            if self.how == "hedgerow.ask":
                return await hr.ask(self.actor_ref, "inner")
            return await self.actor_ref.ask("inner", block=False)
        return message


@pytest.mark.parametrize("how", ["hedgerow.ask", "ref.ask"])
def test_a_handler_awaiting_an_ask_of_its_own_ref_is_told_not_left_waiting(how):
    ref = AsksItself.start(how)
    try:
        future = ref.ask("outer", block=False)
        # Not an answer "inner" (it cannot come: the actor is in this very handler):
        # an error saying so. With the bug: no answer at all (a pykka.Timeout here).
        with pytest.raises(RuntimeError, match="own"):
            future.get(timeout=2.0)
        # The inner ask was not left queued: the next message is the next handled.
        assert ref.ask("next", timeout=WAIT) == "next"
    finally:
        # With the bug the handler waits for ever (a stop would queue behind it): kill it.
        ref.actor_inbox._actor._hr_kill()
        assert ref.actor_stopped.wait(WAIT)


class AskerLoop:
    """An asyncio loop running in a thread of its own."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(WAIT)
        self.loop.close()


def _expected(i: int) -> tuple[str, int]:
    return ("error", i) if i % 3 == 0 else ("value", i)


def _got_by_get(future: AsyncioFuture[int]) -> tuple[str, int]:
    try:
        return "value", future.get(timeout=WAIT)
    except ValueError as error:
        return "error", error.args[0]


async def _got_by_await(future: AsyncioFuture[int]) -> tuple[str, int]:
    try:
        return "value", await future
    except ValueError as error:
        return "error", error.args[0]


def test_set_races_waiters_added_from_threads_and_loops(tiny_switch):
    """Futures set by one thread while, at the same moment, two loops' tasks await
    them and two threads block in get(): every waiter wakes with the outcome (no
    wake-up lost between a waiter's adding and the setter's look)."""
    count = 3000
    futures: list[AsyncioFuture[int]] = [AsyncioFuture() for _ in range(count)]
    expected = [_expected(i) for i in range(count)]
    go = threading.Barrier(5)

    def setter() -> None:
        go.wait(WAIT)
        for i, future in enumerate(futures):
            if i % 3 == 0:
                future.set_exception((ValueError, ValueError(i), None))
            else:
                future.set(i)

    def getter() -> list[tuple[str, int]]:
        go.wait(WAIT)
        return [_got_by_get(future) for future in futures]

    async def awaiting() -> list[tuple[str, int]]:
        await asyncio.to_thread(go.wait, WAIT)
        return [await _got_by_await(future) for future in futures]

    loops = [AskerLoop(), AskerLoop()]
    try:
        runs = [asyncio.run_coroutine_threadsafe(awaiting(), asker.loop) for asker in loops]
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            got = [pool.submit(getter), pool.submit(getter)]
            pool.submit(setter).result(WAIT * 3)
            for each in got:
                assert each.result(WAIT * 3) == expected
        for run in runs:
            assert run.result(WAIT * 3) == expected
    finally:
        for asker in loops:
            asker.close()


class Echo(hr.AsyncioActor):
    def on_receive(self, message: Any) -> Any:
        return message


class BlocksOn(hr.AsyncioActor):
    """Blocks its loop thread on ``hr.ask(ref, "x").get(timeout)``: must be refused
    when `ref`'s actor runs on this same loop (it could never answer)."""

    def on_receive(self, message: Any) -> Any:
        ref, timeout = message
        return hr.ask(ref, "x").get(timeout=timeout)


def test_get_of_hedgerow_ask_on_a_loop_child_from_its_own_loop_thread_is_refused():
    tree = hr.start_tree(hr.SupervisorSpec([hr.ChildSpec("echo", Echo)]))
    child = tree.lookup("root/echo")
    blocker = BlocksOn.start()
    try:
        # Both on hedgerow's loop (as their refs' blocking asks show).
        assert blocker.actor_inbox._loop is child._incarnation._hr_loop
        with pytest.raises(RuntimeError, match="await the future"):
            blocker.ask((child, 2.0), timeout=WAIT)  # with the bug: pykka.Timeout after 2 s
    finally:
        blocker.stop()
        tree.stop()


class ChildAsksItself(hr.AsyncioActor):
    """A supervised child whose handler of "outer" awaits an ask of its own ChildRef."""

    def __init__(self, how: str, tree_ref: list[Any]) -> None:
        super().__init__()
        self.how = how
        self.tree_ref = tree_ref

    async def on_receive(self, message: Any) -> Any:
        if message == "outer":
            own = self.tree_ref[0].lookup("root/self")
            if self.how == "hedgerow.ask":
                return await hr.ask(own, "inner")
            return await own.ask("inner", block=False)
        return message


@pytest.mark.parametrize("how", ["hedgerow.ask", "ref.ask"])
def test_a_child_awaiting_an_ask_of_its_own_child_ref_is_told_not_left_waiting(how):
    holder: list[Any] = []
    spec = hr.SupervisorSpec([hr.ChildSpec("self", ChildAsksItself, args=(how, holder))])
    tree = hr.start_tree(spec)
    holder.append(tree)
    ref = tree.lookup("root/self")
    try:
        future = ref.ask("outer", block=False)
        with pytest.raises(RuntimeError, match="own"):
            future.get(timeout=2.0)  # with the bug: pykka.Timeout
        assert ref.ask("next", timeout=WAIT) == "next"
    finally:
        incarnation = ref._incarnation
        if incarnation is not None and incarnation._hr_task is not None:
            incarnation._hr_kill()  # with the bug: its handler waits for ever
        tree.stop()


class HookedLock:
    """Stands for the module's waiters' lock: the first acquire by `thread` runs `hook`
    first (so another thread acts between set()'s look at its waiters and its lock)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.thread: int | None = None
        self.hook: Any = None

    def acquire(self, *args: Any) -> bool:
        if self.hook is not None and threading.get_ident() == self.thread:
            hook, self.hook = self.hook, None
            hook()
        return self._lock.acquire(*args)

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def test_set_racing_a_cancelled_await_of_another_loop_logs_no_error(monkeypatch, caplog):
    lock = HookedLock()
    monkeypatch.setattr(async_future_module, "_waiters_lock", lock)
    future: AsyncioFuture[str] = AsyncioFuture()
    asker = AskerLoop()
    try:

        async def awaiting() -> Any:
            return await future

        async def start() -> asyncio.Future[Any]:
            task = asyncio.ensure_future(awaiting())
            await asyncio.sleep(0)  # it awaits: its waiter is the future's one
            return task

        task = asyncio.run_coroutine_threadsafe(start(), asker.loop).result(WAIT)

        def cancel_it() -> None:  # in the setter's thread, before set() takes the lock
            async def cancel() -> None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

            asyncio.run_coroutine_threadsafe(cancel(), asker.loop).result(WAIT)

        lock.thread = threading.get_ident()
        lock.hook = cancel_it
        with caplog.at_level("ERROR", logger="hedgerow.actors"):
            future.set("answer")
        assert lock.hook is None  # the race was run
        assert future.get(timeout=0) == "answer"
        assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == []
    finally:
        asker.close()
