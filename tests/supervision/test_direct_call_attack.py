"""Attacks on the call of an idle loop supervisor handled at once (`call_at_once`,
0e64871): whatever the caller, the handling must be the message path's, with
the same outcome, the same events in the same order, and nothing left half
done. Each scenario runs twice: ``direct`` (as shipped) and ``message`` (the
direct path turned off, by making `call_at_once` decline), and the two must agree.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
import threading
from typing import Any

import pykka
import pytest

import hedgerow as hr
from hedgerow.actors._ask import AskTimeout
from hedgerow.actors._loop import runtime_for
from hedgerow.supervision import _async_tree, _loop_supervisor
from hedgerow.testing import Faults

pytestmark = [
    pytest.mark.timeout(60),
    # The blocked-loop watchdog's heartbeat, and its reports on a busy machine,
    # would change the events and the ways of calling these tests compare.
    pytest.mark.usefixtures("no_block_reports"),
]


mark: contextvars.ContextVar[str] = contextvars.ContextVar("attack_mark", default="unset")


class Path:
    """Which path a test runs (`direct`), and whether each call took the direct one."""

    def __init__(self, *, direct: bool, taken: list[bool]) -> None:
        self.direct = direct
        self.taken = taken

    def check(self) -> None:
        """The direct variant took the direct path at least once; the other, never."""
        assert (True in self.taken) == self.direct


@pytest.fixture(params=["message", "direct"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``direct``: as shipped; ``message``: every call goes by message."""
    direct = request.param == "direct"
    return Path(direct=direct, taken=_choose(monkeypatch, direct=direct))


def _choose(patch: pytest.MonkeyPatch, *, direct: bool) -> list[bool]:
    """Take the direct path when it is open (`direct`), or never; whether each call took it."""
    seen: list[bool] = []
    original = _loop_supervisor.call_at_once

    def chosen(*args: Any) -> Any:
        result = original(*args) if direct else None
        seen.append(result is not None)
        return result

    patch.setattr(_async_tree, "call_at_once", chosen)
    return seen


def _events(tree: Any) -> list[tuple[str, str, int, str]]:
    seen: list[tuple[str, str, int, str]] = []
    tree.events.subscribe(
        lambda e: seen.append((e.kind.value, e.path, e.incarnation, str(e.reason)))
    )
    return seen


def _pool(actor_class: type[Any], **child: Any) -> hr.SupervisorSpec:
    return hr.SupervisorSpec(
        [hr.ChildSpec("w", actor_class, restart="temporary", **child)],
        strategy="simple_one_for_one",
        runtime="loop",
    )


# -- a child whose call has the supervisor kill that very child ------------------------


class StopsItself(hr.AsyncioActor):
    """Asks its supervisor to stop it (brutal_kill): the kill must cancel this
    handler at its await, as it does when the call goes by message."""

    def __init__(self, tree: Any, log: list[Any]) -> None:
        super().__init__()
        self.tree = tree
        self.log = log

    async def on_receive(self, message: Any) -> Any:
        self.log.append("before")
        try:
            await self.tree.stop_child(self.actor_child_ref)
        except asyncio.CancelledError:
            self.log.append("cancelled")
            raise
        self.log.append(("ran on after its kill", self.actor_stopped.is_set()))
        return "answered"


def test_a_child_that_has_its_supervisor_kill_it_runs_no_more_of_its_handler(path):
    log: list[Any] = []

    async def main() -> tuple[Any, list[Any]]:
        spec = _pool(StopsItself, shutdown="brutal_kill")
        async with hr.open_tree(spec, use_running_loop=True) as tree:
            events = _events(tree)
            ref = await tree.start_child(tree, log)
            with pytest.raises(hr.DeadLetterError):
                await ref.ask("go", block=False)
            for _ in range(3):
                await asyncio.sleep(0)
            return list(log), events

    seen, events = asyncio.run(main())
    assert path.taken[-1] == path.direct  # the child's own call
    assert events[:3] == [
        ("started", "root/w-1", 1, "None"),
        ("dead_letter", "root/w-1", 0, "killed"),
        ("stopped", "root/w-1", 1, "killed"),
    ]
    assert seen == ["before", "cancelled"]


