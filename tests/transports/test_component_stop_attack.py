"""Attacks on a stop of an async component whose lifecycle handler never finishes:
handlers that await for ever, swallow their cancellation, raise while cancelled,
block their thread; stops racing a join; restart storms; AsyncioTree stops.

What must hold in every case: the stop ends within the child's shutdown (abandoned
or killed as the components guide says), the tree never hangs, and nothing leaks
(threads, router sessions)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from helpers import start, wait_threads_end
from transports.conftest import IMPLEMENTATIONS, Implementation

import hedgerow as hr
from hedgerow import EventKind
from hedgerow.components._component import Component
from hedgerow.transports import InProcessRouter, Transport

pytestmark = pytest.mark.timeout(60)

TIMEOUT = 10.0
SHUTDOWN = 2.0
"""A child's shutdown here: long enough for a stop that works, short enough to wait out."""

BACKENDS = [i for i in IMPLEMENTATIONS if i.name in {"inprocess", "wamp-websocket"}]


@pytest.fixture(params=BACKENDS, ids=lambda i: i.name)
def backend(request: pytest.FixtureRequest) -> Transport:
    implementation: Implementation = request.param
    if implementation.needs_router:
        return implementation.make(request.getfixturevalue("crossbar_router"))
    return implementation.make()


class _Stubborn:
    """A coroutine body that awaits for ever and swallows `rounds` cancellations
    (None: every one of them), until `release` (from any thread) lets it return.

    Its futures are kept here, so that a test's task is collected only where it
    means to be (test_a_stubborn_handlers_task_collected_after_the_stop_...)."""

    def __init__(self, rounds: int | None = None) -> None:
        self.entered = threading.Event()
        self.cancelled: list[int] = []
        self.was_cancelled = threading.Event()
        self.rounds = rounds
        self._waits: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._released = False

    async def __call__(self, *_args: object) -> None:
        self.entered.set()
        loop = asyncio.get_running_loop()
        while not self._released:
            waiting = loop.create_future()
            self._waits.append((loop, waiting))
            try:
                await waiting
            except asyncio.CancelledError:
                self.cancelled.append(1)
                self.was_cancelled.set()
                if self.rounds is not None and len(self.cancelled) > self.rounds:
                    raise

    def release(self) -> None:
        self._released = True
        for loop, waiting in self._waits:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, waiting)


def _settle(waiting: asyncio.Future[None]) -> None:
    if not waiting.done():
        waiting.set_result(None)


@pytest.fixture
def stubborn() -> Iterator[Callable[..., _Stubborn]]:
    made: list[_Stubborn] = []

    def make(rounds: int | None = None) -> _Stubborn:
        made.append(_Stubborn(rounds))
        return made[-1]

    yield make
    for body in made:
        body.release()


def _starting_in_thread(tree: hr.Tree, spec: hr.ChildSpec) -> threading.Thread:
    """start_child(spec) on a thread of its own (it waits for on_join)."""

    def run() -> None:
        with contextlib.suppress(BaseException):  # the tree stops under it
            tree.start_child(spec)

    thread = threading.Thread(target=run, daemon=True, name="attack-start")
    thread.start()
    return thread


def _stop_time(tree: hr.Tree) -> tuple[object, float]:
    began = time.monotonic()
    reason = tree.stop(timeout=TIMEOUT + SHUTDOWN)
    return reason, time.monotonic() - began


@pytest.mark.parametrize("shutdown", [SHUTDOWN, "brutal_kill"])
@pytest.mark.parametrize("event", ["connect", "join", "ready"])
def test_a_stop_ends_a_start_whose_handler_swallows_every_cancellation(
    backend, event, shutdown, stubborn
):
    # The handler catches CancelledError and awaits again, for ever. The stop cancels
    # it (nothing ends), then must give up on the child: within its shutdown (or at
    # once, brutal_kill), never hanging the tree.
    comp = Component(transports=backend, name="svc")
    body = stubborn(None)
    entered = body.entered

    async def handler(*args):
        await body(*args)

    comp.on(event, handler)
    spec = comp.child_spec(shutdown=shutdown)
    tree, rec = start(hr.SupervisorSpec([]))
    starter = _starting_in_thread(tree, spec)
    assert entered.wait(TIMEOUT)
    reason, took = _stop_time(tree)
    assert reason == hr.SHUTDOWN
    assert took < SHUTDOWN + 3.0, took
    starter.join(TIMEOUT)
    assert not starter.is_alive()
    assert body.was_cancelled.wait(TIMEOUT)  # (a kill's cancel may come just after)
    # (Killed while starting, its start may also be reported failed, with ActorDeadError.)
    ended = [EventKind.STOPPED, EventKind.ABANDONED, EventKind.START_FAILED]
    assert any(rec.matching(kind, "root/svc") for kind in ended)


