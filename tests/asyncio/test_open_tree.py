"""`hedgerow.open_tree`: a tree started, driven and stopped from asyncio code,
the running loop never blocked; cancelling the awaiting task cancels the start."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pykka
import pytest
from helpers import FailingStart, Log, Worker, worker

import hedgerow as hr
from hedgerow import EventKind
from hedgerow.testing import EventRecorder

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


class Waits(hr.Actor):
    """Waits in on_start until released; says when it is in there."""

    def __init__(self, entered: threading.Event, release: threading.Event) -> None:
        super().__init__()
        self.entered = entered
        self.release = release

    def on_start(self) -> None:
        self.entered.set()
        self.release.wait(WAIT)


def test_async_with_starts_the_tree_and_stops_it_on_the_way_out(switching):
    log = Log()
    spec = hr.SupervisorSpec([worker("a", log), worker("b", log)])
    events = hr.EventStream()
    recorder = EventRecorder(events)

    async def main() -> hr.AsyncioTree:
        async with hr.open_tree(spec, events=events) as tree:
            assert isinstance(tree, hr.AsyncioTree)
            assert not tree.done
            assert await hr.ask(tree.lookup("root/a"), "hi") == ("a", 1, "hi")
            assert await tree.lookup("root/b").ask("there", block=False) == ("b", 1, "there")
        return tree

    tree = asyncio.run(main())
    assert tree.done
    assert tree.reason == hr.SHUTDOWN
    assert log.of("stop") == ["b", "a"]
    assert recorder.wait_for(EventKind.STOPPED, "root").reason == hr.SHUTDOWN


def test_await_open_tree_then_stop_and_wait():
    async def main() -> tuple[Any, Any]:
        tree = await hr.open_tree(hr.SupervisorSpec([worker("a")]), name="app")
        assert tree.name == "app"
        stopped = await tree.stop()
        return stopped, await tree.wait()  # again: at once

    assert asyncio.run(main()) == (hr.SHUTDOWN, hr.SHUTDOWN)


def test_the_start_does_not_block_the_loop(switching):
    """A child's on_start waits for something only the loop can give."""
    entered, release = threading.Event(), threading.Event()
    spec = hr.SupervisorSpec([hr.ChildSpec("waits", Waits, args=(entered, release))])

    async def main() -> bool:
        opening = asyncio.ensure_future(hr.open_tree(spec))
        assert await asyncio.to_thread(entered.wait, WAIT)
        release.set()  # the loop runs while the tree starts
        tree = await opening
        await tree.stop()
        return tree.done

    assert asyncio.run(main())


def test_the_dynamic_children_api_is_awaited():
    spec = hr.SupervisorSpec(
        [hr.ChildSpec("pool", hr.SupervisorSpec([hr.ChildSpec("w", Worker)], "simple_one_for_one"))]
    )

    async def main() -> None:
        async with hr.open_tree(spec) as tree:
            pool = await tree.supervisor("pool")
            assert isinstance(pool, hr.AsyncioSupervisorHandle)
            first = await pool.start_child("first")
            second = await pool.start_child("second")
            assert await hr.ask(first, "x") == ("first", 1, "x")
            counts = await pool.count_children()
            assert counts.active == 2
            assert [c.ref for c in await pool.which_children()] == [first, second]
            await pool.stop_child(first)
            assert (await pool.count_children()).active == 1
            with pytest.raises(hr.ChildNotFound):
                await tree.supervisor("nope")
            with pytest.raises(hr.NotAllowedForSimpleOneForOne):
                await pool.restart_child("nope")
            child = await tree.get_child("pool", hr.Supervisor)
            assert child.path == "root/pool"
            rows = await tree.describe()
            assert rows[0]["id"] == "pool"
            assert [row["state"] for row in rows[0]["children"]] == ["running"]

    asyncio.run(main())


def test_a_static_child_is_restarted_deleted_and_replaced():
    async def main() -> None:
        async with hr.open_tree(hr.SupervisorSpec([worker("a")])) as tree:
            await tree.stop_child("a")
            again = await tree.restart_child("a")
            assert await hr.ask(again, "back") == ("a", 2, "back")
            await tree.stop_child("a")
            await tree.delete_child("a")
            assert (await tree.count_children()).specs == 0
            await tree.start_child(worker("b"))
            replaced = await tree.replace_child(worker("b", restart="failed"))
            assert replaced.path == "root/b"

    asyncio.run(main())


def test_a_failed_start_raises_start_error_and_leaves_nothing_running():
    spec = hr.SupervisorSpec([worker("a"), hr.ChildSpec("bad", FailingStart)])

    async def main() -> None:
        with pytest.raises(hr.StartError, match="cannot start"):
            async with hr.open_tree(spec):
                pytest.fail("the block ran")

    asyncio.run(main())
    assert pykka.ActorRegistry.get_all() == []