class StopsItsParent(hr.AsyncioActor):
    """A grandchild that asks the root to stop its own supervisor (brutal_kill):
    the root takes over that supervisor's children, this one among them."""

    def __init__(self, holder: dict[str, Any], log: list[Any]) -> None:
        super().__init__()
        self.holder = holder
        self.log = log

    async def on_receive(self, message: Any) -> Any:
        self.log.append("before")
        try:
            await self.holder["tree"].stop_child("sub")
        except asyncio.CancelledError:
            self.log.append("cancelled")
            raise
        self.log.append("ran on after its kill")
        return "answered"


def test_a_grandchild_killed_through_its_supervisors_kill_runs_no_more_of_its_handler(path):
    log: list[Any] = []

    async def main() -> list[Any]:
        holder: dict[str, Any] = {}
        sub = hr.SupervisorSpec(
            [hr.ChildSpec("g", StopsItsParent, args=(holder, log), shutdown="brutal_kill")],
            runtime="loop",
        )
        spec = hr.SupervisorSpec(
            [hr.ChildSpec("sub", sub, shutdown="brutal_kill", restart="temporary")],
            runtime="loop",
        )
        async with hr.open_tree(spec, use_running_loop=True) as tree:
            holder["tree"] = tree
            ref = tree.lookup("root/sub/g")
            with pytest.raises((hr.DeadLetterError, pykka.ActorDeadError)):
                await ref.ask("go", block=False)
            for _ in range(3):
                await asyncio.sleep(0)
            return list(log)

    assert asyncio.run(main()) == ["before", "cancelled"]
    assert path.taken[-1] == path.direct  # the grandchild's call


# -- what the supervisor's run sees of its caller -------------------------------------


class SeesItsTask(hr.AsyncioActor):
    """A plain on_start, run within its supervisor's handling of start_child."""

    def __init__(self, seen: list[Any]) -> None:
        super().__init__()
        self.seen = seen

    def on_start(self) -> None:
        self.seen.append(asyncio.current_task())
        self.seen.append(mark.get())
        mark.set("set by the child")


def test_a_childs_plain_on_start_runs_outside_any_task_as_by_message(path):
    seen: list[Any] = []

    async def main() -> str:
        mark.set("the caller's")
        async with hr.open_tree(_pool(SeesItsTask), use_running_loop=True) as tree:
            await asyncio.sleep(0)  # what the tree's start left to run, first
            await tree.start_child(seen)
        return mark.get()

    assert asyncio.run(main()) == "the caller's"  # nothing leaks back
    assert path.taken == [path.direct]
    assert seen[1] == "the caller's"  # the caller's context flows in, both ways
    assert seen[0] is None  # run by the loop as a callback: no task


class AwaitsOnStart(hr.AsyncioActor):
    def __init__(self, seen: list[Any]) -> None:
        super().__init__()
        self.seen = seen

    async def on_start(self) -> None:
        self.seen.append(mark.get())
        mark.set("set by the child")
        await asyncio.sleep(0)
        self.seen.append(mark.get())


def test_a_childs_async_on_start_sees_the_callers_context_and_leaks_nothing_back(path):
    seen: list[Any] = []

    async def main() -> list[str]:
        marks = []
        async with hr.open_tree(_pool(AwaitsOnStart), use_running_loop=True) as tree:
            for n in range(3):
                mark.set(f"caller {n}")
                await tree.start_child(seen)
                marks.append(mark.get())
        return marks

    assert asyncio.run(main()) == ["caller 0", "caller 1", "caller 2"]
    path.check()
    assert seen == [
        "caller 0",
        "set by the child",
        "caller 1",
        "set by the child",
        "caller 2",
        "set by the child",
    ]


