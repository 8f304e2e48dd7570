"""`update_tree` overtaken by the tree's stop: its failure says that the tree stopped,
not that each step and each undo found no supervisor."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest
from helpers import start, worker

import hedgerow as hr
from hedgerow import EventKind
from hedgerow.supervision._update import update_tree
from hedgerow.testing import EventRecorder

pytestmark = pytest.mark.timeout(60)

WAIT = 10.0


class Gated(hr.Actor):
    """Its on_start waits for `release`: an update adding it waits there."""

    def __init__(self, entered: threading.Event, release: threading.Event) -> None:
        super().__init__()
        self.entered = entered
        self.release = release

    def on_start(self) -> None:
        self.entered.set()
        self.release.wait(WAIT)


def sup(*children: hr.ChildSpec) -> hr.SupervisorSpec:
    return hr.SupervisorSpec(list(children), name="svc")


def test_an_update_overtaken_by_the_trees_stop_says_the_tree_stopped():
    """(It was "child 'svc/g' failed to start: shutdown('Gated (urn:uuid:...) was
    abandoned ...'); could not undo: ...; svc: ActorDeadError: Supervisor (urn:uuid:...)
    not found", or, stopped later, "svc/x: ActorDeadError: ...": seen failing.)"""
    entered, release = threading.Event(), threading.Event()
    tree, _ = start(sup(worker("a")))
    new = sup(
        worker("a"), hr.ChildSpec("g", Gated, args=(entered, release), shutdown=0.2), worker("x")
    )
    failed: list[BaseException] = []

    def update() -> None:
        try:
            update_tree(tree, new)
        except BaseException as error:
            failed.append(error)

    updating = threading.Thread(target=update)
    updating.start()
    try:
        assert entered.wait(WAIT)
        assert tree.stop(WAIT) == "shutdown"
    finally:
        release.set()
    updating.join(WAIT)
    assert len(failed) == 1
    error = failed[0]
    assert isinstance(error, hr.UpdateFailed)
    assert str(error).startswith("tree 'svc' stopped during the update (shutdown)")
    assert "ActorDeadError" not in str(error)
    assert "urn:" not in str(error)
    assert error.problems == ()


def test_an_awaited_update_overtaken_by_the_trees_stop_says_the_tree_stopped(
    runtime: Any,
) -> None:
    entered, release = threading.Event(), threading.Event()
    new = sup(
        worker("a"), hr.ChildSpec("g", Gated, args=(entered, release), shutdown=0.2), worker("x")
    )

    async def main() -> None:
        async with hr.open_tree(sup(worker("a"))) as tree:
            updating = asyncio.ensure_future(tree.update_tree(new))
            try:
                assert await asyncio.to_thread(entered.wait, WAIT)
                assert await tree.stop() == "shutdown"
            finally:
                release.set()
            with pytest.raises(hr.UpdateFailed, match=r"^tree 'svc' stopped during the update"):
                await updating

    asyncio.run(main())


# -- an update that would stop the very child running it ----------------------------

_trees: dict[str, Any] = {}


class Reloader(hr.Actor):
    """A thread actor that updates its own tree (a config watcher, say)."""

    def __init__(self, version: int = 1) -> None:
        super().__init__()
        self.version = version

    def on_receive(self, message: Any) -> Any:
        if message == "version":
            return self.version
        return update_tree(_trees["tree"], message).summary()


class LoopReloader(hr.AsyncioActor):
    """The same on the event loop, awaiting the AsyncioTree's update."""

    def __init__(self, version: int = 1) -> None:
        super().__init__()
        self.version = version

    async def on_receive(self, message: Any) -> Any:
        if message == "version":
            return self.version
        return (await _trees["tree"].update_tree(message)).summary()


def reloading(cls: type, version: int) -> hr.SupervisorSpec:
    return sup(hr.ChildSpec("reloader", cls, kwargs={"version": version}), worker("a"))


def test_a_child_updating_its_tree_so_as_to_stop_itself_is_refused_at_once():
    """(It waited for its own stop, the shutdown timeout, then was killed, its ask
    answered 'will not handle the message: killed': seen failing, 5 s.)"""
    with hr.start_tree(reloading(Reloader, 1)) as tree:
        _trees["tree"] = tree
        ref = tree.lookup("svc/reloader")
        with pytest.raises(hr.UpdateFailed, match=r"svc/reloader: the update would stop"):
            ref.ask(reloading(Reloader, 2), timeout=2.0)
        assert ref.ask("version", timeout=WAIT) == 1
        # Changing others is its to do.
        new = sup(hr.ChildSpec("reloader", Reloader, kwargs={"version": 1}), worker("b"))
        assert ref.ask(new, timeout=WAIT) == "svc/a removed, svc/b added"
    _trees.clear()


def test_an_event_loop_child_awaiting_an_update_that_stops_it_is_refused_at_once(runtime):
    async def main() -> None:
        async with hr.open_tree(reloading(LoopReloader, 1)) as tree:
            _trees["tree"] = tree
            ref = tree.lookup("svc/reloader")
            with pytest.raises(hr.UpdateFailed, match=r"svc/reloader: the update would stop"):
                await asyncio.wait_for(hr.ask(ref, reloading(LoopReloader, 2)), 2.0)
            assert await hr.ask(ref, "version") == 1
            new = sup(hr.ChildSpec("reloader", LoopReloader, kwargs={"version": 1}), worker("b"))
            assert await hr.ask(ref, new) == "svc/a removed, svc/b added"

    asyncio.run(main())
    _trees.clear()


# -- an update awaited in a task that the child it stops spawned ----------------------


class TaskReloader(hr.AsyncioActor):
    """Updates its tree in a task that its handler spawns: the handler returns at once
    ("detached"), or waits for that task, in one of asyncio's ways. Its answer is
    the update's outcome: the plan's summary, or the error (the detached task's
    comes through `outcomes`, a future of the test's)."""

    def __init__(self, version: int = 1) -> None:
        super().__init__()
        self.version = version

    async def on_receive(self, message: Any) -> Any:
        if message == "version":
            return self.version
        how, spec, outcome = message
        update = self._update(spec)
        if how == "detached":
            task = asyncio.get_running_loop().create_task(update)
            task.add_done_callback(lambda t: _settle(outcome, t))
            return "detached"
        try:
            return await WAITING[how](update)
        except hr.UpdateFailed as failed:
            return failed
        except ExceptionGroup as failed:  # a TaskGroup's
            return failed.exceptions[0]

    async def _update(self, spec: hr.SupervisorSpec) -> str:
        return (await _trees["tree"].update_tree(spec)).summary()


def _settle(outcome: concurrent.futures.Future[Any], task: asyncio.Task[Any]) -> None:
    if task.cancelled():
        outcome.cancel()
    elif task.exception() is not None:
        outcome.set_exception(task.exception())  # type: ignore[arg-type]
    else:
        outcome.set_result(task.result())


async def _gathered(update: Coroutine[Any, Any, str]) -> str:
    [summary] = await asyncio.gather(update)
    return summary


async def _in_a_group(update: Coroutine[Any, Any, str]) -> str:
    async with asyncio.TaskGroup() as group:
        task = group.create_task(update)
        await asyncio.sleep(0)  # the task starts before the group's end is awaited
    return task.result()


WAITING: dict[str, Callable[[Coroutine[Any, Any, str]], Awaitable[str]]] = {
    "awaited": lambda update: asyncio.get_running_loop().create_task(update),
    "wait_for": lambda update: asyncio.wait_for(update, 10),  # (its own task, on 3.11)
    "gather": _gathered,
    "shield": asyncio.shield,
    "task group": _in_a_group,
}
"""The ways a handler waits for the task it spawns to await the update."""


def task_reloading(version: int, other: hr.ChildSpec) -> hr.SupervisorSpec:
    return sup(hr.ChildSpec("reloader", TaskReloader, kwargs={"version": version}), other)


WAYS = [
    ("awaited", "changed"),
    ("awaited", "removed"),
    ("wait_for", "changed"),
    ("gather", "removed"),
    ("shield", "changed"),
    ("task group", "removed"),
]
"""How a handler waits for the task it spawned, and what the update does to its child."""


@pytest.mark.timeout(3)
@pytest.mark.parametrize("own_loop", [False, True], ids=["hedgerows-loop", "running-loop"])
@pytest.mark.parametrize(("how", "change"), WAYS)
def test_a_task_its_handler_waits_for_awaiting_an_update_that_stops_the_child_is_refused(
    runtime: Any, own_loop: bool, change: str, how: str
) -> None:
    """(The update waited for the child's stop, the child's handler for the task, the
    task for the update, until the child's 5 s shutdown had it killed: seen failing.)"""
    a = worker("a")
    new = task_reloading(2, a) if change == "changed" else sup(a)

    async def main() -> None:
        opening = hr.open_tree(task_reloading(1, a), use_running_loop=own_loop)
        async with opening as tree:
            _trees["tree"] = tree
            ref = tree.lookup("svc/reloader")
            error = await hr.ask(ref, (how, new, None))
            assert isinstance(error, hr.UpdateFailed), error
            message = str(error)
            assert message.startswith(
                "svc/reloader: the update would stop the child whose handler waits for it, "
                "through the task that awaits the update"
            ), message
            assert "nothing running was touched" in message
            assert "a task of its own that the handler does not wait for" in message
            assert await hr.ask(ref, "version") == 1  # the same incarnation, untouched
            assert [c.id for c in await tree.which_children()] == ["reloader", "a"]

    try:
        asyncio.run(main())
    finally:
        _trees.clear()


@pytest.mark.timeout(3)
@pytest.mark.parametrize("own_loop", [False, True], ids=["hedgerows-loop", "running-loop"])
@pytest.mark.parametrize("change", ["changed", "removed"])
def test_a_task_of_a_child_that_its_handler_does_not_wait_for_updates_it_away(
    runtime: Any, own_loop: bool, change: str
) -> None:
    """The task runs on once its child has stopped, and gets the plan."""
    a = worker("a")
    new = task_reloading(2, a) if change == "changed" else sup(a)
    expected = "svc/reloader changed (kwargs)" if change == "changed" else "svc/reloader removed"

    async def main() -> None:
        opening = hr.open_tree(task_reloading(1, a), use_running_loop=own_loop)
        async with opening as tree:
            _trees["tree"] = tree
            events = EventRecorder(tree)
            outcome: concurrent.futures.Future[Any] = concurrent.futures.Future()
            assert await hr.ask(tree.lookup("svc/reloader"), ("detached", new, outcome)) == (
                "detached"
            )
            assert await asyncio.wrap_future(outcome) == expected
            [stopped] = events.matching(EventKind.STOPPED, "svc/reloader")
            assert stopped.reason == hr.SHUTDOWN  # stopped, not killed
            if change == "changed":
                assert await hr.ask(tree.lookup("svc/reloader"), "version") == 2
            else:
                assert [c.id for c in await tree.which_children()] == ["a"]

    try:
        asyncio.run(main())
    finally:
        _trees.clear()
