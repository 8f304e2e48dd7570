"""An async component's deliveries handled at once on its own loop (no wake-up, no
task start in a later turn): the same rules as a queued delivery, on the in-process
router and through Crossbar.io (where the WAMP transport delivers on the component's
loop; see hedgerow.components._component_inline)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading

import pytest
from conftest import FRAMEWORK
from helpers import start
from transports.conftest import IMPLEMENTATIONS, Implementation

import hedgerow as hr
from hedgerow import EventKind
from hedgerow.components._component import Component
from hedgerow.components._component_inline import start_eagerly
from hedgerow.transports import (
    NOT_CONNECTED,
    ApplicationError,
    Call,
    InProcessRouter,
    Leave,
    Register,
    RegisterOptions,
    Transport,
)

TIMEOUT = 10.0

BACKENDS = [i for i in IMPLEMENTATIONS if i.name in {"inprocess", "wamp-websocket"}]


@pytest.fixture(params=BACKENDS, ids=lambda i: i.name)
def backend(request: pytest.FixtureRequest) -> Transport:
    implementation: Implementation = request.param
    if implementation.needs_router:
        return implementation.make(request.getfixturevalue("crossbar_router"))
    return implementation.make()


class _Nobody:
    def deliver(self, message):
        pass


def supervised(*components):
    return start(hr.SupervisorSpec([c.child_spec() for c in components]))


def runner_loop(tree, name="svc"):
    return tree.get_child(name).incarnation._runner.actor_loop


def test_a_delivery_on_the_runners_loop_is_answered_before_deliver_returns():
    router = InProcessRouter()
    svc = Component(transports=router, name="svc")
    tasks = []

    @svc.register("com.example.echo")
    async def echo(value):
        tasks.append(asyncio.current_task())
        return value

    tree, _ = supervised(svc)
    with tree:
        link = router.join("realm1", _Nobody()).result(TIMEOUT)
        probe: concurrent.futures.Future = concurrent.futures.Future()

        def from_a_loop_callback():
            answer = link.handle(Call("com.example.echo", [7]))
            probe.set_result((answer.done(), answer))

        runner_loop(tree).call_soon_threadsafe(from_a_loop_callback)
        done_at_once, answer = probe.result(TIMEOUT)
        assert done_at_once  # handled in the caller's turn of the loop
        assert answer.result(TIMEOUT).args == [7]
        assert isinstance(tasks[0], asyncio.Task)  # in the runner's task, as a queued one
        link.handle(Leave()).result(TIMEOUT)


def test_an_await_holds_the_next_delivery_back_not_other_components(backend):
    svc, other = Component(transports=backend, name="svc"), Component(transports=backend, name="o")
    gate = asyncio.Event()
    started = threading.Event()
    order = []

    @svc.register("com.example.slow")
    async def slow():
        order.append("slow starts")
        started.set()
        await gate.wait()
        order.append("slow ends")
        return "slow"

    @svc.register("com.example.fast")
    async def fast():
        order.append("fast")
        return "fast"

    @other.register("com.example.other")
    async def other_proc():
        return "other"

    tree, rec = supervised(svc, other)
    with tree:
        link = backend.join("realm1", _Nobody()).result(TIMEOUT)
        first = link.handle(Call("com.example.slow"))
        assert started.wait(TIMEOUT)
        second = link.handle(Call("com.example.fast"))
        # Another component on the same loop answers while svc's handler awaits.
        assert link.handle(Call("com.example.other")).result(TIMEOUT).args == ["other"]
        assert not second.done()
        runner_loop(tree).call_soon_threadsafe(gate.set)
        assert first.result(TIMEOUT).args == ["slow"]
        assert second.result(TIMEOUT).args == ["fast"]
        assert order == ["slow starts", "slow ends", "fast"]
        link.handle(Leave()).result(TIMEOUT)
    assert rec.matching(EventKind.FAILED) == []


def test_handlers_run_in_a_task_with_a_context_of_their_own(backend):
    svc = Component(transports=backend, name="svc")
    var: contextvars.ContextVar[int] = contextvars.ContextVar("var", default=0)
    seen = []

    @svc.register("com.example.step")
    async def step(n):
        seen.append(var.get())
        var.set(n)
        async with asyncio.timeout(TIMEOUT):  # needs the current task
            await asyncio.sleep(0)
        async with asyncio.TaskGroup() as group:
            child = group.create_task(asyncio.sleep(0, result=n))
        return [child.result(), var.get()]

    @svc.register("com.example.quick")
    async def quick(n):
        seen.append(var.get())
        var.set(n)
        return asyncio.current_task() is not None

    tree, _ = supervised(svc)
    with tree:
        link = backend.join("realm1", _Nobody()).result(TIMEOUT)
        assert link.handle(Call("com.example.step", [1])).result(TIMEOUT).args == [[1, 1]]
        assert link.handle(Call("com.example.step", [2])).result(TIMEOUT).args == [[2, 2]]
        assert link.handle(Call("com.example.quick", [3])).result(TIMEOUT).args == [True]
        assert link.handle(Call("com.example.quick", [4])).result(TIMEOUT).args == [True]
        link.handle(Leave()).result(TIMEOUT)
    assert seen == [0, 0, 0, 0]  # what one handler sets, the next does not see


def test_errors_of_handlers_that_end_at_once_travel_as_before(backend):
    svc = Component(transports=backend, name="svc")

    @svc.register("com.example.async_fails")
    async def async_fails():
        raise ApplicationError("com.example.nope", "no", why="because")

    @svc.register("com.example.plain_fails")
    def plain_fails():
        raise ValueError("bad value")

    @svc.register("com.example.plain")
    def plain(a):
        return a * 2

    tree, rec = supervised(svc)
    with tree:
        link = backend.join("realm1", _Nobody()).result(TIMEOUT)
        with pytest.raises(ApplicationError) as failed:
            link.handle(Call("com.example.async_fails")).result(TIMEOUT)
        assert (failed.value.error, failed.value.kwargs) == ("com.example.nope", {"why": "because"})
        with pytest.raises(ApplicationError) as failed:
            link.handle(Call("com.example.plain_fails")).result(TIMEOUT)
        assert failed.value.error == "wamp.error.runtime_error"
        assert link.handle(Call("com.example.plain", [21])).result(TIMEOUT).args == [42]
        link.handle(Leave()).result(TIMEOUT)
    assert rec.matching(EventKind.FAILED) == []


def test_a_stop_cancels_a_handler_that_suspended(backend):
    comp = Component(transports=backend, name="svc")
    entered = threading.Event()
    log = []

    @comp.register("com.example.forever")
    async def forever():
        entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            log.append("cancelled")
            raise

    tree, rec = supervised(comp)
    link = backend.join("realm1", _Nobody()).result(TIMEOUT)
    in_flight = link.handle(Call("com.example.forever"))
    assert entered.wait(TIMEOUT)
    tree.stop()  # at once: not after the supervisor's shutdown timeout
    assert log == ["cancelled"]
    with pytest.raises(ApplicationError) as failed:
        in_flight.result(TIMEOUT)
    assert failed.value.error == ApplicationError.CANCELED
    assert rec.matching(EventKind.FAILED) == []
    link.handle(Leave()).result(TIMEOUT)


def test_start_eagerly_runs_the_first_step_in_the_task_and_the_rest_as_a_task():
    async def main():
        loop = asyncio.get_running_loop()
        kept = []
        steps = []

        class Owner:  # whose _hr_task each start sets
            @property
            def _hr_task(self):
                return kept[-1]

            @_hr_task.setter
            def _hr_task(self, task):
                kept.append(task)

        owner = Owner()

        async def body():
            steps.append(("first", asyncio.current_task() is kept[0]))
            await asyncio.sleep(0)
            steps.append(("second", asyncio.current_task() is kept[0]))
            return "done"

        async def forever():
            steps.append("waiting")
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                steps.append("cancelled")
                raise

        def from_a_callback(done: asyncio.Future) -> None:
            start_eagerly(loop, body(), owner)
            steps.append("returned")
            start_eagerly(loop, forever(), owner)
            kept[1].cancel()
            done.set_result(None)

        done = loop.create_future()
        loop.call_soon(from_a_callback, done)
        await done
        assert await kept[0] == "done"
        with pytest.raises(asyncio.CancelledError):
            await kept[1]
        return steps

    steps = asyncio.run(main())
    assert steps == [
        ("first", True),
        "returned",
        "waiting",
        "cancelled",  # (the second task's first turn comes first)
        ("second", True),
    ]


def test_an_endpoint_asking_for_details_gets_them_and_can_send_progress(backend):
    svc = Component(transports=backend, name="svc")

    @svc.register("com.example.count", options=RegisterOptions(details=True))
    async def count(n, details):
        for i in range(n):
            details.progress(i)
        return [details.procedure, details.caller is not None]

    @svc.register("com.example.", options=RegisterOptions(match="prefix"))
    async def any_of(value):
        if value == "fail":
            raise ApplicationError("com.example.failed", value)
        return value

    tree, rec = supervised(svc)
    with tree:
        link = backend.join("realm1", _Nobody()).result(TIMEOUT)
        progress = []
        answer = link.handle(
            Call("com.example.count", [3], on_progress=lambda args, kwargs: progress.append(args))
        ).result(TIMEOUT)
        assert answer.args == [["com.example.count", True]]
        assert progress == [[0], [1], [2]]
        assert link.handle(Call("com.example.x", ["x"])).result(TIMEOUT).args == ["x"]
        with pytest.raises(ApplicationError) as failed:
            link.handle(Call("com.example.y", ["fail"])).result(TIMEOUT)
        assert failed.value.error == "com.example.failed"
        link.handle(Leave()).result(TIMEOUT)
    assert rec.matching(EventKind.FAILED) == []


def test_an_async_callers_calls_on_the_transports_loop_answer_fail_and_can_be_cancelled(backend):
    svc = Component(transports=backend, name="svc")
    waiter = Component(transports=backend, name="waiter")  # its await holds only its own
    client = Component(transports=backend, name="client")
    gate = asyncio.Event()
    outcome: concurrent.futures.Future = concurrent.futures.Future()

    @svc.register("com.example.add")
    async def add(a, b):
        return a + b

    @waiter.register("com.example.slow")
    async def slow():
        await gate.wait()
        return "late"

    @client.on_join
    async def joined(session, details):
        try:
            abandoned = session.call("com.example.slow")
            abandoned.cancel()
            total = await session.call("com.example.add", 2, 3)
            gate.set()  # the abandoned call's answer arrives with nobody awaiting it
            with pytest.raises(ApplicationError) as failed:
                await session.call("com.example.nothing")
            late = await session.call("com.example.slow")
            outcome.set_result((total, failed.value.error, late, abandoned.cancelled()))
        except BaseException as exc:
            outcome.set_exception(exc)

    tree, rec = supervised(svc, waiter, client)
    with tree:
        assert outcome.result(TIMEOUT) == (5, "wamp.error.no_such_procedure", "late", True)
    assert rec.matching(EventKind.FAILED) == []


class _Invocations:
    """A raw session's peer that keeps the invocations it gets, answering none."""

    def __init__(self) -> None:
        self.got = threading.Event()

    def deliver(self, message):
        self.got.set()


