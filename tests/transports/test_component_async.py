"""`Component` with ``async def`` handlers, and the same checks with plain ones, on the
in-process router and through Crossbar.io (the conformance of both styles)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading

import pykka
import pytest
from conftest import FRAMEWORK
from helpers import start
from transports.conftest import IMPLEMENTATIONS, Implementation

import hedgerow as hr
from hedgerow import EventKind
from hedgerow.components._component import Component
from hedgerow.components._run import run
from hedgerow.transports import (
    ApplicationError,
    Call,
    InProcessRouter,
    Publish,
    PublishOptions,
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


def supervised(*components, **options):
    return start(hr.SupervisorSpec([c.child_spec(**options) for c in components]))


def serving(transport, style, log):
    """A component serving ``com.example.add`` and ``com.example.topic`` in `style`."""
    svc = Component(transports=transport, name="svc")
    if style == "async":

        @svc.register("com.example.add")
        async def add(a, b):
            await asyncio.sleep(0)
            return a + b

        @svc.subscribe("com.example.topic")
        async def on_topic(value):
            await asyncio.sleep(0)
            log.append(("event", value))

        @svc.on_join
        async def joined(session, details):
            await asyncio.sleep(0)
            log.append(("svc joined", details.realm))

    else:

        @svc.register("com.example.add")
        def add(a, b):
            return a + b

        @svc.subscribe("com.example.topic")
        def on_topic(value):
            log.append(("event", value))

        @svc.on_join
        def joined(session, details):
            log.append(("svc joined", details.realm))

    return svc


def calling(transport, style, log, answered):
    """A component that calls and publishes from ``on_join``, in `style`."""
    client = Component(transports=transport, name="client")
    ack = PublishOptions(acknowledge=True)
    if style == "async":

        @client.on_join
        async def joined(session, details):
            log.append(("thread", threading.current_thread().name))
            total = await session.call("com.example.add", 2, 3)
            await session.publish("com.example.topic", total, options=ack)
            try:
                await session.call("com.example.nothing")
            except ApplicationError as exc:
                log.append(("error", exc.error))
            answered.set_result(total)

        @client.on_leave
        async def left(session, details):
            await asyncio.sleep(0)
            log.append(("left", details.reason))

        @client.on_disconnect
        async def disconnected(session, was_clean):
            log.append(("disconnected", was_clean))

    else:

        @client.on_join
        def joined(session, details):
            log.append(("thread", threading.current_thread().name))
            total = session.call("com.example.add", 2, 3).get(timeout=TIMEOUT)
            session.publish("com.example.topic", total, options=ack)
            try:
                session.call("com.example.nothing").get(timeout=TIMEOUT)
            except ApplicationError as exc:
                log.append(("error", exc.error))
            answered.set_result(total)

        @client.on_leave
        def left(session, details):
            log.append(("left", details.reason))

        @client.on_disconnect
        def disconnected(session, was_clean):
            log.append(("disconnected", was_clean))

    return client


@pytest.mark.parametrize("style", ["sync", "async"])
def test_handlers_call_publish_and_leave_in_either_style(backend, style):
    log: list = []
    answered: concurrent.futures.Future = concurrent.futures.Future()
    svc = serving(backend, style, log)
    client = calling(backend, style, log, answered)
    tree, rec = supervised(svc, client)
    with tree:
        assert answered.result(TIMEOUT) == 5
        tree.get_child("svc").ask("sync")
        rec.wait_for(EventKind.STARTED, "root/client")
    assert ("svc joined", "realm1") in log
    assert ("error", "wamp.error.no_such_procedure") in log
    assert ("event", 5) in log
    assert log[-2:] == [("left", "wamp.close.normal"), ("disconnected", True)]
    assert rec.matching(EventKind.FAILED) == []
    thread = dict(i for i in log if i[0] == "thread")["thread"]
    if style == "sync":
        assert thread.startswith("hedgerow root/")  # the actor's own thread, as before
    elif isinstance(backend, InProcessRouter) or FRAMEWORK == "twisted":
        assert thread == "hedgerow-loop"  # (a reactor runs no coroutines)
    else:
        assert thread == "hedgerow-wamp"  # the transport's own loop: no thread hop


def test_an_async_procedure_answers_callers_and_its_errors_travel(backend):
    svc = Component(transports=backend, name="svc")

    @svc.register("com.example.div")
    async def div(a, b):
        await asyncio.sleep(0)
        if b == 0:
            raise ApplicationError("com.example.zero", "by zero", a=a)
        return a / b

    tree, _ = supervised(svc)
    with tree:
        link = backend.join("realm1", _Nobody()).result(TIMEOUT)
        try:
            assert link.handle(Call("com.example.div", [6, 3])).result(TIMEOUT).args == [2]
            with pytest.raises(ApplicationError) as failed:
                link.handle(Call("com.example.div", [6, 0])).result(TIMEOUT)
            assert failed.value.error == "com.example.zero"
            assert failed.value.kwargs == {"a": 6}
        finally:
            link.handle(hr.transports.Leave()).result(TIMEOUT)


class _Nobody:
    def deliver(self, message):
        pass


def test_an_await_holds_the_components_next_handler_back_not_other_components():
    router = InProcessRouter()
    svc, other = Component(transports=router, name="svc"), Component(transports=router, name="o")
    gate = asyncio.Event()
    order = []

    @svc.register("com.example.slow")
    async def slow():
        order.append("slow starts")
        await gate.wait()
        order.append("slow ends")
        return "slow"

    @svc.register("com.example.fast")
    async def fast():
        order.append("fast")
        return "fast"

    @svc.register("com.example.open")
    def open_gate():
        gate.set()

    @other.register("com.example.other")
    async def other_proc():
        return "other"

    tree, _ = supervised(svc, other)
    with tree:
        link = router.join("realm1", _Nobody()).result(TIMEOUT)
        first = link.handle(Call("com.example.slow"))
        second = link.handle(Call("com.example.fast"))
        # Another component answers while svc's handler awaits.
        assert link.handle(Call("com.example.other")).result(TIMEOUT).args == ["other"]
        assert not second.done()
        loop = tree.get_child("svc").incarnation._runner.actor_loop
        loop.call_soon_threadsafe(gate.set)
        assert first.result(TIMEOUT).args == ["slow"]
        assert second.result(TIMEOUT).args == ["fast"]
        assert order == ["slow starts", "slow ends", "fast"]


def test_a_coroutine_where_it_cannot_run_is_a_type_error_that_says_what_to_do():
    router = InProcessRouter()
    comp = Component(transports=router, name="svc")
    refused: concurrent.futures.Future = concurrent.futures.Future()

    async def later():
        return 1

    @comp.on_join
    def joined(session, details):  # a plain component: its session is the thread's
        messages = []
        try:
            session.register(later, "com.example.later")
        except TypeError as exc:
            messages.append(str(exc))
        try:
            session.call("com.example.x", options=hr.transports.CallOptions(on_progress=later))
        except TypeError as exc:
            messages.append(str(exc))
        refused.set_result(messages)

    tree, _ = supervised(comp)
    with tree:
        message, progress = refused.result(TIMEOUT)
    assert "later" in message
    assert "async def" in message
    assert "Component.register" in message
    assert "on_progress" in progress
    assert "Make the component's handlers async def" in progress


def test_async_event_errors_are_reported_or_fail_and_a_restart_joins_again():
    router = InProcessRouter()
    comp = Component(transports=router, name="svc")
    joins = []

    @comp.on_join
    async def joined(session, details):
        joins.append(details.session)

    @comp.subscribe("com.example.topic")
    async def on_topic(value):
        await asyncio.sleep(0)
        raise RuntimeError(f"cannot digest {value}")

    ack = PublishOptions(acknowledge=True)
    tree, rec = supervised(comp)
    with tree:
        link = router.join("realm1", _Nobody()).result(TIMEOUT)
        link.handle(Publish("com.example.topic", ["a"], options=ack)).result(TIMEOUT)
        reported = rec.wait_for(EventKind.HANDLER_FAILED, "root/svc")
        assert "cannot digest a" in str(reported.reason)
        assert rec.matching(EventKind.FAILED) == []

    tree, rec = supervised(comp, event_errors_fail=True)
    with tree:
        link = router.join("realm1", _Nobody()).result(TIMEOUT)
        link.handle(Publish("com.example.topic", ["b"], options=ack)).result(TIMEOUT)
        failed = rec.wait_for(EventKind.FAILED, "root/svc")
        assert "cannot digest b" in str(failed.reason)
        assert rec.wait_for(EventKind.DEAD_LETTER, "root/svc").message.args == ["b"]
        rec.wait_for(EventKind.RESTARTED, "root/svc")
    assert len(joins) == 3  # once in the first tree, twice (a restart) in the second


def test_an_async_join_handler_that_raises_fails_the_start():
    comp = Component(transports=InProcessRouter(), name="svc")

    @comp.on_join
    async def joined(session, details):
        await asyncio.sleep(0)
        raise ValueError("no thanks")

    with pytest.raises(hr.StartError, match="no thanks"):
        hr.start_tree(hr.SupervisorSpec([comp.child_spec(restart="never")]))


def test_run_accepts_an_async_main_which_runs_beside_the_components_handlers():
    router = InProcessRouter()
    seen = []

    async def main(actor, session):
        # Its own procedure: main is a task of its own, as autobahn's.
        seen.append(await session.call("com.example.add", 1, 1))
        await session.publish("com.example.topic", "x", options=PublishOptions(acknowledge=True))
        seen.append(await session.call("com.example.add", 2, 2))

    done = Component(main, transports=router, name="main")

    @done.register("com.example.add")
    async def add(a, b):
        await asyncio.sleep(0)
        return a + b

    @done.subscribe("com.example.topic", options=hr.transports.SubscribeOptions())
    def on_topic(value):
        seen.append(value)

    assert isinstance(run([done], log_level=None), hr.Shutdown)
    assert seen == [2, 4]  # (exclude_me: its own event does not come back)


def test_the_runner_is_gone_when_the_exit_of_a_component_whose_main_ended_is_told(
    monkeypatch: pytest.MonkeyPatch,
):
    # Its supervisor is told first (before the incarnation's own exit callback):
    # the runner, left running by main's leave, must be gone by then, or the tree
    # (and `run`) could end with it still registered.
    from hedgerow.components._component_actor import ComponentActor  # noqa: PLC0415

    runners_left = []
    exited = ComponentActor._exited

    def exited_seen(self, actor, reason):
        runners_left.append(self._runner.actor_ref in pykka.ActorRegistry.get_all())
        exited(self, actor, reason)

    monkeypatch.setattr(ComponentActor, "_exited", exited_seen)

    async def main(actor, session):
        await asyncio.sleep(0)

    assert isinstance(
        run([Component(main, transports=InProcessRouter())], log_level=None), hr.Shutdown
    )
    assert runners_left == [False]


def test_a_stop_cancels_the_handler_awaiting_and_leaves_with_async_leave_handlers():
    router = InProcessRouter()
    comp = Component(transports=router, name="svc")
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

    @comp.on_leave
    async def left(session, details):
        await asyncio.sleep(0)
        log.append(("left", details.reason))

    tree, rec = supervised(comp)
    link = router.join("realm1", _Nobody()).result(TIMEOUT)
    in_flight = link.handle(Call("com.example.forever"))
    assert entered.wait(TIMEOUT)
    tree.stop()  # at once: not after the supervisor's shutdown timeout
    assert log == ["cancelled", ("left", "wamp.close.normal")]
    with pytest.raises(ApplicationError) as failed:
        in_flight.result(TIMEOUT)
    assert failed.value.error == ApplicationError.CANCELED
    assert rec.matching(EventKind.FAILED) == []
    link.handle(hr.transports.Leave()).result(TIMEOUT)


def test_an_async_leave_handler_that_raises_on_stop_fails_the_component():
    comp = Component(transports=InProcessRouter(), name="svc")

    @comp.on_leave
    async def left(session, details):
        raise RuntimeError("cannot leave")

    tree, rec = supervised(comp)
    tree.stop()
    assert "cannot leave" in str(rec.wait_for(EventKind.FAILED, "root/svc").reason)


@pytest.mark.parametrize("shutdown", [30.0, "brutal_kill"])
@pytest.mark.parametrize("how", ["start_child", "restart"])
def test_a_stop_cancels_an_async_join_handler_that_never_finishes(backend, how, shutdown):
    # The component's start (a dynamic start, or a restart) waits for on_join, which
    # awaits for ever. A stop cancels it and the child stops at once, rather than
    # being abandoned after its 30 s shutdown; killed, its handler's task is
    # cancelled too, its thread ends and its session leaves (before: the task ran
    # on, and the thread waited for it for ever).
    comp = Component(transports=backend, name="svc")
    entered, cancelled = threading.Event(), threading.Event()
    joins = []

    @comp.on_join
    async def joined(session, details):
        joins.append(details.session)
        if how == "restart" and len(joins) == 1:
            return
        entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    spec = comp.child_spec(shutdown=shutdown)
    before = set(threading.enumerate())
    tree, rec = start(hr.SupervisorSpec([spec] if how == "restart" else []))
    outcome: concurrent.futures.Future = concurrent.futures.Future()

    def starting():
        try:
            if how == "restart":
                tree.stop_child("svc")
                outcome.set_result(tree.restart_child("svc"))
            else:
                outcome.set_result(tree.start_child(spec))
        except BaseException as exc:  # the test looks at it
            outcome.set_exception(exc)

    threading.Thread(target=starting, daemon=True).start()
    assert entered.wait(TIMEOUT)
    assert tree.stop(timeout=TIMEOUT) == hr.SHUTDOWN  # not after the child's 30 s shutdown
    assert cancelled.wait(TIMEOUT)
    outcome.exception(TIMEOUT)  # the start call has returned (or raised: the tree stops)
    assert rec.matching(EventKind.ABANDONED) == []
    assert rec.matching(EventKind.FAILED) == []
    assert rec.matching(EventKind.DEAD_LETTER) == []
    stopped = rec.matching(EventKind.STOPPED, "root/svc")
    assert stopped[-1].reason == (hr.SHUTDOWN if shutdown == 30.0 else hr.KILLED)
    for thread in set(threading.enumerate()) - before:
        if "root/svc" in thread.name:  # the component's incarnations
            thread.join(TIMEOUT)
            assert not thread.is_alive(), thread.name
