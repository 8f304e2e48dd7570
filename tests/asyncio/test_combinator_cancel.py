"""Cancelling the await of a future made by map, join, filter or reduce takes back
its source asks still queued, unless someone else waits on one of them.

An actor holds a first message; asks queued behind it feed a combinator; the
await of the combinator is cancelled, then the actor is released: the queued
asks were never handled. A source ask that another task also awaits is left
queued, handled, and answered to that task.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import helpers
import pykka
import pytest

import hedgerow as hr

pytestmark = pytest.mark.timeout(60)

WAIT = 10.0


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


class PlainHeld(Held, pykka.ThreadingActor):
    """pykka's own thread actor (its inbox is a plain queue.Queue)."""


KINDS = {
    "loop": lambda: helpers.on(Held, hr.AsyncioActor),
    "actor": lambda: helpers.on(Held, hr.Actor),
    "pykka": lambda: PlainHeld,
}

COMBINATORS: dict[str, Callable[[list[Any]], Any]] = {
    "map": lambda fs: fs[0].join(*fs[1:]).map(list),
    "join": lambda fs: fs[0].join(*fs[1:]),
    "filter": lambda fs: fs[0].join(*fs[1:]).filter(lambda _: True),
    "reduce": lambda fs: fs[0].join(*fs[1:]).reduce(lambda a, b: [*a, b], []),
    "nested": lambda fs: fs[0].join(fs[1].map(lambda v: v), *fs[2:]).map(list),
}


def _run(kind: str, main: Callable[[Any, threading.Event], Any]) -> list[Any]:
    entered, release, seen = threading.Event(), threading.Event(), []
    ref = KINDS[kind]().start(entered, release, seen)

    async def wrapped() -> None:
        ref.tell("hold")
        assert await asyncio.to_thread(entered.wait, WAIT)
        await main(ref, release)
        release.set()
        assert await hr.ask(ref, "after") == "after"

    try:
        asyncio.run(wrapped())
    finally:
        release.set()
        ref.stop()
    return seen


async def _cancel_await(future: Any) -> None:
    async def awaiting() -> Any:
        return await future

    task = asyncio.ensure_future(awaiting())
    await asyncio.sleep(0)  # the task awaits the combinator
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize("combinator", list(COMBINATORS))
@pytest.mark.parametrize("kind", list(KINDS))
def test_a_cancelled_combinator_takes_its_queued_sources_back(kind, combinator):
    async def main(ref: Any, release: threading.Event) -> None:
        sources = [hr.ask(ref, f"queued {n}") for n in range(3)]
        await _cancel_await(COMBINATORS[combinator](sources))
        for source in sources:  # nobody will answer them: each fails, none hangs
            with pytest.raises(asyncio.CancelledError):
                source.get(timeout=0)

    assert _run(kind, main) == ["hold", "after"]


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_cancelled_map_of_one_ask_takes_it_back(kind):
    async def main(ref: Any, release: threading.Event) -> None:
        source = hr.ask(ref, "queued")
        await _cancel_await(source.map(lambda v: v))
        with pytest.raises(asyncio.CancelledError):
            source.get(timeout=0)

    assert _run(kind, main) == ["hold", "after"]


@pytest.mark.parametrize("combinator", list(COMBINATORS))
@pytest.mark.parametrize("kind", list(KINDS))
def test_a_source_another_task_awaits_is_still_handled(kind, combinator):
    async def main(ref: Any, release: threading.Event) -> None:
        sources = [hr.ask(ref, f"queued {n}") for n in range(3)]

        async def other() -> Any:
            return await sources[1]

        waiting = asyncio.ensure_future(other())
        await asyncio.sleep(0)
        await _cancel_await(COMBINATORS[combinator](sources))
        release.set()
        assert await waiting == "queued 1"

    assert _run(kind, main) == ["hold", "queued 1", "after"]


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_source_two_combinators_await_stays_for_the_one_not_cancelled(kind):
    async def main(ref: Any, release: threading.Event) -> None:
        sources = [hr.ask(ref, f"queued {n}") for n in range(2)]
        kept = sources[1].map(lambda v: v.upper())

        async def other() -> Any:
            return await kept

        waiting = asyncio.ensure_future(other())
        await asyncio.sleep(0)
        await _cancel_await(sources[0].join(sources[1]))
        release.set()
        assert await waiting == "QUEUED 1"

    assert _run(kind, main) == ["hold", "queued 1", "after"]


@pytest.mark.parametrize("kind", list(KINDS))
def test_an_awaited_combinator_not_cancelled_leaves_no_marker(kind):
    async def main(ref: Any, release: threading.Event) -> None:
        sources = [hr.ask(ref, f"queued {n}") for n in range(2)]
        combined = sources[0].join(sources[1])

        async def awaiting() -> Any:
            return await combined

        task = asyncio.ensure_future(awaiting())
        await asyncio.sleep(0)
        release.set()
        assert await task == ["queued 0", "queued 1"]
        assert all(s._hr_waiters in (None, hr.actors._async_future._DONE) for s in sources)

    assert _run(kind, main) == ["hold", "queued 0", "queued 1", "after"]
