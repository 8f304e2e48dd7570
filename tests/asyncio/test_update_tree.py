"""``await tree.update_tree(spec)``: `hedgerow.update_tree` from asyncio code, with
its semantics and refusals, never blocking the loop; a cancelled await stops
waiting and the update runs to its end."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sys
import threading
from collections.abc import Iterator
from typing import Any

import helpers
import pytest
from helpers import FailingStart, Log, Worker, worker

import hedgerow as hr

pytestmark = pytest.mark.timeout(60)

WAIT = 10.0


@pytest.fixture(params=["default", "tiny"])
def switching(request: pytest.FixtureRequest) -> Iterator[None]:
    previous = sys.getswitchinterval()
    if request.param == "tiny":
        sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)


def sup(*children: hr.ChildSpec, **settings: Any) -> hr.SupervisorSpec:
    return hr.SupervisorSpec(list(children), name="svc", **settings)


class Gated:
    """A body whose on_start waits for `release` (set by the test's loop)."""

    def __init__(self, entered: threading.Event, release: threading.Event) -> None:
        super().__init__()
        self.entered = entered
        self.release = release

    def on_start(self) -> None:
        self.entered.set()
        self.release.wait(WAIT)

    def on_receive(self, message: Any) -> Any:
        return ("gated", message)


GatedActor = helpers.on(Gated, hr.Actor)  # on_start blocks: a thread actor's


def gated(child_id: str, entered: threading.Event, release: threading.Event) -> hr.ChildSpec:
    return hr.ChildSpec(child_id, GatedActor, args=(entered, release))


_children: dict[tuple[str, int], hr.ChildSpec] = {}


@pytest.fixture(autouse=True)
def _fresh_children() -> Iterator[None]:
    _children.clear()
    yield
    _children.clear()


def child(child_id: str, log: Log | None = None) -> hr.ChildSpec:
    """`helpers.worker`, made once per id in a test: under the ``mixed`` runtime each
    call alternates the class, and a new class is a changed child."""
    key = (child_id, id(log))
    if key not in _children:
        _children[key] = worker(child_id, log)
    return _children[key]


def incarnations(children: list[hr.ChildInfo]) -> dict[str, int]:
    return {c.id: c.incarnation for c in children}


def test_update_tree_changes_only_what_changed_and_returns_the_plan(runtime):
    log = Log()

    async def main() -> None:
        async with hr.open_tree(sup(child("a", log), child("b", log))) as tree:
            ref = tree.lookup("svc/b")
            new = sup(
                child("a", log),
                dataclasses.replace(child("b", log), restart="transient"),
                child("n", log),
            )
            plan = await tree.update_tree(new)
            assert plan.summary() == "svc/b changed (restart), svc/n added"
            assert incarnations(await tree.which_children()) == {"a": 1, "b": 2, "n": 1}
            assert tree.lookup("svc/b") is ref
            assert tree.spec is new
            assert tree.sync.spec is new

    asyncio.run(main())


def test_the_loop_runs_while_the_update_waits(runtime, switching):
    """An added child's on_start waits for an event that only the loop sets."""
    entered, release = threading.Event(), threading.Event()

    async def main() -> None:
        async with hr.open_tree(sup(child("a"))) as tree:
            updating = asyncio.ensure_future(
                tree.update_tree(sup(child("a"), gated("g", entered, release)))
            )
            assert await asyncio.to_thread(entered.wait, WAIT)  # needs the loop
            assert not updating.done()
            asyncio.get_running_loop().call_soon(release.set)
            plan = await updating
            assert plan.summary() == "svc/g added"

    asyncio.run(main())


def test_a_refused_update_raises_update_failed_naming_the_child_and_harms_nothing(runtime):
    log = Log()

    async def main() -> None:
        async with hr.open_tree(sup(child("a", log), child("b", log))) as tree:
            old = tree.spec
            typo = hr.ChildSpec("b", helpers.current[0].of(Worker), kwargs={"nmae": "b2"})
            with pytest.raises(hr.UpdateFailed) as failed:
                await tree.update_tree(sup(child("a", log), typo, child("n", log)))
            assert str(failed.value) == (
                "child 'svc/b' cannot take its args and kwargs: "
                "got an unexpected keyword argument 'nmae'; nothing running was touched"
            )
            failing = sup(child("a", log), hr.ChildSpec("b", FailingStart))
            with pytest.raises(hr.UpdateFailed, match=r"child 'svc/b' failed to start"):
                await tree.update_tree(failing)
            with pytest.raises(hr.UpdateFailed, match=r"root supervisor 'svc' changed"):
                await tree.update_tree(sup(child("a", log), strategy="one_for_all"))
            assert tree.spec is old
            assert [c.id for c in await tree.which_children()] == ["a", "b"]
            assert await hr.ask(tree.lookup("svc/a"), "still") == ("a", 1, "still")

    asyncio.run(main())
    assert "n" not in log.of("start")


@pytest.mark.parametrize("what", ["tree.toml", None, {"children": []}])
def test_update_tree_of_what_is_not_a_spec_is_a_type_error_that_says_so(what):
    async def main() -> None:
        async with hr.open_tree(sup(child("a"))) as tree:
            with pytest.raises(TypeError, match="SupervisorSpec"):
                await tree.update_tree(what)

    asyncio.run(main())


def test_the_blocking_update_tree_refuses_an_asyncio_tree_saying_what_to_await():
    async def main() -> None:
        async with hr.open_tree(sup(child("a"))) as tree:
            with pytest.raises(TypeError, match=r"await tree\.update_tree\(spec\)"):
                hr.update_tree(tree, sup(child("a"), child("b")))  # type: ignore[arg-type]
            assert [c.id for c in await tree.which_children()] == ["a"]

    asyncio.run(main())


def test_cancelling_the_await_leaves_the_update_running_to_its_end(runtime, switching):
    entered, release = threading.Event(), threading.Event()
    new = sup(child("a"), gated("g", entered, release), child("n"))

    async def main() -> None:
        async with hr.open_tree(sup(child("a"))) as tree:
            updating = asyncio.ensure_future(tree.update_tree(new))
            assert await asyncio.to_thread(entered.wait, WAIT)
            updating.cancel()
            with pytest.raises(asyncio.CancelledError):
                await updating
            release.set()
            # A next update waits for the first one's end, then starts from it.
            plan = await tree.update_tree(sup(child("a"), gated("g", entered, release)))
            assert plan.summary() == "svc/n removed"
            assert [c.id for c in await tree.which_children()] == ["a", "g"]

    asyncio.run(main())


def test_an_update_cancelled_while_it_waits_for_another_never_runs(runtime):
    entered, release = threading.Event(), threading.Event()

    async def main() -> None:
        async with hr.open_tree(sup(child("a"))) as tree:
            first = asyncio.ensure_future(
                tree.update_tree(sup(child("a"), gated("g", entered, release)))
            )
            assert await asyncio.to_thread(entered.wait, WAIT)
            second = asyncio.ensure_future(tree.update_tree(sup(child("a"), child("x"))))
            await asyncio.sleep(0)
            second.cancel()
            with pytest.raises(asyncio.CancelledError):
                await second
            release.set()
            assert (await first).summary() == "svc/g added"
            assert [c.id for c in await tree.which_children()] == ["a", "g"]

    asyncio.run(main())


@pytest.mark.parametrize("other", ["blocking", "another loop"])
def test_an_update_cancelled_while_an_update_from_elsewhere_runs_never_runs(runtime, other):
    """The update running is a blocking one from another thread, or an awaited one of
    another loop's: the awaited update waits for it (in its thread, on the tree's lock)
    and, cancelled then, never runs. (After a blocking one, it ran once that had
    ended, the cancel notwithstanding: seen failing.)"""
    entered, release = threading.Event(), threading.Event()
    first_spec = sup(child("a"), gated("g", entered, release))

    def first_update(tree: hr.AsyncioTree) -> hr.UpdatePlan:
        if other == "blocking":
            return hr.update_tree(tree.sync, first_spec)
        return asyncio.run(tree.update_tree(first_spec))

    async def main() -> None:
        async with hr.open_tree(sup(child("a"))) as tree:
            first = asyncio.ensure_future(asyncio.to_thread(first_update, tree))
            assert await asyncio.to_thread(entered.wait, WAIT)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(tree.update_tree(sup(child("a"), child("x"))), 0.05)
            release.set()
            assert (await first).summary() == "svc/g added"
            for thread in threading.enumerate():  # the cancelled one's, if it ran
                if thread.name == "hedgerow update svc":
                    await asyncio.to_thread(thread.join, WAIT)
            assert [c.id for c in await tree.which_children()] == ["a", "g"]
            assert tree.spec == first_spec

    asyncio.run(main())


def test_updates_from_many_tasks_run_one_at_a_time(runtime, switching):
    async def main() -> None:
        async with hr.open_tree(sup(child("a"))) as tree:
            children = [worker(f"c{i}") for i in range(5)]
            specs = [sup(child("a"), *children[:n]) for n in range(6)]
            plans = await asyncio.gather(*(tree.update_tree(spec) for spec in specs))
            assert [p.summary() for p in plans] == [
                "nothing changed",
                *(f"svc/c{n} added" for n in range(5)),
            ]
            ids = [c.id for c in await tree.which_children()]
            assert ids == ["a", *(f"c{i}" for i in range(5))]

    asyncio.run(main())


def test_an_update_whose_loop_closed_midway_runs_to_its_end_quietly(runtime, caplog):
    entered, release = threading.Event(), threading.Event()
    tree_holder: list[hr.AsyncioTree] = []

    async def main() -> None:
        tree = await hr.open_tree(sup(child("a")))
        tree_holder.append(tree)
        updating = asyncio.ensure_future(
            tree.update_tree(sup(child("a"), gated("g", entered, release)))
        )
        assert await asyncio.to_thread(entered.wait, WAIT)
        assert not updating.done()
        release.set()
        # asyncio.run ends now: it cancels the update's await, and the tree's guard
        # stops the tree while the update goes on (it may fail then: a warning)

    caplog.set_level(logging.WARNING)
    asyncio.run(main())
    tree = tree_holder[0]
    assert tree.sync.wait(WAIT) == hr.SHUTDOWN
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


def test_an_update_of_event_loop_children_on_the_applications_loop():
    """The tree's event-loop actors run on this very loop: the update's steps stop
    and start them there while the awaiting task waits."""
    loop_worker = hr.ChildSpec
    cls = helpers.on(Worker, hr.AsyncioActor)

    async def main() -> None:
        old = sup(loop_worker("a", cls, args=("a",)), loop_worker("b", cls, args=("b",)))
        async with hr.open_tree(old, use_running_loop=True) as tree:
            new = sup(loop_worker("a", cls, args=("a",)), loop_worker("b", cls, args=("b2",)))
            plan = await tree.update_tree(new)
            assert plan.summary() == "svc/b changed (args)"
            assert await hr.ask(tree.lookup("svc/b"), "hi") == ("b2", 2, "hi")

    asyncio.run(main())


def test_a_failure_no_longer_awaited_is_a_warning(runtime):
    entered, release = threading.Event(), threading.Event()
    failed = threading.Event()
    new = sup(child("a"), gated("g", entered, release), hr.ChildSpec("f", FailingStart))

    records: list[logging.LogRecord] = []

    class Noted(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "no longer awaited" in record.getMessage():
                records.append(record)
                failed.set()

    noted = Noted()
    logging.getLogger("hedgerow.supervision").addHandler(noted)
    try:

        async def main() -> None:
            async with hr.open_tree(sup(child("a"))) as tree:
                updating = asyncio.ensure_future(tree.update_tree(new))
                assert await asyncio.to_thread(entered.wait, WAIT)
                updating.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await updating
                release.set()
                assert await asyncio.to_thread(failed.wait, WAIT)
                assert [c.id for c in await tree.which_children()] == ["a"]  # undone

        asyncio.run(main())
    finally:
        logging.getLogger("hedgerow.supervision").removeHandler(noted)
    [record] = records
    assert record.levelname == "WARNING"
    assert "child 'svc/f' failed to start" in record.getMessage()


def test_an_update_awaited_from_another_loop_than_the_trees(runtime):
    """The tree opened on one loop; an update awaited from a loop in another thread
    while the first loop's update still runs waits for it, then runs."""
    entered, release, asking = threading.Event(), threading.Event(), threading.Event()

    async def other(tree: hr.AsyncioTree) -> str:
        updating = tree.update_tree(sup(child("a"), gated("g", entered, release), child("x")))
        asking.set()  # (the update's first step, up to its wait, follows without a pause)
        return (await updating).summary()

    async def main() -> None:
        async with hr.open_tree(sup(child("a"))) as tree:
            added = sup(child("a"), gated("g", entered, release))
            first = asyncio.ensure_future(tree.update_tree(added))
            assert await asyncio.to_thread(entered.wait, WAIT)
            second = asyncio.ensure_future(asyncio.to_thread(asyncio.run, other(tree)))
            assert await asyncio.to_thread(asking.wait, WAIT)
            release.set()
            assert (await first).summary() == "svc/g added"
            assert await second == "svc/x added"

    asyncio.run(main())


def test_an_update_awaited_after_another_runs_after_it_even_if_the_one_before_ended_meanwhile():
    """Updates run in the order awaited: one awaited while the one before it ran
    keeps its place after that one has ended. (It took its place only when its
    task woke: a later update whose first step came before that wake-up ran
    first: seen failing.)"""
    entered, release = threading.Event(), threading.Event()
    spec_a = sup(child("a"), gated("g", entered, release))
    spec_b = sup(child("a"), gated("g", entered, release), child("x"))
    spec_c = sup(child("a"), gated("g", entered, release), child("x"), child("y"))

    async def main() -> None:
        async with hr.open_tree(sup(child("a"))) as tree:
            first = asyncio.ensure_future(tree.update_tree(spec_a))
            assert await asyncio.to_thread(entered.wait, WAIT)
            second = asyncio.ensure_future(tree.update_tree(spec_b))
            await asyncio.sleep(0)  # it waits for the first
            release.set()
            # Hold the loop until the first has ended: the second's wake-up is queued.
            for thread in threading.enumerate():
                if thread.name == "hedgerow update svc":
                    thread.join(WAIT)
            third = asyncio.ensure_future(tree.update_tree(spec_c))
            plans = [await first, await second, await third]
            assert [p.summary() for p in plans] == ["svc/g added", "svc/x added", "svc/y added"]

    asyncio.run(main())
