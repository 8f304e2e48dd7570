"""An async component's calls on the WAMP transport's own loop: the answer goes
straight into the awaited future (`DirectCallAnswer`), with the outcomes a call
through the link's sink gives (the same call with options takes that path)."""

from __future__ import annotations

import asyncio
import concurrent.futures

import pytest
from conftest import FRAMEWORK
from helpers import start
from transports.conftest import IMPLEMENTATIONS

import hedgerow as hr
from hedgerow.components._component import Component
from hedgerow.transports import ApplicationError, CallOptions, _wamp_answers

pytestmark = pytest.mark.timeout(60)

TIMEOUT = 10.0
WEBSOCKET = next(i for i in IMPLEMENTATIONS if i.name == "wamp-websocket")


def _outcome(coro_result):
    kind, value = coro_result
    if kind == "error":
        return ("error", value.error, value.args[:1] if value.error.startswith("com.") else ())
    if value.__class__.__name__ == "CallResult":
        return ("result", "CallResult", tuple(value.results), dict(value.kwresults))
    return ("result", value)


async def _try(call):
    try:
        return ("result", await call)
    except ApplicationError as exc:
        return ("error", exc)


def test_direct_calls_answer_as_calls_through_the_sink(crossbar_router, monkeypatch):
    transport = WEBSOCKET.make(crossbar_router)
    made: list[object] = []
    real = _wamp_answers.DirectCallAnswer.__init__

    def counting(self, *args, **kwargs):
        made.append(self)
        real(self, *args, **kwargs)

    monkeypatch.setattr(_wamp_answers.DirectCallAnswer, "__init__", counting)
    svc = Component(transports=transport, name="svc")
    svc.register("com.example.one")(lambda value: value)
    svc.register("com.example.none")(lambda: None)
    svc.register("com.example.many")(lambda: hr.transports.CallResult(1, 2))
    svc.register("com.example.kw")(lambda: hr.transports.CallResult(1, key="k"))

    def refuse():
        raise ApplicationError("com.example.refused", "no")

    svc.register("com.example.refuse")(refuse)
    client = Component(transports=transport, name="client")
    answered: concurrent.futures.Future = concurrent.futures.Future()
    cases = [
        ("com.example.one", ("x",)),
        ("com.example.none", ()),
        ("com.example.many", ()),
        ("com.example.kw", ()),
        ("com.example.refuse", ()),
        ("com.example.nothing", ()),
        ("com..bad", ()),
        ("com.example.one", (object(),)),  # cannot be serialized
    ]

    @client.on_join
    async def joined(session, details):
        try:
            await session.call("com.example.one", "warm")  # finds the loop the link's
            direct, through_sink = [], []
            for procedure, args in cases:
                direct.append(_outcome(await _try(session.call(procedure, *args))))
                options = CallOptions(timeout=5000)
                through_sink.append(
                    _outcome(await _try(session.call(procedure, *args, options=options)))
                )
            # A call whose awaiter gave up: its late answer goes nowhere.
            abandoned = session.call("com.example.one", "late")
            abandoned.cancel()
            after = await session.call("com.example.one", "after")
            answered.set_result((direct, through_sink, after))
        except BaseException as exc:
            answered.set_exception(exc)
            raise

    tree, _ = start(hr.SupervisorSpec([svc.child_spec(), client.child_spec()]))
    with tree:
        direct, through_sink, after = answered.result(TIMEOUT)
    assert direct == through_sink
    assert direct[:4] == [
        ("result", "x"),
        ("result", None),
        ("result", "CallResult", (1, 2), {}),
        ("result", "CallResult", (1,), {"key": "k"}),
    ]
    assert [d[1] for d in direct[4:]] == [
        "com.example.refused",
        "wamp.error.no_such_procedure",
        "wamp.error.invalid_uri",
        "wamp.error.invalid_payload",
    ]
    assert after == "after"
    if FRAMEWORK == "asyncio":  # (under Twisted a call hops to the reactor: no direct path)
        assert len(made) >= 5  # the calls without options took the direct path


def test_a_direct_call_in_flight_when_the_session_is_lost_fails_not_connected(crossbar_router):
    transport = WEBSOCKET.make(crossbar_router)
    svc = Component(transports=transport, name="svc")
    release = asyncio.Event()

    svc.register("com.example.warm")(lambda: None)

    @svc.register("com.example.hang")
    async def hang():
        await release.wait()

    client = Component(transports=transport, name="client")
    answered: concurrent.futures.Future = concurrent.futures.Future()

    @client.on_join
    async def joined(session, details):
        await session.call("com.example.warm")  # finds the loop the link's
        pending = asyncio.ensure_future(_try(session.call("com.example.hang")))
        await asyncio.sleep(0.2)
        session.link._lose("test: connection lost", None)
        answered.set_result(await pending)

    tree, _ = start(hr.SupervisorSpec([svc.child_spec(), client.child_spec()]))
    with tree:
        kind, error = answered.result(TIMEOUT)
    assert kind == "error"
    assert error.error == "hedgerow.error.not_connected"
