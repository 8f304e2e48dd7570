"""The transport seam's conformance suite: every implementation must pass it.

Written against `Transport`/`Link`/`Peer` only, as trio's check_two_way_stream
is written against a stream: RPC, pub/sub, registration and match policies,
errors, publish options, progressive results, serializers, leaving.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from hedgerow.transports import (
    SERIALIZERS,
    ApplicationError,
    Call,
    CallOptions,
    Leave,
    Publish,
    PublishOptions,
    Register,
    Result,
    Unregister,
    Unsubscribe,
)

TIMEOUT = 10.0


# -- RPC ----------------------------------------------------------------------


def test_call_carries_args_and_kwargs_both_ways(clients):
    callee, caller = clients(), clients()

    def handler(inv):
        inv.reply.result([inv.args[0] + inv.args[1]], {"echo": inv.kwargs})

    callee.register("com.example.add", handler)
    assert caller.call("com.example.add", 2, 3, unit="m") == Result([5], {"echo": {"unit": "m"}})


def test_invocation_names_the_procedure_called(clients):
    callee, caller = clients(), clients()
    seen = []

    def handler(inv):
        seen.append((inv.procedure, inv.session, inv.receive_progress))
        inv.reply.result([], {})

    callee.register("com.example.p", handler)
    caller.call("com.example.p")
    assert seen == [("com.example.p", callee.link.session_id, False)]


def test_calling_an_unregistered_procedure_fails_with_no_such_procedure(clients):
    caller = clients()
    with pytest.raises(ApplicationError) as info:
        caller.call("com.example.nothing")
    assert info.value.error == ApplicationError.NO_SUCH_PROCEDURE
    assert "com.example.nothing" in info.value.args[0]


def test_errors_travel_back_with_uri_args_and_kwargs(clients):
    callee, caller = clients(), clients()
    callee.register(
        "com.example.fail",
        lambda inv: inv.reply.error("com.example.error.bad_input", ["x", 1], {"field": "x"}),
    )
    with pytest.raises(ApplicationError) as info:
        caller.call("com.example.fail")
    assert info.value.error == "com.example.error.bad_input"
    assert info.value.args == ("x", 1)
    assert info.value.kwargs == {"field": "x"}


def test_one_callee_per_procedure_by_default(clients):
    a, b = clients(), clients()
    a.serve("com.example.p", lambda: "a")
    with pytest.raises(ApplicationError) as info:
        b.serve("com.example.p", lambda: "b")
    assert info.value.error == ApplicationError.PROCEDURE_ALREADY_EXISTS
    # Even a shared policy cannot join a single registration.
    with pytest.raises(ApplicationError) as info:
        b.serve("com.example.p", lambda: "b", invoke="roundrobin")
    assert info.value.error == ApplicationError.PROCEDURE_ALREADY_EXISTS


def test_a_shared_registration_refuses_another_policy(clients):
    a, b = clients(), clients()
    a.serve("com.example.p", lambda: "a", invoke="roundrobin")
    with pytest.raises(ApplicationError) as info:
        b.serve("com.example.p", lambda: "b", invoke="random")
    assert info.value.error == ApplicationError.PROCEDURE_EXISTS_INVOCATION_POLICY_CONFLICT


def _shared(clients, invoke, n=3, procedure="com.example.shared"):
    callees = [clients() for _ in range(n)]
    for index, callee in enumerate(callees):
        callee.serve(procedure, lambda i=index: i, invoke=invoke)
    return callees, clients()


def test_roundrobin_takes_callees_in_turn(clients):
    _, caller = _shared(clients, "roundrobin")
    answers = [caller.call("com.example.shared").args[0] for _ in range(7)]
    assert answers == [0, 1, 2, 0, 1, 2, 0]


def test_first_takes_the_oldest_callee_and_last_the_newest(clients):
    callees, caller = _shared(clients, "first")
    assert {caller.call("com.example.shared").args[0] for _ in range(4)} == {0}
    callees[0].link.handle(Leave()).result(TIMEOUT)
    assert caller.call("com.example.shared").args[0] == 1

    procedure = "com.example.shared.last"
    callees, caller = _shared(clients, "last", procedure=procedure)
    assert {caller.call(procedure).args[0] for _ in range(4)} == {2}
    reg_id = next(iter(callees[2].handlers))
    callees[2].link.handle(Unregister(reg_id)).result(TIMEOUT)
    assert caller.call(procedure).args[0] == 1


def test_random_spreads_calls_over_callees(clients):
    _, caller = _shared(clients, "random")
    answers = Counter(caller.call("com.example.shared").args[0] for _ in range(60))
    assert set(answers) == {0, 1, 2}


def test_single_is_the_default_policy_named_explicitly(clients):
    a, b = clients(), clients()
    a.serve("com.example.p", lambda: "a", invoke="single")
    with pytest.raises(ApplicationError):
        b.serve("com.example.p", lambda: "b", invoke="single")
    assert b.call("com.example.p").args == ["a"]


# -- match policies -------------------------------------------------------------


def _echo_procedure(inv):
    inv.reply.result([inv.procedure], {})


def test_prefix_registration_matches_by_string_prefix(clients):
    callee, caller = clients(), clients()
    callee.register("com.myapp.emergency", _echo_procedure, match="prefix")
    for uri in ("com.myapp.emergency", "com.myapp.emergency.11", "com.myapp.emergency-low"):
        assert caller.call(uri).args == [uri]
    with pytest.raises(ApplicationError) as info:
        caller.call("com.myapp.emerg")
    assert info.value.error == ApplicationError.NO_SUCH_PROCEDURE


def test_wildcard_registration_matches_any_one_component(clients):
    callee, caller = clients(), clients()
    callee.register("com.myapp..update", _echo_procedure, match="wildcard")
    assert caller.call("com.myapp.user.update").args == ["com.myapp.user.update"]
    for uri in ("com.myapp.update", "com.myapp.a.b.update", "com.myapp.user.delete"):
        with pytest.raises(ApplicationError) as info:
            caller.call(uri)
        assert info.value.error == ApplicationError.NO_SUCH_PROCEDURE


def test_exact_beats_prefix_beats_wildcard_and_longest_prefix_wins(clients):
    callee, caller = clients(), clients()
    callee.serve("com.a.b.c", lambda: "exact")
    callee.serve("com.a.b", lambda: "long prefix", match="prefix")
    callee.serve("com.a", lambda: "short prefix", match="prefix")
    callee.serve("com..x.c", lambda: "wildcard, first component", match="wildcard")
    callee.serve("com.z..c", lambda: "wildcard, later component", match="wildcard")
    callee.serve("com.z.x.", lambda: "wildcard, last component", match="wildcard")
    assert caller.call("com.a.b.c").args == ["exact"]
    assert caller.call("com.a.b.d").args == ["long prefix"]
    assert caller.call("com.a.x").args == ["short prefix"]
    assert caller.call("com.z.x.c").args == ["wildcard, last component"]
    assert caller.call("com.z.y.c").args == ["wildcard, later component"]
    assert caller.call("com.q.x.c").args == ["wildcard, first component"]


def test_same_uri_with_another_match_is_another_registration(clients):
    a, b, caller = clients(), clients(), clients()
    a.serve("com.example", lambda: "exact")
    b.serve("com.example", lambda: "prefix", match="prefix")
    assert caller.call("com.example").args == ["exact"]
    assert caller.call("com.example.more").args == ["prefix"]


@pytest.mark.parametrize(
    ("uri", "match"),
    [
        ("com..bad", "exact"),
        ("com.bad.", "exact"),
        ("com.bad thing", "exact"),
        ("com..x", "prefix"),
    ],
)
def test_invalid_uris_are_refused(clients, uri, match):
    client = clients()
    with pytest.raises(ApplicationError) as info:
        client.serve(uri, lambda: None, match=match)
    assert info.value.error == ApplicationError.INVALID_URI
    assert repr(uri) in info.value.args[0]


def test_invalid_policies_are_refused_by_name(clients):
    client = clients()
    with pytest.raises(ApplicationError, match="invoke='sometimes'"):
        client.link.handle(Register("com.example.p", _Options(invoke="sometimes"))).result(TIMEOUT)


class _Options:
    """Options as the wire may carry them (autobahn's classes assert their values)."""

    def __init__(self, match=None, invoke=None) -> None:
        self.match = match
        self.invoke = invoke


# -- pub/sub ---------------------------------------------------------------------


def test_events_reach_subscribers_with_their_payload(clients):
    subscriber, publisher = clients(), clients()
    sub_id = subscriber.subscribe("com.example.topic")
    publisher.link.handle(Publish("com.example.topic", [1, "two"], {"three": 3}))
    (event,) = subscriber.wait_events(1)
    assert (event.subscription, event.topic, event.args, event.kwargs) == (
        sub_id,
        "com.example.topic",
        [1, "two"],
        {"three": 3},
    )


def test_prefix_and_wildcard_subscriptions_get_each_event_once_per_subscription(clients):
    subscriber, publisher = clients(), clients()
    exact = subscriber.subscribe("com.a.b")
    prefix = subscriber.subscribe("com.a", match="prefix")
    wildcard = subscriber.subscribe("com..b", match="wildcard")
    subscriber.subscribe("com.x", match="prefix")
    publisher.link.handle(Publish("com.a.b", ["hi"]))
    events = subscriber.wait_events(3)
    assert sorted(e.subscription for e in events) == sorted([exact, prefix, wildcard])
    assert {e.topic for e in events} == {"com.a.b"}
    assert len({e.publication for e in events}) == 1


def test_publisher_is_excluded_unless_exclude_me_is_false(clients):
    both, other = clients(), clients()
    both.subscribe("com.example.topic")
    other.subscribe("com.example.topic")
    both.link.handle(Publish("com.example.topic", ["excluded"]))
    both.link.handle(
        Publish("com.example.topic", ["included"], options=PublishOptions(exclude_me=False))
    )
    assert [e.args for e in other.wait_events(2)] == [["excluded"], ["included"]]
    assert [e.args for e in both.wait_events(1)] == [["included"]]


def test_acknowledge_returns_the_publication_id_and_reports_errors(clients):
    subscriber, publisher = clients(), clients()
    subscriber.subscribe("com.example.topic")
    ack = PublishOptions(acknowledge=True)
    publication = publisher.link.handle(Publish("com.example.topic", options=ack)).result(TIMEOUT)
    assert isinstance(publication, int)
    assert subscriber.wait_events(1)[0].publication == publication
    assert publisher.link.handle(Publish("com.example.topic")).result(TIMEOUT) is None
    with pytest.raises(ApplicationError) as info:
        publisher.link.handle(Publish("com..bad", options=ack)).result(TIMEOUT)
    assert info.value.error == ApplicationError.INVALID_URI
    # Unacknowledged, the same mistake gets no answer (WAMP's rule).
    assert publisher.link.handle(Publish("com..bad")).result(TIMEOUT) is None


def test_the_routers_meta_namespace_is_nobody_elses(clients):
    """No session registers or publishes under ``wamp.`` (the router's meta API and
    events), and an application session reads nothing there."""
    client = clients()
    ack = PublishOptions(acknowledge=True)
    for request in (
        Register("wamp.session.list", None),
        Publish("wamp.session.on_leave", [1], {}, ack),
        Call("wamp.session.list", [], {}),
        Call("wamp.registration.list", [], {}),
    ):
        with pytest.raises(ApplicationError) as info:
            client.link.handle(request).result(TIMEOUT)
        assert info.value.error in (
            ApplicationError.INVALID_URI,
            ApplicationError.NOT_AUTHORIZED,
            ApplicationError.NO_SUCH_PROCEDURE,  # a router without a meta API
        ), (request, info.value)


def test_unsubscribe_stops_events_and_unknown_ids_are_errors(clients):
    subscriber, publisher = clients(), clients()
    sub_id = subscriber.subscribe("com.example.topic")
    subscriber.link.handle(Unsubscribe(sub_id)).result(TIMEOUT)
    with pytest.raises(ApplicationError) as info:
        subscriber.link.handle(Unsubscribe(sub_id)).result(TIMEOUT)
    assert info.value.error == ApplicationError.NO_SUCH_SUBSCRIPTION
    with pytest.raises(ApplicationError) as info:
        subscriber.link.handle(Unregister(12345)).result(TIMEOUT)
    assert info.value.error == ApplicationError.NO_SUCH_REGISTRATION
    ack = PublishOptions(acknowledge=True)
    publisher.link.handle(Publish("com.example.topic", options=ack)).result(TIMEOUT)
    marker = subscriber.subscribe("com.example.marker")
    publisher.link.handle(Publish("com.example.marker", options=ack)).result(TIMEOUT)
    assert [e.subscription for e in subscriber.wait_events(1)] == [marker]


# -- progressive results -----------------------------------------------------------


def test_progressive_results_arrive_in_order_before_the_final_one(clients):
    callee, caller = clients(), clients()

    def handler(inv):
        assert inv.receive_progress
        for n in range(3):
            inv.reply.progress([n], {"step": n})
        inv.reply.result(["done"], {})

    callee.register("com.example.long", handler)
    seen = []
    lock = threading.Lock()

    def on_progress(args, kwargs):
        with lock:
            seen.append((args, kwargs))

    future = caller.link.handle(
        Call("com.example.long", options=CallOptions(on_progress=print), on_progress=on_progress)
    )
    assert future.result(TIMEOUT).args == ["done"]
    assert seen == [([n], {"step": n}) for n in range(3)]


# -- serializers -------------------------------------------------------------------

PAYLOAD = [
    1,
    -(2**40),
    2.5,
    "héllo ✓",
    True,
    None,
    b"\x00\x01bytes",
    [1, [2, [3]]],
    {"nested": {"list": [1, "a"], "empty": {}}},
]


@pytest.mark.parametrize("serializer", SERIALIZERS)
def test_payloads_survive_each_serializer(clients, implementation, serializer):
    callee = clients(serializers=[serializer])
    caller = clients(serializers=[serializer])
    assert caller.link.serializer == serializer
    received = []

    def handler(inv):
        received.append((inv.args, inv.kwargs))
        inv.reply.result(inv.args, inv.kwargs)

    callee.register("com.example.echo", handler)
    result = caller.call("com.example.echo", *PAYLOAD, key=PAYLOAD)
    assert result == Result(PAYLOAD, {"key": PAYLOAD})
    assert received == [(PAYLOAD, {"key": PAYLOAD})]
    if implementation.copies_payloads:
        assert received[0][1]["key"] is not PAYLOAD


def test_payloads_cross_between_sessions_with_different_serializers(clients):
    callee, caller = clients(serializers=["cbor"]), clients(serializers=["json"])
    assert (callee.link.serializer, caller.link.serializer) == ("cbor", "json")
    callee.register("com.example.echo", lambda inv: inv.reply.result(inv.args, inv.kwargs))
    assert caller.call("com.example.echo", *PAYLOAD).args == PAYLOAD


def test_serializers_are_negotiated_in_the_offered_order(transport, clients):
    assert clients().link.serializer == "msgpack"
    assert clients(serializers=["cbor", "msgpack"]).link.serializer == "cbor"
    with pytest.raises(ValueError, match="no common serializer"):
        transport.join("realm1", None, serializers=["ubjson"]).result(TIMEOUT)


def test_a_copying_transport_refuses_what_the_wire_cannot_carry(clients, implementation):
    callee, caller = clients(), clients()
    callee.register("com.example.echo", lambda inv: inv.reply.result(inv.args, {}))
    thing = object()
    if not implementation.copies_payloads:
        # Passed by reference: the very object arrives, and comes back.
        assert caller.call("com.example.echo", thing).args[0] is thing
        return
    with pytest.raises(ApplicationError) as info:
        caller.call("com.example.echo", thing)
    assert info.value.error == ApplicationError.INVALID_PAYLOAD
    # Tuples travel as lists, as on the wire.
    assert caller.call("com.example.echo", (1, 2)).args == [[1, 2]]


# -- sessions -------------------------------------------------------------------------


def test_realms_are_separate(clients):
    one, two = clients("realm.one"), clients("realm.two")
    one.serve("com.example.p", lambda: 1)
    two.serve("com.example.p", lambda: 2)
    assert one.call("com.example.p").args == [1]
    assert two.call("com.example.p").args == [2]


def test_leaving_drops_registrations_and_later_requests_fail(clients):
    callee, caller = clients(), clients()
    callee.serve("com.example.p", lambda: 1)
    callee.link.handle(Leave()).result(TIMEOUT)
    assert not callee.link.is_open
    with pytest.raises(ApplicationError) as info:
        caller.call("com.example.p")
    assert info.value.error == ApplicationError.NO_SUCH_PROCEDURE
    with pytest.raises(ApplicationError) as info:
        callee.link.handle(Call("com.example.p")).result(TIMEOUT)
    assert info.value.error == ApplicationError.NO_SUCH_SESSION
    clients().serve("com.example.p", lambda: 2)  # the URI is free again


def test_calls_in_flight_to_a_callee_that_leaves_fail_at_once(clients):
    callee, caller = clients(), clients()
    held = threading.Event()
    callee.register("com.example.hold", lambda inv: held.set())  # never answers
    future = caller.link.handle(Call("com.example.hold"))
    assert held.wait(TIMEOUT)
    callee.link.handle(Leave()).result(TIMEOUT)
    with pytest.raises(ApplicationError) as info:
        future.result(TIMEOUT)
    assert info.value.error == ApplicationError.CANCELED
    assert "com.example.hold" in info.value.args[0]