@pytest.mark.parametrize("event", ["join", "ready"])
def test_a_handler_that_raises_while_cancelled_does_not_hold_the_stop(backend, event):
    comp = Component(transports=backend, name="svc")
    entered, raised = threading.Event(), threading.Event()

    async def handler(*_args):
        entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raised.set()
            raise RuntimeError("cannot be cancelled") from None

    comp.on(event, handler)
    tree, rec = start(hr.SupervisorSpec([]))
    starter = _starting_in_thread(tree, comp.child_spec(shutdown=30.0))
    assert entered.wait(TIMEOUT)
    reason, took = _stop_time(tree)
    assert reason == hr.SHUTDOWN
    assert took < 5.0, took  # not after the 30 s shutdown
    assert raised.wait(TIMEOUT)
    starter.join(TIMEOUT)
    assert not starter.is_alive()
    assert rec.matching(EventKind.ABANDONED) == []


@pytest.mark.parametrize("event", ["leave", "disconnect"])
def test_a_stop_whose_leave_handler_awaits_for_ever_ends_within_the_shutdown(
    backend, event, stubborn
):
    # The component is up; its stop runs on_leave / on_disconnect, which never ends.
    # After its shutdown the child is abandoned, and the tree's stop returns.
    comp = Component(transports=backend, name="svc")
    body = stubborn(None)
    entered = body.entered

    async def handler(*args):
        await body(*args)

    comp.on(event, handler)
    tree, rec = start(hr.SupervisorSpec([comp.child_spec(shutdown=SHUTDOWN)]))
    reason, took = _stop_time(tree)
    assert reason == hr.SHUTDOWN
    assert entered.is_set()
    assert took < SHUTDOWN + 3.0, took
    assert rec.matching(EventKind.STOPPED, "root/svc") or rec.matching(
        EventKind.ABANDONED, "root/svc"
    )


def test_a_sync_join_handler_blocked_for_ever_is_abandoned_after_its_shutdown(backend):
    # A plain on_join blocked on a lock (not a session wait) cannot be interrupted:
    # the child is abandoned when its shutdown runs out, and the tree stops.
    comp = Component(transports=backend, name="svc")
    entered, release = threading.Event(), threading.Event()

    @comp.on_join
    def joined(session, details):
        entered.set()
        release.wait()

    tree, rec = start(hr.SupervisorSpec([]))
    starter = _starting_in_thread(tree, comp.child_spec(shutdown=1.0))
    try:
        assert entered.wait(TIMEOUT)
        reason, took = _stop_time(tree)
        assert reason == hr.SHUTDOWN
        assert took < 1.0 + 3.0, took
        assert [e.path for e in rec.matching(EventKind.ABANDONED)] == ["root/svc"]
    finally:
        release.set()
        starter.join(TIMEOUT)


def _sessions(router: InProcessRouter) -> int:
    return sum(len(realm.sessions) for realm in router._realms.values())


@pytest.mark.parametrize("shutdown", [0.5, "brutal_kill"])
def test_a_storm_of_stopped_stubborn_starts_leaks_no_thread_or_session(shutdown, stubborn):
    # Ten trees, each stopped while its component's on_join (which swallows its
    # cancellation) runs: every thread ends and every session leaves.
    # (A stop_child("svc") there waits for the start, as OTP's supervisor does: 30 s.)
    router = InProcessRouter()
    threads_before = set(threading.enumerate())
    for _ in range(10):
        comp = Component(transports=router, name="svc")
        body = stubborn(None)

        @comp.on_join
        async def joined(session, details, body=body):
            await body(session, details)

        tree, _ = start(hr.SupervisorSpec([]))
        starter = _starting_in_thread(tree, comp.child_spec(shutdown=shutdown))
        assert body.entered.wait(TIMEOUT)
        assert tree.stop(timeout=TIMEOUT) == hr.SHUTDOWN
        starter.join(TIMEOUT)
        assert not starter.is_alive()
    assert wait_threads_end(threads_before, TIMEOUT) == []
    assert _sessions(router) == 0