# -- differential: the same scenario by both paths gives the same events and answers -----


class Crashy(hr.AsyncioActor):
    def __init__(self, *args: Any) -> None:
        super().__init__()
        self.args = args

    def on_receive(self, message: Any) -> Any:
        if message == "boom":
            raise RuntimeError("boom")
        return (self.args, message, self.actor_incarnation)


def _run_scenario(monkeypatch: pytest.MonkeyPatch, *, direct: bool, settle: bool) -> list[Any]:
    """Calls interleaved with tells (crashes, restarts) on one loop; what was seen."""
    with monkeypatch.context() as patch:
        taken = _choose(patch, direct=direct)
        out: list[Any] = []

        async def main() -> None:
            spec = hr.SupervisorSpec(
                [
                    hr.ChildSpec("a", Crashy, args=("a",)),
                    hr.ChildSpec("b", Crashy, args=("b",), shutdown="brutal_kill"),
                ],
                runtime="loop",
                max_restarts=50,
                period=1000,
            )
            async with hr.open_tree(spec, use_running_loop=True) as tree:
                events = _events(tree)
                a = tree.lookup("root/a")
                for n in range(4):
                    a.tell("boom")  # the crash and the restart race with the calls
                    if settle:  # the crash's handling, then the supervisor's, go first
                        for _ in range(4):
                            await asyncio.sleep(0)
                    c = await tree.start_child(hr.ChildSpec(f"c{n}", Crashy, args=(n,)))
                    out.append(c.path)
                    out.append([(i.id, i.state) for i in await tree.which_children()])
                    await tree.stop_child("b")  # brutal: killed at once
                    out.append((await tree.restart_child("b")).path)
                    out.append(await a.ask("hi", block=False))
                    await tree.stop_child(f"c{n}")
                    await tree.delete_child(f"c{n}")
                    out.append((await tree.count_children()).active)
                with pytest.raises(hr.ChildNotFound):
                    await tree.stop_child("nobody")
                out.append("stopping")
            out.append(events)

        asyncio.run(main())
        assert any(taken) == direct
        return out


def test_calls_interleaved_with_crashes_give_the_same_answers_and_events(monkeypatch):
    by_message = _run_scenario(monkeypatch, direct=False, settle=True)
    at_once = _run_scenario(monkeypatch, direct=True, settle=True)
    assert at_once[:-1] == by_message[:-1]
    assert at_once[-1] == by_message[-1]


def test_calls_right_after_a_tell_give_the_same_answers(monkeypatch):
    by_message = _run_scenario(monkeypatch, direct=False, settle=False)
    at_once = _run_scenario(monkeypatch, direct=True, settle=False)
    assert at_once[:-1] == by_message[:-1]


def test_calls_right_after_a_tell_give_the_same_events_in_the_same_order(monkeypatch):
    by_message = _run_scenario(monkeypatch, direct=False, settle=False)
    at_once = _run_scenario(monkeypatch, direct=True, settle=False)
    assert at_once[-1] == by_message[-1]


class Counts(hr.AsyncioActor):
    def on_receive(self, message: Any) -> Any:
        if message == "boom":
            raise RuntimeError("boom")
        return self.actor_incarnation


def test_a_call_lets_the_loop_handle_what_was_told_before_it(path):
    """A tell, then two awaited calls: by message, the loop runs the told child's
    crash and the supervisor's restart between them (each call awaits a turn of
    the loop); at once, neither has happened yet when the second is answered."""

    async def main() -> tuple[int, int]:
        spec = hr.SupervisorSpec([hr.ChildSpec("a", Counts)], runtime="loop")
        async with hr.open_tree(spec, use_running_loop=True) as tree:
            events = _events(tree)
            a = tree.lookup("root/a")
            a.tell("boom")
            await tree.count_children()
            await tree.count_children()
            restarts = sum(1 for e in events if e[0] == "restarted")
            return restarts, a.incarnation.actor_incarnation

    assert asyncio.run(main()) == (1, 2)