@pytest.mark.parametrize("how", ["cancel", "timeout"])
def test_cancelling_the_awaiting_task_cancels_the_start(how, switching):
    """The task is cancelled while a child is in its on_start: the children that
    started are stopped in reverse order, the waiting one after its shutdown,
    none after it starts, and then the task ends cancelled (or timed out)."""
    log = Log()
    entered, release = threading.Event(), threading.Event()
    waits = hr.ChildSpec("waits", Waits, args=(entered, release), shutdown=0.05)
    spec = hr.SupervisorSpec([worker("a", log), worker("b", log), waits, worker("never", log)])
    events = hr.EventStream()
    recorder = EventRecorder(events)

    async def main() -> None:
        if how == "timeout":
            with pytest.raises(TimeoutError):  # noqa: PT012 - the timeout's block
                async with asyncio.timeout(None) as deadline:
                    opening = asyncio.ensure_future(hr.open_tree(spec, events=events))
                    assert await asyncio.to_thread(entered.wait, WAIT)
                    deadline.reschedule(asyncio.get_running_loop().time())  # now
                    await opening
            assert log.of("stop") == ["b", "a"]
            return
        opening = asyncio.ensure_future(hr.open_tree(spec, events=events))
        assert await asyncio.to_thread(entered.wait, WAIT)
        opening.cancel()
        with pytest.raises(asyncio.CancelledError):
            await opening
        # By now, every child that started has stopped.
        assert log.of("stop") == ["b", "a"]
        assert pykka.ActorRegistry.get_all() == []

    asyncio.run(main())
    release.set()
    assert log.of("start") == ["a", "b"]
    assert recorder.wait_for(EventKind.ABANDONED, "root/waits").reason == hr.KILLED


def test_a_cancel_that_comes_as_the_start_ends_stops_the_new_tree():
    """The start finished, but its task was cancelled before it could take the
    tree: nobody has it, so it is stopped before the CancelledError goes on."""
    log = Log()

    async def main() -> None:
        opening = asyncio.ensure_future(hr.open_tree(hr.SupervisorSpec([worker("a", log)])))
        await asyncio.sleep(0)  # the start's thread is on its way
        opening.cancel()
        with pytest.raises(asyncio.CancelledError):
            await opening

    asyncio.run(main())
    assert pykka.ActorRegistry.get_all() == []
    assert log.of("start") == log.of("stop")


def test_stopping_the_tree_from_another_thread_ends_an_awaited_wait(switching):
    async def main() -> Any:
        tree = await hr.open_tree(hr.SupervisorSpec([worker("a")]))
        waiting = asyncio.ensure_future(tree.wait())
        await asyncio.sleep(0)
        stopper = threading.Thread(target=tree.sync.stop, name="stopper")
        stopper.start()
        reason = await waiting
        await asyncio.to_thread(stopper.join, WAIT)
        return reason

    assert asyncio.run(main()) == hr.SHUTDOWN


def test_a_cancelled_wait_leaves_the_tree_running():
    async def main() -> None:
        async with hr.open_tree(hr.SupervisorSpec([worker("a")])) as tree:
            for _ in range(50):
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0):
                        await tree.wait()
            assert not tree.done
            waiters = tree._outcome._hr_waiters
            assert not isinstance(waiters, list) or len(waiters) <= 1  # only open_tree's own
            assert await hr.ask(tree.lookup("root/a"), "alive") == ("a", 1, "alive")

    asyncio.run(main())


def test_a_tree_that_gives_up_ends_the_awaited_wait_with_its_reason():
    spec = hr.SupervisorSpec([worker("a")], max_restarts=0)

    async def main() -> Any:
        tree = await hr.open_tree(spec)
        tree.lookup("root/a").tell("crash")
        reason = await tree.wait()
        assert tree.gave_up
        return reason

    assert isinstance(asyncio.run(main()), hr.IntensityExceeded)


def test_a_tree_left_open_is_stopped_when_asyncio_run_ends():
    log = Log()

    async def main() -> hr.AsyncioTree:
        return await hr.open_tree(hr.SupervisorSpec([worker("a", log), worker("b", log)]))

    tree = asyncio.run(main())
    assert tree.done
    assert tree.reason == hr.SHUTDOWN
    assert log.of("stop") == ["b", "a"]


def test_calls_after_the_tree_stopped_raise_clear_errors():
    async def main() -> None:
        async with hr.open_tree(hr.SupervisorSpec([worker("a")])) as tree:
            ref = tree.lookup("root/a")
        assert tree.done
        with pytest.raises(hr.DeadLetterError):
            await hr.ask(ref, "late")
        with pytest.raises(pykka.ActorDeadError):
            await tree.which_children()
        assert await tree.stop() == hr.SHUTDOWN  # stopping again: at once

    asyncio.run(main())


def test_use_running_loop_names_the_applications_loop():
    async def main() -> None:
        async with hr.open_tree(hr.SupervisorSpec([worker("a")]), use_running_loop=True) as tree:
            assert tree.loop is asyncio.get_running_loop()
        async with hr.open_tree(hr.SupervisorSpec([worker("a")])) as tree:
            assert tree.loop is None  # hedgerow's own loop thread

    asyncio.run(main())


