"""`update_tree` overtaken by the tree's stop: its failure says that the tree stopped,
not that each step and each undo found no supervisor."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from helpers import start, worker

import hedgerow as hr
from hedgerow.supervision._update import update_tree

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
