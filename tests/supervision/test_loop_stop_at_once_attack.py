"""Attacks on the loop supervisor's stop of an idle same-loop child at once
(`LoopSupervisor._begin_stop`): an on_stop that raises or awaits, messages that
arrive during the stop (from the loop, from racing threads), events' order.
Each compares with, or holds as, the stop by message (from another thread)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import hedgerow as hr
from hedgerow import EventKind
from hedgerow.testing import EventRecorder

pytestmark = pytest.mark.timeout(60)

WAIT = 10.0


class Raises(hr.AsyncioActor):
    async def on_receive(self, message: Any) -> Any:
        return message

    def on_stop(self) -> None:
        raise RuntimeError("boom in on_stop")


class AwaitsThenRaises(hr.AsyncioActor):
    async def on_receive(self, message: Any) -> Any:
        return message

    async def on_stop(self) -> None:  # type: ignore[override]
        await asyncio.sleep(0)
        raise RuntimeError("boom in on_stop")


def _spec(cls: type, *args: Any) -> hr.SupervisorSpec:
    return hr.SupervisorSpec(
        [hr.ChildSpec("w", cls, args=args, restart="temporary")],
        strategy="simple_one_for_one",
        runtime="loop",
    )


@pytest.mark.parametrize("cls", [Raises, AwaitsThenRaises], ids=["raises", "awaits-then-raises"])
@pytest.mark.parametrize("by", ["loop", "thread"], ids=["at-once", "by-message"])
def test_an_on_stop_that_raises_fails_the_child_either_way(cls: type, by: str) -> None:
    async def main() -> list[tuple[EventKind, str]]:
        async with hr.open_tree(_spec(cls), use_running_loop=True) as tree:
            with EventRecorder(tree) as recorder:
                ref = await tree.start_child()
                if by == "loop":
                    await asyncio.wait_for(tree.stop_child(ref), WAIT)
                else:
                    await asyncio.wait_for(asyncio.to_thread(tree.sync.stop_child, ref), WAIT)
                assert not ref.is_alive()
                assert (await tree.count_children()).active == 0
                return [(e.kind, repr(e.reason)) for e in recorder.events]

    events = asyncio.run(main())
    assert events == [
        (EventKind.STARTED, "None"),
        (EventKind.FAILED, "RuntimeError('boom in on_stop')"),
    ]


class Gated(hr.AsyncioActor):
    def __init__(self, gate: asyncio.Event, handled: list[Any]) -> None:
        super().__init__()
        self.gate = gate
        self.handled = handled

    async def on_receive(self, message: Any) -> Any:
        self.handled.append(message)
        return message

    async def on_stop(self) -> None:  # type: ignore[override]
        self.handled.append("on_stop")
        await self.gate.wait()


def test_messages_that_arrive_while_on_stop_awaits_are_dead_letters_after_stopped() -> None:
    handled: list[Any] = []

    async def main() -> None:
        gate = asyncio.Event()
        async with hr.open_tree(_spec(Gated, gate, handled), use_running_loop=True) as tree:
            with EventRecorder(tree) as recorder:
                ref = await tree.start_child()
                stopping = asyncio.ensure_future(tree.stop_child(ref))
                for _ in range(100):
                    if handled:
                        break
                    await asyncio.sleep(0)
                assert handled == ["on_stop"]
                ref.tell("told during")
                asking = hr.ask(ref, "asked during")
                gate.set()
                await asyncio.wait_for(stopping, WAIT)
                with pytest.raises(Exception) as failed:
                    await asyncio.wait_for(asking, WAIT)
                assert not isinstance(failed.value, asyncio.TimeoutError)
                kinds = [e.kind for e in recorder.events]
                assert kinds[:2] == [EventKind.STARTED, EventKind.STOPPED], kinds
                assert kinds[2:] == [EventKind.DEAD_LETTER] * 2, kinds

    asyncio.run(main())
    assert handled == ["on_stop"]


class Counts(hr.AsyncioActor):
    def __init__(self, handled: list[Any]) -> None:
        super().__init__()
        self.handled = handled

    async def on_receive(self, message: Any) -> Any:
        self.handled.append(message)
        return message


@pytest.mark.usefixtures("switch_often")
def test_tells_from_threads_racing_a_stop_at_once_are_handled_or_dead_letters_once() -> None:
    """Threads tell an idle child while its supervisor stops it at once: each
    message is handled, or is a dead letter (or refused to its sender), once."""
    for _ in range(10):
        _tells_racing_a_stop()


def _tells_racing_a_stop() -> None:
    handled: list[Any] = []
    refused: list[Any] = []
    sent: list[Any] = []
    lock = threading.Lock()

    async def main() -> list[Any]:
        async with hr.open_tree(_spec(Counts, handled), use_running_loop=True) as tree:
            with EventRecorder(tree) as recorder:
                ref = await tree.start_child()
                go = threading.Event()

                def teller(who: int) -> None:
                    go.wait(WAIT)
                    for n in range(200):
                        message = (who, n)
                        with lock:
                            sent.append(message)
                        try:
                            ref.tell(message)
                        except Exception:  # a refusal counts as an outcome
                            with lock:
                                refused.append(message)

                threads = [threading.Thread(target=teller, args=(w,)) for w in range(3)]
                for thread in threads:
                    thread.start()
                go.set()
                await asyncio.sleep(0)
                await asyncio.wait_for(tree.stop_child(ref), WAIT)
                for thread in threads:
                    await asyncio.to_thread(thread.join, WAIT)
                await asyncio.sleep(0)
                return [e.message for e in recorder.events if e.kind is EventKind.DEAD_LETTER]

    dead = asyncio.run(main())
    outcomes = handled + dead + refused
    assert sorted(outcomes) == sorted(sent), (len(handled), len(dead), len(refused), len(sent))