# -- a supervisor that crashes on the call it handles at once: escalation -------------


class Idle(hr.AsyncioActor):
    def on_receive(self, message: Any) -> Any:
        return message


def _escalation(monkeypatch: pytest.MonkeyPatch, *, direct: bool) -> list[Any]:
    with monkeypatch.context() as patch:
        taken = _choose(patch, direct=direct)
        out: list[Any] = []

        async def main() -> None:
            sub = hr.SupervisorSpec(
                [hr.ChildSpec("w", Idle, restart="temporary")],
                strategy="simple_one_for_one",
                runtime="loop",
            )
            spec = hr.SupervisorSpec(
                [hr.ChildSpec("a", Idle), hr.ChildSpec("sub", sub), hr.ChildSpec("c", Idle)],
                strategy="rest_for_one",
                runtime="loop",
                max_restarts=1,
                period=1000,
            )
            async with hr.open_tree(spec, use_running_loop=True) as tree:
                events = _events(tree)
                handle = await tree.supervisor("sub")
                out.append((await handle.start_child()).path)
                with Faults(tree.sync) as faults:
                    faults.crash("root/sub", RuntimeError("sub crashed"), at_message=1)
                    with pytest.raises(RuntimeError, match="sub crashed"):
                        await handle.start_child()
                    for _ in range(10):  # the restart goes by message either way
                        await asyncio.sleep(0)
                    out.append((await handle.start_child()).path)
                    faults.crash("root/sub", RuntimeError("again"), at_message=1)
                    with pytest.raises(RuntimeError, match="again"):
                        await handle.start_child()
                    out.append(repr(await tree.wait()))  # the root gave up (max_restarts=1)
            out.append(events)

        asyncio.run(main())
        assert any(taken) == direct
        return out


def test_a_supervisor_crashing_on_a_call_escalates_as_by_message(monkeypatch):
    by_message = _escalation(monkeypatch, direct=False)
    at_once = _escalation(monkeypatch, direct=True)
    assert at_once == by_message


# -- direct calls raced by calls from other threads and other loops -------------------


@pytest.fixture
def switchy() -> Any:
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


ROUNDS = 150


def _from_a_thread(tree: Any, go: threading.Event) -> int:
    """Blocking calls through the tree's `Tree` (by message, from this thread)."""
    go.wait()
    kept = 0
    for n in range(ROUNDS):
        ref = tree.sync.start_child()
        assert tree.sync.count_children().active >= 1
        if n % 2:
            tree.sync.stop_child(ref)
        else:
            kept += 1
    return kept


def _from_another_loop(tree: Any, go: threading.Event) -> int:
    """Awaited calls from another loop (by message)."""

    async def calls() -> int:
        handle = hr.AsyncioSupervisorHandle(tree.ref)
        kept = 0
        for n in range(ROUNDS):
            ref = await handle.start_child()
            if n % 3:
                await handle.stop_child(ref)
            else:
                kept += 1
        return kept

    go.wait()
    return asyncio.run(calls())


async def _on_the_loop(tree: Any) -> int:
    """Awaited calls on the supervisor's loop (at once when it is idle)."""
    kept = 0
    for n in range(ROUNDS):
        ref = await tree.start_child()
        await tree.count_children()
        if n % 4:
            await tree.stop_child(ref)
        else:
            kept += 1
        if n % 5 == 0:
            await asyncio.sleep(0)
    return kept


