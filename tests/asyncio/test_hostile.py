"""The asyncio API used as a hostile (or careless) user would: wrong arguments, the
same opening entered twice, errors in the block, calls that cannot be answered in
time, the sync API on the tree's own loop, a loop that ends with the tree open."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pykka
import pytest
from helpers import IgnoresStop, Log, worker

import hedgerow as hr

pytestmark = pytest.mark.timeout(30)

WAIT = 10.0


class SlowStart(hr.Actor):
    """Its on_start waits until released (a child started by start_child)."""

    def __init__(self, entered: threading.Event, release: threading.Event) -> None:
        super().__init__()
        self.entered = entered
        self.release = release

    def on_start(self) -> None:
        self.entered.set()
        self.release.wait(WAIT)


@pytest.mark.parametrize(
    ("spec", "hint"),
    [
        ("tree.toml", "give hedgerow.load_tree"),
        (hr.ChildSpec("a", hr.Actor), "give SupervisorSpec"),
        ({"children": []}, "not dict"),
        (None, "not NoneType"),
    ],
)
def test_a_tree_of_what_is_not_a_supervisor_spec_is_a_type_error_that_says_what_to_give(spec, hint):
    """(It was AttributeError: 'str' object has no attribute 'name', from start_tree too.)"""
    with pytest.raises(TypeError, match="a tree starts from a SupervisorSpec") as raised:
        hr.start_tree(spec)
    assert hint in str(raised.value)

    async def main() -> None:
        with pytest.raises(TypeError, match=hint):
            hr.open_tree(spec)

    asyncio.run(main())


def test_one_opening_is_entered_once():
    async def main() -> None:
        opening = hr.open_tree(hr.SupervisorSpec([worker("a")]))
        async with opening:
            with pytest.raises(RuntimeError, match="entered once"):
                async with opening:
                    pytest.fail("a second tree")

    asyncio.run(main())
    assert pykka.ActorRegistry.get_all() == []


def test_an_error_in_the_block_stops_the_tree_and_goes_on():
    log = Log()

    async def main() -> None:
        async with hr.open_tree(hr.SupervisorSpec([worker("a", log)])):
            raise KeyError("the application's own error")

    with pytest.raises(KeyError, match="the application's own error"):
        asyncio.run(main())
    assert log.of("stop") == ["a"]


def test_a_supervisor_call_that_is_not_answered_in_time_is_a_timeout_of_both_kinds():
    entered, release = threading.Event(), threading.Event()

    async def main() -> None:
        async with hr.open_tree(hr.SupervisorSpec([])) as tree:
            tree.timeout = 0.05
            slow = hr.ChildSpec("slow", SlowStart, args=(entered, release))
            with pytest.raises(pykka.Timeout, match=r"did not answer within 0\.05 seconds"):
                await tree.start_child(slow)  # the supervisor waits in slow's on_start
            with pytest.raises(TimeoutError):
                await tree.which_children()
            release.set()
            tree.timeout = WAIT
            assert [c.id for c in await tree.which_children()] == ["slow"]

    asyncio.run(main())


@pytest.mark.allow_abandoned
def test_a_timeout_around_stop_leaves_the_tree_stopping():
    release = threading.Event()
    spec = hr.SupervisorSpec(
        [hr.ChildSpec("stubborn", IgnoresStop, args=(release,), shutdown=WAIT)]
    )

    async def main() -> hr.AsyncioTree:
        tree = await hr.open_tree(spec)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0):
                await tree.stop()
        assert not tree.done  # still stopping
        release.set()
        assert await tree.wait() == hr.SHUTDOWN
        return tree

    assert asyncio.run(main()).done


def test_the_sync_wait_on_the_trees_own_loop_thread_refuses_to_block_it():
    async def main() -> None:
        async with hr.open_tree(hr.SupervisorSpec([worker("a")]), use_running_loop=True) as tree:
            with pytest.raises(RuntimeError, match="await the AsyncioTree's wait"):
                tree.sync.wait(timeout=1)
            assert not tree.done
            # Another thread may block on it.
            waiter = asyncio.ensure_future(asyncio.to_thread(tree.sync.wait, WAIT))
            await asyncio.sleep(0)
        assert await waiter == hr.SHUTDOWN

    asyncio.run(main())


def test_a_tree_on_the_running_loop_left_open_is_stopped_before_the_loop_closes():
    log = Log()

    async def main() -> hr.AsyncioTree:
        tree = await hr.open_tree(
            hr.SupervisorSpec([worker("a", log), worker("b", log)]), use_running_loop=True
        )
        assert tree.loop is asyncio.get_running_loop()
        return tree

    tree = asyncio.run(main())
    assert tree.done
    assert log.of("stop") == ["b", "a"]


def test_a_tree_opened_on_one_loop_is_awaited_from_another_thread_and_loop():
    """Its wait and calls work from any loop (the answer is handed to that loop)."""
    outcome: dict[str, Any] = {}
    asked = threading.Event()

    async def elsewhere(tree: hr.AsyncioTree) -> None:
        outcome["children"] = [c.id for c in await tree.which_children()]
        asked.set()
        outcome["reason"] = await tree.wait()

    async def main() -> None:
        async with hr.open_tree(hr.SupervisorSpec([worker("a")])) as tree:
            other = threading.Thread(target=asyncio.run, args=(elsewhere(tree),))
            other.start()
            assert await asyncio.to_thread(asked.wait, WAIT)
        await asyncio.to_thread(other.join, WAIT)

    asyncio.run(main())
    assert outcome == {"children": ["a"], "reason": hr.SHUTDOWN}


def test_hr_ask_from_a_plain_thread_gives_a_future_to_get():
    tree = hr.start_tree(hr.SupervisorSpec([worker("a")]))
    try:
        future = hr.ask(tree.lookup("root/a"), "from a thread")
        assert isinstance(future, hr.AsyncioFuture)
        assert future.get(timeout=WAIT) == ("a", 1, "from a thread")
    finally:
        tree.stop()


class OnTheLoop(hr.AsyncioActor):
    def on_receive(self, message: Any) -> Any:
        return message


def test_a_tree_whose_loop_closed_under_it_answers_asks_with_clean_errors():
    """The application closes its loop without stopping the tree (no asyncio.run,
    so nothing stops it on the way): its event-loop children can never run again.
    An ask must end with an error that says so, and the tree must end cleanly."""
    loop = asyncio.new_event_loop()
    spec = hr.SupervisorSpec([hr.ChildSpec("w", OnTheLoop, shutdown=0.5)])
    tree = loop.run_until_complete(_opened(spec))
    loop.close()
    try:
        with pytest.raises((hr.DeadLetterError, pykka.ActorDeadError, pykka.Timeout)):
            tree.lookup("root/w").ask("anyone?", timeout=2)
    finally:
        reason = tree.sync.stop(timeout=WAIT)
    assert not isinstance(reason, AttributeError)


async def _opened(spec: hr.SupervisorSpec) -> hr.AsyncioTree:
    return await hr.open_tree(spec, use_running_loop=True)