def test_an_async_callers_call_fails_when_its_callee_leaves_or_its_connection_is_lost(backend):
    # Through Crossbar such a call is answered by autobahn straight into the caller's
    # future (`CallAnswer`, no turn of the loop in between): the same errors as before.
    callee = _Invocations()
    client = Component(transports=backend, name="client")
    # Through Crossbar on asyncio, the component runs on the transport's loop.
    on_the_loop = FRAMEWORK == "asyncio" and not isinstance(backend, InProcessRouter)
    seen: concurrent.futures.Future = concurrent.futures.Future()
    tasks = []

    async def calls(session):
        try:
            gone = session.call("com.example.never")
            answered_by = [type(c.on_reply).__name__ for c in _calls_in_flight(session)]
            with pytest.raises(ApplicationError) as left:
                await gone
            lost = None
            if on_the_loop:
                lost = session.call("com.example.never")
                session.link.session._transport.transport.abort()  # the connection drops
                with pytest.raises(ApplicationError) as dropped:
                    await lost
                lost = dropped.value
            seen.set_result((answered_by, left.value, lost))
        except BaseException as exc:
            seen.set_exception(exc)

    @client.on_join
    async def joined(session, details):
        tasks.append(asyncio.ensure_future(calls(session)))  # (the start goes on)

    link = backend.join("realm1", callee).result(TIMEOUT)
    link.handle(Register("com.example.never")).result(TIMEOUT)
    tree, _ = supervised(client)
    with tree:
        assert callee.got.wait(TIMEOUT)
        link.handle(Leave()).result(TIMEOUT)  # the callee goes: the call in flight fails
        answered_by, left, lost = seen.result(TIMEOUT)
    assert left.error == ApplicationError.CANCELED
    if on_the_loop:
        assert answered_by == ["CallAnswer"]
        assert "call to 'com.example.never' was cancelled" in str(left)
        assert lost.error == NOT_CONNECTED


def _calls_in_flight(session):
    """autobahn's calls in flight of `session` (none on the in-process router)."""
    return list(getattr(getattr(session.link, "session", None), "_call_reqs", {}).values())
