"""An awaited call of a loop supervisor from its own loop, while the supervisor is
idle, is handled at once (`hedgerow.supervision._loop_supervisor.call_at_once`):
the same handling as by message, in the same order, without the loop's turns.
These check that nothing else changes: answers, errors, waits, timeouts, order,
the loop's other work, and the caller's context."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import pytest

import hedgerow as hr
from hedgerow import EventKind
from hedgerow.actors._ask import AskTimeout
from hedgerow.supervision import _loop_supervisor
from hedgerow.supervision._loop_supervisor import AT_ONCE
from hedgerow.testing import EventRecorder

pytestmark = pytest.mark.timeout(30)

mark: contextvars.ContextVar[str] = contextvars.ContextVar("mark", default="caller's")


class Idle(hr.AsyncioActor):
    def __init__(self, *args: Any) -> None:
        super().__init__()
        self.args = args

    def on_receive(self, message: Any) -> Any:
        return (self.args, message)


class FailsToStart(hr.AsyncioActor):
    def on_start(self) -> None:
        raise RuntimeError("no start")


class Marks(hr.AsyncioActor):
    def on_start(self) -> None:
        mark.set("the child's")


class Gate:
    """An ``on_start`` that awaits until `release` is set (on the caller's loop)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.entered = asyncio.Event()


class Waits(hr.AsyncioActor):
    def __init__(self, gate: Gate) -> None:
        super().__init__()
        self.gate = gate

    async def on_start(self) -> None:
        self.gate.entered.set()
        await self.gate.release.wait()


@pytest.fixture(autouse=True)
def _no_watchdog_beats():
    """The blocked-loop watchdog's heartbeat (`LoopRuntime.check`) lands in the
    loop's ready queue whenever the watchdog looks while an actor is busy, and
    a call then rightly goes by message, behind it: these tests, which count
    the calls handled at once, turn the watchdog off."""
    previous = hr.set_block_threshold(None)
    yield
    hr.set_block_threshold(previous)


def _pool(actor_class: type[Any]) -> hr.SupervisorSpec:
    return hr.SupervisorSpec(
        [hr.ChildSpec("w", actor_class, restart="temporary")],
        strategy="simple_one_for_one",
        runtime="loop",
    )


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Record whether each call was handled at once."""
    seen: list[bool] = []
    original = _loop_supervisor.call_at_once

    def spy(*args: Any) -> Any:
        result = original(*args)
        seen.append(result is not None)
        return result

    monkeypatch.setattr("hedgerow.supervision._async_tree.call_at_once", spy)
    return seen


def test_an_idle_supervisor_answers_at_once_as_by_message(monkeypatch):
    seen = _spy(monkeypatch)

    async def main() -> None:
        async with hr.open_tree(_pool(Idle), use_running_loop=True) as tree:
            await asyncio.sleep(0)  # the tree's start leaves a callback to run first
            ref = await tree.start_child("a")
            assert await ref.ask("hi", block=False) == (("a",), "hi")
            assert (await tree.count_children()).active == 1
            await tree.stop_child(ref)
            assert (await tree.count_children()).active == 0
            assert not ref.is_alive()

    asyncio.run(main())
    assert seen == [True, True, True, True]


def test_an_error_is_raised_to_the_caller_and_the_supervisor_goes_on(monkeypatch):
    seen = _spy(monkeypatch)

    async def main() -> None:
        async with hr.open_tree(_pool(FailsToStart), use_running_loop=True) as tree:
            events: list[hr.Event] = []
            tree.events.subscribe(events.append)
            await asyncio.sleep(0)  # the tree's start leaves a callback to run first
            with pytest.raises(hr.StartError, match="no start"):
                await tree.start_child()
            with pytest.raises(hr.NotAllowedForSimpleOneForOne):
                await tree.restart_child("w-1")
            assert (await tree.count_children()).active == 0
            assert [e.kind for e in events] == [EventKind.START_FAILED]

    asyncio.run(main())
    assert seen == [True, True, True]


def test_a_call_that_waits_goes_on_in_the_supervisor_and_the_next_waits_behind_it(monkeypatch):
    seen = _spy(monkeypatch)

    async def main() -> None:
        gate = Gate()
        async with hr.open_tree(_pool(Waits), use_running_loop=True) as tree:
            first = asyncio.ensure_future(tree.start_child(gate))
            await gate.entered.wait()  # the supervisor awaits the first child's start
            second = asyncio.ensure_future(tree.start_child(gate))
            counted = asyncio.ensure_future(tree.count_children())
            await asyncio.sleep(0)
            assert not first.done()
            assert not second.done()
            assert not counted.done()
            gate.release.set()
            refs = [await first, await second]
            assert [ref.path for ref in refs] == ["root/w-1", "root/w-2"]
            assert (await counted).active == 2  # answered after both starts, in order

    asyncio.run(main())
    assert seen == [True, False, False]  # busy: the others went by message


def test_a_call_that_waits_is_bounded_by_the_timeout():
    async def main() -> None:
        gate = Gate()
        async with hr.open_tree(_pool(Waits), use_running_loop=True) as tree:
            handle = hr.AsyncioSupervisorHandle(tree.ref, timeout=0.05)
            with pytest.raises(AskTimeout, match=r"start_child.*0\.05 seconds"):
                await handle.start_child(gate)
            gate.release.set()
            assert (await tree.count_children()).active == 1

    asyncio.run(main())


def test_the_loop_runs_its_other_work_between_calls_handled_at_once():
    async def main() -> int:
        ticks = 0
        async with hr.open_tree(_pool(Idle), use_running_loop=True) as tree:

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0)

            task = asyncio.ensure_future(ticker())
            await asyncio.sleep(0)
            before = ticks
            for _ in range(3 * (AT_ONCE + 1)):
                await tree.start_child()
            during = ticks - before
            task.cancel()
        return during

    assert asyncio.run(main()) >= 3


def test_a_child_started_at_once_does_not_change_the_callers_context():
    async def main() -> str:
        async with hr.open_tree(_pool(Marks), use_running_loop=True) as tree:
            await tree.start_child()
            return mark.get()

    assert asyncio.run(main()) == "caller's"


def test_a_call_from_another_loop_goes_by_message(monkeypatch):
    seen = _spy(monkeypatch)

    async def main() -> None:
        async with hr.open_tree(_pool(Idle)) as tree:  # on hedgerow's loop thread
            ref = await tree.start_child("b")
            assert await ref.ask("hi", block=False) == (("b",), "hi")

    asyncio.run(main())
    assert seen == [False]


class Seen:
    """An interceptor that records the messages it sees."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    def child_created(self, ref: Any) -> None:
        pass

    def before_start(self, actor: Any) -> None:
        pass

    def before_receive(self, actor: Any, envelope: Any) -> None:
        self.messages.append((actor.actor_child_ref.path, envelope.message))

    def after_receive(self, actor: Any, envelope: Any, error: Any) -> None:
        pass


def test_a_test_harness_sees_a_nested_supervisors_call_handled_at_once(monkeypatch):
    seen = _spy(monkeypatch)
    spec = hr.SupervisorSpec([hr.ChildSpec("pool", _pool(Idle))], runtime="loop")

    async def main() -> list[Any]:
        async with hr.open_tree(spec, use_running_loop=True) as tree:
            interceptor = Seen()
            tree.hooks.interceptor = interceptor
            await asyncio.sleep(0)  # the tree's start leaves a callback to run first
            pool = await tree.supervisor("pool")
            ref = await pool.start_child("c")
            assert await ref.ask("hi", block=False) == (("c",), "hi")
            tree.hooks.interceptor = None
            return interceptor.messages

    messages = asyncio.run(main())
    calls = [(path, m.attr_path) for path, m in messages if hasattr(m, "attr_path")]
    assert calls == [("root/pool", ("start_child",))]
    assert ("root/pool/w-1", "hi") in messages
    assert seen == [True, True]  # get_child (the root), start_child (the pool)


class Stops(hr.AsyncioActor):
    def __init__(self, order: list[str]) -> None:
        super().__init__()
        self.order = order

    def on_stop(self) -> None:
        self.order.append("on_stop")


def test_an_idle_child_of_the_loop_is_stopped_at_once_with_its_events():
    # The supervisor handles an idle child's stop itself (its on_stop, its
    # end, its STOPPED event) before the call returns: no turn of the loop.
    order: list[str] = []
    turns = [0]

    async def main() -> None:
        loop = asyncio.get_running_loop()
        run_once = loop._run_once  # type: ignore[attr-defined]

        def counted() -> None:
            turns[0] += 1
            run_once()

        loop._run_once = counted  # type: ignore[attr-defined]
        spec = hr.SupervisorSpec(
            [hr.ChildSpec("w", Stops, args=(order,), restart="temporary")],
            strategy="simple_one_for_one",
            runtime="loop",
        )
        async with hr.open_tree(spec, use_running_loop=True) as tree:
            with EventRecorder(tree) as recorder:
                await asyncio.sleep(0)
                ref = await tree.start_child()
                before = turns[0]
                await tree.stop_child(ref)
                assert turns[0] == before
                order.append("stopped")
                assert not ref.is_alive()
                assert [e.kind for e in recorder.events] == [EventKind.STARTED, EventKind.STOPPED]

    asyncio.run(main())
    assert order == ["on_stop", "stopped"]
