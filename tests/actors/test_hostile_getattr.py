"""An actor class whose ``__getattr__`` raises, or answers anything with junk, does
not break hedgerow's internals.

hedgerow reads optional attributes of an actor (its loop, its handler task, its
thread, its child ref ...) that a plain actor may not have: it reads them from
the instance's ``__dict__`` and its class, never through ``__getattr__``. The
actor still answers ask, tell and its proxy, on both runtimes, alone and as a
supervised child, and stops cleanly.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any
from unittest import mock

import helpers
import pytest

import hedgerow as hr

pytestmark = pytest.mark.timeout(30)

WAIT = 10.0


class Body:
    def __init__(self, told: threading.Event | None = None) -> None:
        super().__init__()
        self.told = told or threading.Event()

    def on_receive(self, message: Any) -> Any:
        if message == "tell":
            self.told.set()
        return ("got", message)

    def double(self, n: int) -> int:
        return 2 * n


class Raising(Body):
    def __getattr__(self, name: str) -> Any:
        msg = f"boom: {name}"
        raise RuntimeError(msg)


class Junk(Body):
    def __getattr__(self, name: str) -> Any:
        return mock.MagicMock(name=name)


def _make(body: type, base: type) -> type:
    return type(f"{body.__name__}{base.__name__}", (body, base), {})


CLASSES = [
    pytest.param(_make(body, base), id=f"{body.__name__}-{base.__name__}")
    for body in (Raising, Junk)
    for base in (hr.Actor, hr.AsyncioActor)
]


def _exercise(ref: Any, told: threading.Event) -> None:
    assert ref.ask("hi", timeout=WAIT) == ("got", "hi")
    ref.tell("tell")
    assert told.wait(WAIT)
    assert ref.proxy().double(21).get(timeout=WAIT) == 42

    async def from_asyncio() -> None:
        assert await hr.ask(ref, "async") == ("got", "async")
        await hr.tell(ref, "async tell")
        assert await ref.proxy().double(4) == 8

    asyncio.run(from_asyncio())


@pytest.mark.parametrize("cls", CLASSES)
def test_a_hostile_actor_answers_and_stops(cls):
    told = threading.Event()
    ref = cls.start(told)
    try:
        _exercise(ref, told)
    finally:
        ref.stop(timeout=WAIT)
    assert not ref.is_alive()


@pytest.mark.parametrize("cls", CLASSES)
def test_a_hostile_child_answers_and_its_tree_stops(cls):
    told = threading.Event()
    tree = hr.start_tree(hr.SupervisorSpec([hr.ChildSpec("h", cls, args=(told,))]))
    try:
        _exercise(tree.lookup("root/h"), told)
    finally:
        tree.stop()


class HoldingBody(Body):
    """Holds "hold" until `release` is set (a tree's child with a full inbox)."""

    def __init__(self, entered: threading.Event, release: threading.Event) -> None:
        super().__init__()
        self.entered, self.release = entered, release

    def on_receive(self, message: Any) -> Any:
        if message == "hold":
            self.entered.set()
            return helpers.blocking(self, self.release, lambda: "released")
        return ("got", message)


class RaisingHolding(HoldingBody):
    __getattr__ = Raising.__getattr__


class JunkHolding(HoldingBody):
    __getattr__ = Junk.__getattr__


@pytest.mark.parametrize("body", [RaisingHolding, JunkHolding])
@pytest.mark.parametrize("base", [hr.Actor, hr.AsyncioActor])
def test_a_tell_waiting_for_room_in_a_hostile_childs_full_inbox(body, base):
    """``await hedgerow.tell`` into a full ``block`` inbox asks whether the caller
    runs the actor's handler (it would wait for itself)."""
    entered, release = threading.Event(), threading.Event()
    child = hr.ChildSpec(
        "h",
        _make(body, base),
        args=(entered, release),
        max_inbox=1,
        inbox_overflow="block",
        inbox_timeout=WAIT,
    )
    tree = hr.start_tree(hr.SupervisorSpec([child]))
    try:
        ref = tree.lookup("root/h")
        ref.tell("hold")
        assert entered.wait(WAIT)
        ref.tell("filler")

        async def main() -> None:
            telling = asyncio.ensure_future(hr.tell(ref, "late"))
            await asyncio.sleep(0)
            release.set()
            await telling
            assert await hr.ask(ref, "after") == ("got", "after")

        asyncio.run(main())
    finally:
        release.set()
        tree.stop()
