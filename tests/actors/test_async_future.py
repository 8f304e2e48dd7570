"""hedgerow.AsyncioFuture: blocks a thread in get(), suspends only the task in await."""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
from typing import Any

import pykka
import pytest

import hedgerow as hr

pytestmark = pytest.mark.timeout(30)

WAIT = 10.0


def test_it_stands_in_for_pykkas_thread_future() -> None:
    future: hr.AsyncioFuture[int] = hr.AsyncioFuture()
    assert isinstance(future, pykka.ThreadingFuture)
    assert not future.done()
    future.set(1)
    assert future.done()
    assert future.get(timeout=0) == 1
    with pytest.raises(queue.Full):
        future.set(2)


def test_get_blocks_a_thread_until_another_sets_it() -> None:
    future: hr.AsyncioFuture[str] = hr.AsyncioFuture()
    waiting = threading.Event()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:

        def get() -> str:
            waiting.set()
            return future.get(timeout=WAIT)

        result = pool.submit(get)
        assert waiting.wait(WAIT)
        future.set("value")
        assert result.result(WAIT) == "value"


def test_get_times_out() -> None:
    future: hr.AsyncioFuture[Any] = hr.AsyncioFuture()
    with pytest.raises(pykka.Timeout, match="0 seconds"):
        future.get(timeout=0)
    future.set("late")  # the timed-out getter's lock is released harmlessly
    assert future.get(timeout=0) == "late"


def test_an_exception_is_raised_to_every_getter() -> None:
    future: hr.AsyncioFuture[Any] = hr.AsyncioFuture()
    try:
        raise KeyError("k")
    except KeyError:
        future.set_exception()
    with pytest.raises(KeyError):
        future.get()

    async def main() -> None:
        await future

    with pytest.raises(KeyError):
        asyncio.run(main())


def test_await_while_another_thread_sets_it_keeps_the_loop_running() -> None:
    future: hr.AsyncioFuture[str] = hr.AsyncioFuture()
    ticks: list[int] = []

    async def ticker(started: asyncio.Event) -> None:
        started.set()
        for i in range(3):
            ticks.append(i)
            await asyncio.sleep(0)
        threading.Thread(target=future.set, args=("from a thread",)).start()

    async def main() -> str:
        started = asyncio.Event()
        task = asyncio.ensure_future(ticker(started))
        value = await future
        await task
        return value

    assert asyncio.run(main()) == "from a thread"
    assert ticks == [0, 1, 2]


def test_await_when_set_on_the_same_loop() -> None:
    async def main() -> int:
        future: hr.AsyncioFuture[int] = hr.AsyncioFuture()
        asyncio.get_running_loop().call_soon(future.set, 5)
        return await future

    assert asyncio.run(main()) == 5


def test_derived_futures_are_awaited_without_blocking() -> None:
    async def main() -> tuple[Any, ...]:
        a: hr.AsyncioFuture[int] = hr.AsyncioFuture()
        b: hr.AsyncioFuture[int] = hr.AsyncioFuture()
        loop = asyncio.get_running_loop()
        mapped = a.map(lambda x: x + 1)
        joined = a.join(b)
        loop.call_soon(a.set, 1)
        loop.call_soon(b.set, 2)
        # If these blocked the loop, the call_soon above would never run.
        return await mapped, await joined

    assert asyncio.run(main()) == (2, [1, 2])


def test_a_hooked_future_without_sources_is_awaited_in_an_executor() -> None:
    release = threading.Event()

    async def main() -> str:
        future: hr.AsyncioFuture[str] = hr.AsyncioFuture()
        future.set_get_hook(lambda timeout: "hooked" if release.wait(WAIT) else "no")
        waiter = asyncio.ensure_future(_await(future))
        await asyncio.sleep(0)
        release.set()  # runs: the hook does not block the loop
        return await waiter

    assert asyncio.run(main()) == "hooked"


async def _await(future: Any) -> Any:
    return await future


def test_done_callbacks_run_once_at_set_or_at_once_when_done() -> None:
    calls: list[Any] = []
    future: hr.AsyncioFuture[int] = hr.AsyncioFuture()
    future.add_done_callback(lambda f: calls.append(("before", f.get())))
    future.set(3)
    future.add_done_callback(lambda f: calls.append(("after", f.get())))
    assert calls == [("before", 3), ("after", 3)]


def test_a_racing_setter_and_getters_wake_every_getter_once() -> None:
    rounds = 300
    for _ in range(rounds):
        future: hr.AsyncioFuture[int] = hr.AsyncioFuture()
        results: list[int] = []
        barrier = threading.Barrier(3)

        getters = [
            threading.Thread(target=_get_after, args=(barrier, future, results)) for _ in range(2)
        ]
        for thread in getters:
            thread.start()
        barrier.wait()
        future.set(1)
        for thread in getters:
            thread.join(WAIT)
        assert results == [1, 1]


def _get_after(barrier: threading.Barrier, future: hr.AsyncioFuture[int], out: list[int]) -> None:
    barrier.wait()
    out.append(future.get(timeout=WAIT))
