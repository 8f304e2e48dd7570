"""The endpoints the WAMP transport registers with autobahn: details only when needed."""

from __future__ import annotations

import concurrent.futures
from types import SimpleNamespace

import pytest
from helpers import start
from transports.conftest import IMPLEMENTATIONS

import hedgerow as hr
from hedgerow.components._component import Component
from hedgerow.transports import RegisterOptions
from hedgerow.transports._base import NOT_AT_ONCE, Invocation
from hedgerow.transports._wamp_endpoints import DETAILS, plain_endpoint

TIMEOUT = 10.0


@pytest.fixture
def wamp_transport(crossbar_router):
    websocket = next(i for i in IMPLEMENTATIONS if i.name == "wamp-websocket")
    return websocket.make(crossbar_router)


def test_autobahn_makes_call_details_only_for_endpoints_that_take_them(wamp_transport):
    comp = Component(transports=wamp_transport, name="svc")
    comp.register("com.example.plain")(lambda value: value)
    comp.register("com.example.detailed", options=RegisterOptions(details=True))(
        lambda value, details: [value, details.caller is not None]
    )
    comp.register("com.example.", options=RegisterOptions(match="prefix"))(lambda value: value)
    client = Component(transports=wamp_transport, name="client")
    seen: concurrent.futures.Future = concurrent.futures.Future()

    @client.on_join
    def joined(session, details):
        try:
            answers = [
                session.call("com.example.plain", 1).get(timeout=TIMEOUT),
                session.call("com.example.detailed", 2).get(timeout=TIMEOUT),
                session.call("com.example.x", 3).get(timeout=TIMEOUT),
            ]
            seen.set_result(answers)
        except BaseException as exc:
            seen.set_exception(exc)

    tree, _ = start(hr.SupervisorSpec([comp.child_spec(), client.child_spec()]))
    with tree:
        assert seen.result(TIMEOUT) == [1, [2, True], 3]
        link = tree.get_child("svc").incarnation.session.link
        asked = {r.procedure: r.endpoint.details_arg for r in link.session._registrations.values()}
    assert asked == {
        "com.example.plain": None,
        "com.example.detailed": DETAILS,
        "com.example.": DETAILS,
    }


def test_an_invocation_before_the_registration_is_known_finds_its_id():
    delivered = []
    peer = SimpleNamespace(deliver=delivered.append)
    loop = SimpleNamespace(create_future=concurrent.futures.Future)
    link = SimpleNamespace(loop=loop, peer=peer, session=None, session_id=5)
    endpoint, known = plain_endpoint(link, "com.example.p")
    registration = SimpleNamespace(id=7, endpoint=SimpleNamespace(fn=endpoint))
    link.session = SimpleNamespace(_registrations={7: registration})

    endpoint("a", k=1)  # (autobahn's REGISTERED was read; the link's callback not yet run)
    assert known == [7]
    [invocation] = delivered
    assert isinstance(invocation, Invocation)
    assert (invocation.session, invocation.registration, invocation.procedure) == (
        5,
        7,
        "com.example.p",
    )
    assert (invocation.args, invocation.kwargs, invocation.receive_progress) == (
        ["a"],
        {"k": 1},
        False,
    )

    invoked = []
    peer.invoke_now = lambda *args: invoked.append(args) or NOT_AT_ONCE
    endpoint2, known2 = plain_endpoint(link, "com.example.q")
    known2[0] = 9
    endpoint2(1)
    assert invoked == [(5, 9, "com.example.q", (1,), {})]
    assert len(delivered) == 2  # not at once: delivered