def test_direct_calls_raced_by_other_threads_and_loops_lose_nothing(switchy, monkeypatch):
    """Tasks on the supervisor's loop (direct), threads (blocking Tree calls) and
    another loop (awaited asks) start and stop children at once: every call is
    answered, the supervisor counts what was started less what was stopped, its
    loop reports no error, and every actor of the loop is idle at the end."""
    taken = _choose(monkeypatch, direct=True)
    errors: list[Any] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: errors.append(context))
        async with hr.open_tree(_pool(Idle), use_running_loop=True) as tree:
            go = threading.Event()
            workers = [
                loop.run_in_executor(None, _from_a_thread, tree, go),
                loop.run_in_executor(None, _from_a_thread, tree, go),
                loop.run_in_executor(None, _from_another_loop, tree, go),
            ]
            go.set()
            kept = sum(await asyncio.gather(*workers, _on_the_loop(tree), _on_the_loop(tree)))
            assert (await tree.count_children()).active == kept
            assert len(await tree.which_children()) == kept
            for _ in range(3):
                await asyncio.sleep(0)
            assert not tree.ref._actor_weakref()._hr_busy
            assert runtime_for(loop).busy == 0

    asyncio.run(main())
    assert errors == []
    assert any(taken)


# -- a direct call that waits, when its caller is cancelled or its supervisor stopped --


class Gate:
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


def _cancelled_caller(monkeypatch: pytest.MonkeyPatch, *, direct: bool) -> list[Any]:
    with monkeypatch.context() as patch:
        taken = _choose(patch, direct=direct)
        out: list[Any] = []

        async def main() -> None:
            gate = Gate()
            async with hr.open_tree(_pool(Waits), use_running_loop=True) as tree:
                events = _events(tree)
                caller = asyncio.ensure_future(tree.start_child(gate))
                await gate.entered.wait()  # the supervisor awaits the child's start
                caller.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await caller
                gate.release.set()
                out.append((await tree.count_children()).active)  # started all the same
                out.append((await tree.start_child(gate)).path)  # and idle again
                out.append(tree.ref._actor_weakref()._hr_busy)
            out.append(events)

        asyncio.run(main())
        assert taken[0] == direct
        return out


def test_cancelling_a_direct_call_that_waits_leaves_the_supervisor_as_by_message(monkeypatch):
    by_message = _cancelled_caller(monkeypatch, direct=False)
    at_once = _cancelled_caller(monkeypatch, direct=True)
    assert at_once == by_message
    assert by_message[0] == 1


def _stopped_while_waiting(
    monkeypatch: pytest.MonkeyPatch, *, direct: bool, shutdown: Any
) -> list[Any]:
    with monkeypatch.context() as patch:
        taken = _choose(patch, direct=direct)
        out: list[Any] = []

        async def main() -> None:
            gate = Gate()
            sub = hr.SupervisorSpec(
                [hr.ChildSpec("w", Waits, restart="temporary", shutdown="brutal_kill")],
                strategy="simple_one_for_one",
                runtime="loop",
            )
            spec = hr.SupervisorSpec(
                [hr.ChildSpec("sub", sub, shutdown=shutdown, restart="temporary")],
                runtime="loop",
            )
            async with hr.open_tree(spec, use_running_loop=True) as tree:
                events = _events(tree)
                handle = await tree.supervisor("sub")
                caller = asyncio.ensure_future(handle.start_child(gate))
                await gate.entered.wait()  # sub awaits its child's start
                await tree.stop_child("sub")  # sub cannot read its stop: killed
                try:
                    out.append(await caller)
                except BaseException as error:
                    out.append(type(error).__name__)
                out.append((await tree.count_children()).active)
            out.append(events)

        asyncio.run(main())
        assert (True in taken) == direct
        return out


@pytest.mark.parametrize("shutdown", ["brutal_kill", 0.05])
def test_a_supervisor_stopped_by_its_parent_during_a_direct_call_as_by_message(
    monkeypatch, shutdown
):
    by_message = _stopped_while_waiting(monkeypatch, direct=False, shutdown=shutdown)
    at_once = _stopped_while_waiting(monkeypatch, direct=True, shutdown=shutdown)
    assert at_once == by_message