@pytest.mark.parametrize("rounds", range(8))
def test_a_stop_racing_the_joins_completion(backend, rounds):
    # on_join returns at once: a stop right after start_child is called races the
    # join's completion (the switch interval made tiny to shuffle the threads).
    comp = Component(transports=backend, name="svc")
    joined_event = threading.Event()

    @comp.on_join
    async def joined(session, details):
        await asyncio.sleep(0)
        joined_event.set()

    tree, rec = start(hr.SupervisorSpec([]))
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        starter = _starting_in_thread(tree, comp.child_spec(shutdown=30.0))
        for _ in range(rounds * 50):
            pass
        reason, took = _stop_time(tree)
    finally:
        sys.setswitchinterval(old)
    assert reason == hr.SHUTDOWN
    assert took < 5.0, took
    starter.join(TIMEOUT)
    assert not starter.is_alive()
    assert rec.matching(EventKind.ABANDONED) == []
    assert rec.matching(EventKind.FAILED) == []


def test_an_asyncio_tree_stopped_from_its_loop_cancels_a_stubborn_join(stubborn):
    router = InProcessRouter()
    comp = Component(transports=router, name="svc")
    body = stubborn(0)
    entered = body.entered  # gives in at the second cancellation

    @comp.on_join
    async def joined(session, details):
        await body(session, details)

    spec = comp.child_spec(shutdown=30.0)

    async def main() -> float:
        tree = await hr.open_tree(hr.SupervisorSpec([]))
        starting = asyncio.ensure_future(tree.start_child(spec))
        await asyncio.to_thread(entered.wait, TIMEOUT)
        began = time.monotonic()
        await asyncio.wait_for(tree.stop(), TIMEOUT)
        took = time.monotonic() - began
        await asyncio.wait([starting], timeout=TIMEOUT)
        assert starting.done()
        return took

    took = asyncio.run(main())
    assert took < 5.0, took
    assert body.was_cancelled.wait(TIMEOUT)


def test_a_stubborn_handlers_task_collected_after_the_stop_stops_no_other_actor():
    # The garbage collector closes a pending task's coroutine when nothing refers to it
    # (here its handler awaits a future no one else holds). The test keeps the task and
    # closes its coroutine itself, on its loop, as the collector would: deterministic.
    router = InProcessRouter()
    comp = Component(transports=router, name="svc")
    entered, cancelled = threading.Event(), threading.Event()
    tasks: list[asyncio.Task[object]] = []

    @comp.on_join
    async def joined(session, details):
        task = asyncio.current_task()
        assert task is not None
        tasks.append(task)
        entered.set()
        while True:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.set()

    tree = start(hr.SupervisorSpec([]))[0]
    starter = _starting_in_thread(tree, comp.child_spec(shutdown="brutal_kill"))
    assert entered.wait(TIMEOUT)
    assert tree.stop(timeout=TIMEOUT) == hr.SHUTDOWN
    starter.join(TIMEOUT)
    assert cancelled.wait(TIMEOUT)
    [task] = tasks
    assert not task.done()  # it swallowed its cancellation: pending for ever

    other = Component(transports=router, name="other")
    other.on_join(lambda session, details: None)
    tree2, rec2 = start(hr.SupervisorSpec([other.child_spec()]))
    closed = threading.Event()

    def close() -> None:
        try:
            task.get_coro().close()  # what the collector does to it  # type: ignore[union-attr]
        finally:
            closed.set()

    task.get_loop().call_soon_threadsafe(close)
    assert closed.wait(TIMEOUT)
    try:
        assert rec2.matching(EventKind.STOPPED) == []
        assert tree2.which_children()[0].ref.is_alive()
    finally:
        tree2.stop(timeout=TIMEOUT)
        tasks.clear()