def test_start_tree_refuses_a_loop_that_is_not_one_or_is_closed():
    loop = asyncio.new_event_loop()
    loop.close()
    spec = hr.SupervisorSpec([worker("a")])
    with pytest.raises(ValueError, match="is closed"):
        hr.start_tree(spec, loop=loop)
    with pytest.raises(TypeError, match="loop must be an asyncio event loop"):
        hr.start_tree(spec, loop="main")  # type: ignore[arg-type]


def test_open_tree_with_use_running_loop_needs_a_running_loop():
    with pytest.raises(RuntimeError, match="no running event loop"):
        hr.open_tree(hr.SupervisorSpec([worker("a")]), use_running_loop=True)


class WhereAmI(hr.AsyncioActor):
    """An event-loop child: says which loop and thread it runs on; crashes when told."""

    def on_receive(self, message: Any) -> Any:
        if message == "crash":
            raise RuntimeError("told to crash")
        return asyncio.get_running_loop(), threading.current_thread().name


@pytest.mark.parametrize("use_running_loop", [True, False])
def test_the_trees_event_loop_actors_run_on_the_loop_it_names(use_running_loop, switching):
    log = Log()
    spec = hr.SupervisorSpec([worker("thread", log), hr.ChildSpec("where", WhereAmI)])

    async def main() -> None:
        here = asyncio.get_running_loop()
        async with hr.open_tree(spec, use_running_loop=use_running_loop) as tree:
            where = tree.lookup("root/where")
            loop, thread = await hr.ask(where, "where?")
            if use_running_loop:
                assert (loop, thread) == (here, threading.current_thread().name)
            else:
                assert loop is not here
                assert thread == "hedgerow-loop"
            where.tell("crash")  # restarted: the next incarnation is on the same loop
            assert (await hr.ask(where, "again?"))[0] is loop
            assert await hr.ask(tree.lookup("root/thread"), "x") == ("thread", 1, "x")
        assert log.of("stop") == ["thread"]

    asyncio.run(main())


class LoopChild(hr.AsyncioActor):
    """An event-loop child that logs where its on_stop runs; its on_start may wait
    on the loop for an event that never comes."""

    def __init__(self, name: str, log: Log, entered: threading.Event | None = None) -> None:
        super().__init__()
        self.name = name
        self.log = log
        self.entered = entered

    async def on_start(self) -> None:  # type: ignore[override]
        self.log.add(("start", self.name))
        if self.entered is not None:
            self.entered.set()
            await asyncio.Event().wait()  # for ever: only a kill ends it

    def on_stop(self) -> None:  # type: ignore[override]
        self.log.add(("stop", (self.name, threading.current_thread().name)))

    def on_receive(self, message: Any) -> Any:
        return message


def test_a_cancelled_start_stops_event_loop_children_on_the_applications_loop(switching):
    log = Log()
    entered = threading.Event()
    spec = hr.SupervisorSpec(
        [
            hr.ChildSpec("first", LoopChild, args=("first", log)),
            hr.ChildSpec("stuck", LoopChild, args=("stuck", log, entered), shutdown=0.05),
            hr.ChildSpec("never", LoopChild, args=("never", log)),
        ]
    )
    events = hr.EventStream()
    recorder = EventRecorder(events)

    async def main() -> None:
        opening = asyncio.ensure_future(hr.open_tree(spec, events=events, use_running_loop=True))
        assert await asyncio.to_thread(entered.wait, WAIT)
        opening.cancel()
        with pytest.raises(asyncio.CancelledError):
            await opening
        assert pykka.ActorRegistry.get_all() == []

    asyncio.run(main())
    assert log.of("start") == ["first", "stuck"]
    assert log.of("stop") == [("first", threading.current_thread().name)]  # on this loop
    stuck = recorder.wait_for(EventKind.STOPPED, "root/stuck")  # killed: its task cancelled
    assert stuck.reason == hr.KILLED


def test_event_loop_children_stop_on_the_applications_loop_however_the_tree_ends(switching):
    """Stopped from another thread while the application awaits wait(), or left
    open when asyncio.run ends: their on_stop runs on the application's loop."""
    log = Log()
    spec = hr.SupervisorSpec([hr.ChildSpec(n, LoopChild, args=(n, log)) for n in ("a", "b")])
    here = threading.current_thread().name

    async def stopped_from_a_thread() -> Any:
        tree = await hr.open_tree(spec, use_running_loop=True)
        assert await hr.ask(tree.lookup("root/a"), "up?") == "up?"
        waiting = asyncio.ensure_future(tree.wait())
        stopper = threading.Thread(target=tree.sync.stop, name="stopper")
        stopper.start()
        reason = await waiting
        await asyncio.to_thread(stopper.join, WAIT)
        return reason

    assert asyncio.run(stopped_from_a_thread()) == hr.SHUTDOWN
    assert log.of("stop") == [("b", here), ("a", here)]

    async def left_open() -> hr.AsyncioTree:
        return await hr.open_tree(spec, use_running_loop=True)

    tree = asyncio.run(left_open())
    assert tree.done
    assert log.of("stop")[2:] == [("b", here), ("a", here)]
