"""Event handlers that raise, through a real Crossbar.io router: whoever may publish on
a component's topic cannot keep it down (autobahn's rule); `event_errors_fail` gives
Erlang's."""

from __future__ import annotations

from typing import Any

from helpers import start
from transports.wamp_router import authentication

import hedgerow as hr
from hedgerow import EventKind
from hedgerow.components._component import Component
from hedgerow.transports import Call, Leave, Publish, WampTransport

TIMEOUT = 30.0
BAD_EVENTS = 600
CALLS = 200


class _Quiet:
    def deliver(self, message: Any) -> None:
        pass


def test_a_flood_of_bad_events_does_not_stop_the_calls_being_answered(crossbar_router):
    url = crossbar_router.config.websocket_url
    comp = Component(transports=url, authentication=authentication(), name="victim")
    comp.register("com.example.victim.ping")(lambda n: n)

    @comp.subscribe("com.example.victim.feed")
    def on_feed(payload):
        raise ValueError(f"cannot parse {payload!r}")

    tree, rec = start(hr.SupervisorSpec([comp.child_spec()]))
    with tree:
        attacker = WampTransport(url).join("realm1", _Quiet(), authentication=authentication())
        attacker = attacker.result(TIMEOUT)
        caller = WampTransport(url).join("realm1", _Quiet(), authentication=authentication())
        caller = caller.result(TIMEOUT)
        calls = []
        for n in range(BAD_EVENTS):
            attacker.handle(Publish("com.example.victim.feed", [f"garbage {n}"]))
            if n % (BAD_EVENTS // CALLS) == 0:
                calls.append((n, caller.handle(Call("com.example.victim.ping", [n]))))
        answers = [(n, future.result(TIMEOUT).args) for n, future in calls]
        assert answers == [(n, [n]) for n, _ in calls]
        assert len(answers) == CALLS
        rec.wait_for(EventKind.HANDLER_FAILED, "root/victim", count=BAD_EVENTS, timeout=TIMEOUT)
        assert rec.matching(EventKind.FAILED) == []
        assert rec.matching(EventKind.RESTARTED) == []
        reported = rec.matching(EventKind.HANDLER_FAILED)[0]
        assert isinstance(reported.reason, ValueError)
        assert reported.message.topic == "com.example.victim.feed"
        for link in (attacker, caller):
            link.handle(Leave()).result(TIMEOUT)


def test_event_errors_fail_restarts_the_component_and_it_subscribes_again(crossbar_router):
    url = crossbar_router.config.rawsocket_url
    comp = Component(transports=url, authentication=authentication(), name="strict")
    seen = []

    @comp.subscribe("com.example.strict.feed")
    def on_feed(payload):
        if payload == "bad":
            raise ValueError("cannot parse")
        seen.append(payload)

    spec = hr.SupervisorSpec([comp.child_spec(event_errors_fail=True)])
    tree, rec = start(spec)
    with tree:
        publisher = WampTransport(url).join("realm1", _Quiet(), authentication=authentication())
        publisher = publisher.result(TIMEOUT)
        publisher.handle(Publish("com.example.strict.feed", ["bad"]))
        failed = rec.wait_for(EventKind.FAILED, "root/strict", timeout=TIMEOUT)
        assert isinstance(failed.reason, ValueError)
        dead = rec.wait_for(EventKind.DEAD_LETTER, "root/strict", timeout=TIMEOUT)
        assert dead.message.args == ["bad"]
        rec.wait_for(EventKind.RESTARTED, "root/strict", timeout=TIMEOUT)
        assert rec.matching(EventKind.HANDLER_FAILED) == []
        publisher.handle(Leave()).result(TIMEOUT)