# -- direct calls raced by the parent stopping, killing and restarting the supervisor --


class Starts(hr.AsyncioActor):
    pass


def _churn(tree: Any, go: threading.Event, done: threading.Event, churned: threading.Event) -> int:
    """From a thread: stop (brutal kill) and restart the nested supervisor, over and over."""
    go.wait()
    rounds = 0
    while rounds < 3 or (not done.is_set() and rounds < 200):
        tree.sync.stop_child("sub")
        tree.sync.restart_child("sub")
        rounds += 1
        if rounds == 3:
            churned.set()
    return rounds


async def _call_through(
    handle: Any, done: threading.Event, churned: threading.Event
) -> dict[str, int]:
    """Calls of the nested supervisor, on its loop, while it is killed and restarted
    (at least 300, and on until the other thread has done a few rounds)."""
    outcomes: dict[str, int] = {}
    n = 0
    while n < 300 or (not churned.is_set() and n < 100_000):
        try:
            if n % 2:
                await handle.start_child()
            else:
                await handle.count_children()
            kind = "answered"
        except (pykka.ActorDeadError, hr.DeadLetterError, hr.StartError) as error:
            kind = type(error).__name__
        outcomes[kind] = outcomes.get(kind, 0) + 1
        if n % 7 == 0:
            await asyncio.sleep(0)
        n += 1
    done.set()
    return outcomes


@pytest.mark.parametrize("direct", [False, True], ids=["message", "direct"])
def test_calls_while_the_parent_kills_and_restarts_the_supervisor(switchy, monkeypatch, direct):
    """Every call is answered or refused (the supervisor dead, the message a dead
    letter, a start cut short by the kill), none waits for its timeout; the loop
    reports nothing; no child is left running once the tree has stopped."""
    taken = _choose(monkeypatch, direct=direct)
    errors: list[Any] = []

    async def main() -> dict[str, int]:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: errors.append(context))
        sub = hr.SupervisorSpec(
            [hr.ChildSpec("w", Starts, restart="temporary")],
            strategy="simple_one_for_one",
            runtime="loop",
        )
        spec = hr.SupervisorSpec(
            [hr.ChildSpec("sub", sub, shutdown="brutal_kill")],
            max_restarts=1000,
            period=1,
        )
        async with hr.open_tree(spec, use_running_loop=True) as tree:
            handle = hr.AsyncioSupervisorHandle(tree.lookup("root/sub"), timeout=20)
            go, done, churned = threading.Event(), threading.Event(), threading.Event()
            churn = loop.run_in_executor(None, _churn, tree, go, done, churned)
            go.set()
            outcomes = await _call_through(handle, done, churned)
            assert await churn >= 3
            await asyncio.sleep(0)
            assert (await handle.count_children()).active >= 0
            return outcomes

    left: list[Any] = []
    try:
        outcomes = asyncio.run(main())
    finally:
        # A child started as its supervisor was abandoned was left running before
        # d2b782e (tests/supervision/test_abandoned_start_attack.py); if one is, its
        # loop is closed: end it, so that the next test starts clean.
        left.extend(pykka.ActorRegistry.get_all())
        for ref in left:
            ref._actor_weakref()._hr_kill()
    assert left == []
    assert errors == []
    assert outcomes.get("answered", 0) >= 1
    assert any(taken) == direct


# -- a supervisor failing on a call: a factory that raises SystemExit ------------------


def _exits(*_args: Any) -> Any:
    raise SystemExit("the factory exits")


def _factory_exits(monkeypatch: pytest.MonkeyPatch, *, direct: bool) -> list[Any]:
    with monkeypatch.context() as patch:
        taken = _choose(patch, direct=direct)
        out: list[Any] = []

        async def main() -> None:
            sub = hr.SupervisorSpec(
                [hr.ChildSpec("w", _exits, restart="temporary")],
                strategy="simple_one_for_one",
                runtime="loop",
            )
            spec = hr.SupervisorSpec(
                [hr.ChildSpec("a", Idle), hr.ChildSpec("sub", sub)],
                runtime="loop",
                max_restarts=5,
                period=1000,
            )
            async with hr.open_tree(spec, use_running_loop=True) as tree:
                events = _events(tree)
                handle = await tree.supervisor("sub")
                await asyncio.sleep(0)
                try:
                    out.append(await handle.start_child())
                except BaseException as error:
                    out.append(type(error).__name__)
                for _ in range(10):
                    await asyncio.sleep(0)
                out.append((await tree.count_children()).active)
                out.append((await handle.count_children()).active)
            out.append(events)

        asyncio.run(main())
        assert any(taken) == direct
        return out


def test_a_supervisor_failing_on_a_call_fails_as_by_message(monkeypatch):
    by_message = _factory_exits(monkeypatch, direct=False)
    at_once = _factory_exits(monkeypatch, direct=True)
    assert at_once == by_message


# -- calls racing the tree's own stop ---------------------------------------------------


async def _start_until_refused(tree: Any) -> list[str]:
    outcomes = []
    for _ in range(200):
        try:
            await tree.start_child()
            outcomes.append("started")
        except (pykka.ActorDeadError, hr.DeadLetterError, hr.StartError) as error:
            outcomes.append(type(error).__name__)
            break
        await asyncio.sleep(0)
    return outcomes


@pytest.mark.parametrize("direct", [False, True], ids=["message", "direct"])
def test_calls_racing_the_trees_stop_end_and_leave_nothing_running(switchy, monkeypatch, direct):
    taken = _choose(monkeypatch, direct=direct)

    async def main() -> list[list[str]]:
        tree = await hr.open_tree(_pool(Idle), use_running_loop=True)
        callers = [asyncio.ensure_future(_start_until_refused(tree)) for _ in range(3)]
        for _ in range(20):
            await asyncio.sleep(0)
        await tree.stop()
        return await asyncio.wait_for(asyncio.gather(*callers), 20)

    results = asyncio.run(main())
    assert all(result and result[-1] != "started" for result in results)  # each was refused
    assert pykka.ActorRegistry.get_all() == []
    assert direct or not any(taken)  # (three callers at once: the loop has work ready, by message)


# -- a child calling the supervisor that is starting it ---------------------------------


class AsksInOnStart(hr.AsyncioActor):
    """Its on_start awaits a call of the supervisor that waits for that on_start."""

    def __init__(self, holder: dict[str, Any], log: list[Any]) -> None:
        super().__init__()
        self.holder = holder
        self.log = log

    async def on_start(self) -> None:
        handle = hr.AsyncioSupervisorHandle(self.holder["tree"].ref, timeout=0.2)
        try:
            self.log.append((await handle.count_children()).active)
        except AskTimeout:
            self.log.append("timed out")


def _asks_in_on_start(monkeypatch: pytest.MonkeyPatch, *, direct: bool) -> list[Any]:
    with monkeypatch.context() as patch:
        _choose(patch, direct=direct)
        log: list[Any] = []

        async def main() -> None:
            holder: dict[str, Any] = {}
            async with hr.open_tree(_pool(AsksInOnStart), use_running_loop=True) as tree:
                holder["tree"] = tree
                events = _events(tree)
                await asyncio.sleep(0)
                log.append((await tree.start_child(holder, log)).path)
                log.append((await tree.count_children()).active)  # the wait answered it after
                log.append(events)

        asyncio.run(main())
        return log


def test_a_child_calling_the_supervisor_that_starts_it_times_out_as_by_message(monkeypatch):
    by_message = _asks_in_on_start(monkeypatch, direct=False)
    at_once = _asks_in_on_start(monkeypatch, direct=True)
    assert at_once == by_message
    assert by_message[:3] == ["timed out", "root/w-1", 1]
