"""`hedgerow.Component` on the in-process router: actors, supervision, no deadlocks, run."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import threading

import pytest
from helpers import start

import hedgerow as hr
from hedgerow import EventKind
from hedgerow.components._component import Component
from hedgerow.components._component_actor import ComponentActor
from hedgerow.components._run import run
from hedgerow.transports import (
    ApplicationError,
    Call,
    CallOptions,
    CallResult,
    InProcessRouter,
    Publish,
    PublishOptions,
    RegisterOptions,
    SubscribeOptions,
)

TIMEOUT = 10.0


@pytest.fixture
def router():
    return InProcessRouter()


class _Peer:
    def deliver(self, message):
        pass


@pytest.fixture
def link(router):
    """A bare session on the router, to call components from the test's thread."""
    link = router.join("realm1", _Peer()).result(TIMEOUT)
    yield link
    if link.is_open:
        link.handle(hr.transports.Leave())


def call(link, procedure, *args, **kwargs):
    return link.handle(Call(procedure, list(args), kwargs)).result(TIMEOUT).args[0]


def supervised(*components, event_errors_fail=False, **spec):
    children = [c.child_spec(event_errors_fail=event_errors_fail) for c in components]
    return start(hr.SupervisorSpec(children, **spec))


# -- handlers on the actor's thread ----------------------------------------------


def test_handlers_run_on_the_actor_thread_one_at_a_time(router, link):
    comp = Component(transports=router, name="svc")
    threads, active, overlaps = set(), [0], []
    lock = threading.Lock()

    @comp.register("com.example.work")
    def work(n):
        with lock:
            threads.add(threading.get_ident())
            active[0] += 1
            overlaps.append(active[0])
        for _ in range(2000):  # give another thread every chance to barge in
            pass
        with lock:
            active[0] -= 1
        return n

    tree, _ = supervised(comp)
    with tree:
        futures = [link.handle(Call("com.example.work", [n])) for n in range(50)]
        callers = [router.join("realm1", _Peer()).result(TIMEOUT) for _ in range(3)]
        futures += [c.handle(Call("com.example.work", [n])) for c in callers for n in range(20)]
        assert sorted(f.result(TIMEOUT).args[0] for f in futures[:50]) == list(range(50))
        for f in futures[50:]:
            f.result(TIMEOUT)
        actor = tree.get_child("svc").incarnation
        assert threads == {actor._hr_thread_id}
        assert max(overlaps) == 1


def test_lifecycle_handlers_in_order_with_autobahn_arguments(router):
    comp = Component(transports=router, name="svc", extra={"k": 1})
    log = []
    comp.on_connect(lambda session, transport: log.append(("connect", transport is router)))
    comp.on_join(lambda session, details: log.append(("join", details.realm, session.config.extra)))
    comp.register("com.example.p")(lambda: None)
    comp.on_ready(lambda session: log.append(("ready", router.statistics().registrations)))
    comp.on_leave(lambda session, details: log.append(("leave", details.reason)))
    comp.on_disconnect(lambda session, was_clean: log.append(("disconnect", was_clean)))
    tree, _ = supervised(comp)
    tree.stop()
    assert log == [
        ("connect", True),
        ("join", "realm1", {"k": 1}),
        ("ready", {"realm1": {"com.example.p": 1}}),
        ("leave", "wamp.close.normal"),
        ("disconnect", True),
    ]
    assert router.statistics().registrations == {"realm1": {}}


def test_results_convert_as_autobahn_does(router):
    comp = Component(transports=router, name="svc")
    comp.register("com.one")(lambda: 1)
    comp.register("com.none")(lambda: None)
    comp.register("com.many")(lambda: CallResult(1, 2, x=3))
    results = {}

    @comp.on_ready
    def ready(session):
        for name in ("one", "none", "many"):
            results[name] = session.call(f"com.{name}").get(timeout=TIMEOUT)

    tree, _ = supervised(comp)
    with tree:
        assert results["one"] == 1
        assert results["none"] is None
        assert (results["many"].results, results["many"].kwresults) == ((1, 2), {"x": 3})


# -- errors ------------------------------------------------------------------------


def test_a_raising_procedure_answers_with_an_error_and_the_component_goes_on(router, link):
    comp = Component(transports=router, name="svc")

    @comp.register("com.example.fail")
    def fail(kind):
        if kind == "app":
            raise ApplicationError("com.example.error.bad", "arg", 2, field="x")
        if kind == "dead":
            raise hr.DeadLetterError("root/x", "gone")
        raise ValueError("plain", 42)

    tree, rec = supervised(comp)
    with tree:
        with pytest.raises(ApplicationError) as info:
            call(link, "com.example.fail", "app")
        assert (info.value.error, info.value.args, info.value.kwargs) == (
            "com.example.error.bad",
            ("arg", 2),
            {"field": "x"},
        )
        with pytest.raises(ApplicationError) as info:
            call(link, "com.example.fail", "plain")
        assert (info.value.error, info.value.args) == ("wamp.error.runtime_error", ("plain", 42))
        with pytest.raises(ApplicationError) as info:
            call(link, "com.example.fail", "dead")
        assert info.value.error == "hedgerow.error.actor_dead"
        assert rec.matching(EventKind.FAILED) == []


def test_a_raising_event_handler_is_reported_and_the_component_goes_on(router, link, caplog):
    comp = Component(transports=router, name="svc")
    got = []

    @comp.register("com.example.echo")
    def echo(value):
        return value

    @comp.subscribe("com.example.topic")
    def on_event(value):
        if value == "poison":
            raise RuntimeError("cannot digest")
        got.append(value)

    @comp.subscribe("com.example.topic")
    def also_on_event(value):
        got.append(("also", value))

    tree, rec = supervised(comp)
    with tree:
        for value in ("poison", "fine", "poison"):
            link.handle(Publish("com.example.topic", [value]))
        reported = rec.wait_for(EventKind.HANDLER_FAILED, "root/svc", count=2)
        assert isinstance(reported.reason, RuntimeError)
        assert reported.message.topic == "com.example.topic"
        assert reported.message.args == ["poison"]
        assert reported.incarnation == 1
        assert "cannot digest" in reported.traceback
        assert call(link, "com.example.echo", "still here") == "still here"
        tree.get_child("svc").ask("sync")  # the events were queued before this ask
        # The other handler of the same subscription saw every event.
        assert got == [("also", "poison"), "fine", ("also", "fine"), ("also", "poison")]
        assert rec.matching(EventKind.FAILED) == []
        assert rec.matching(EventKind.DEAD_LETTER) == []
        assert any(
            "handler_failed root/svc" in r.getMessage() and "cannot digest" in r.getMessage()
            for r in caplog.records
        )


def test_event_errors_fail_gives_erlangs_rule_and_it_subscribes_again(router, link):
    comp = Component(transports=router, name="svc")
    got = []

    @comp.subscribe("com.example.topic")
    def on_event(value):
        if value == "poison":
            raise RuntimeError("cannot digest")
        got.append(value)

    tree, rec = supervised(comp, event_errors_fail=True)
    with tree:
        link.handle(Publish("com.example.topic", ["poison"]))
        failed = rec.wait_for(EventKind.FAILED, "root/svc")
        assert isinstance(failed.reason, RuntimeError)
        dead = rec.wait_for(EventKind.DEAD_LETTER, "root/svc")
        assert dead.message.args == ["poison"]
        rec.wait_for(EventKind.RESTARTED, "root/svc")
        ack = PublishOptions(acknowledge=True)
        link.handle(Publish("com.example.topic", ["fine"], options=ack)).result(TIMEOUT)
        assert router.statistics().subscriptions == {"realm1": {"com.example.topic": 1}}
        tree.get_child("svc").ask("sync")  # the event was queued before this ask
        assert got == ["fine"]


# -- supervision -----------------------------------------------------------------------


def test_a_restart_brings_the_registrations_back(router, link):
    comp = Component(transports=router, name="svc")

    @comp.register("com.example.who")
    def who():
        return "incarnation"

    @comp.subscribe("com.example.crash")
    def crash():
        raise RuntimeError("told to crash")

    tree, rec = supervised(comp, event_errors_fail=True)
    with tree:
        assert call(link, "com.example.who") == "incarnation"
        first = tree.get_child("svc").incarnation.session.session_id
        link.handle(Publish("com.example.crash"))
        rec.wait_for(EventKind.RESTARTED, "root/svc")
        assert call(link, "com.example.who") == "incarnation"
        second = tree.get_child("svc").incarnation.session.session_id
        assert second != first
        assert router.statistics().sessions == {"realm1": 2}  # the test's link and svc


def test_a_call_in_flight_to_a_component_that_crashes_fails_and_never_hangs(router, link):
    comp = Component(transports=router, name="svc")
    entered, release = threading.Event(), threading.Event()

    @comp.subscribe("com.example.block_then_crash")
    def block_then_crash():
        entered.set()
        release.wait(TIMEOUT)
        raise RuntimeError("crashed while a call waited")

    @comp.register("com.example.p")
    def p():
        return "answered"

    tree, rec = supervised(comp, event_errors_fail=True)
    with tree:
        link.handle(Publish("com.example.block_then_crash"))
        assert entered.wait(TIMEOUT)
        pending = link.handle(Call("com.example.p"))  # queued behind the crash
        release.set()
        with pytest.raises(ApplicationError) as info:
            pending.result(TIMEOUT)
        assert info.value.error == ApplicationError.CANCELED
        rec.wait_for(EventKind.RESTARTED, "root/svc")
        assert call(link, "com.example.p") == "answered"


def test_a_router_side_close_is_a_failure_and_the_component_joins_again(router, link):
    comp = Component(transports=router, name="svc")
    comp.register("com.example.p")(lambda: "back")
    left = []
    comp.on_leave(lambda session, details: left.append(details.reason))
    comp.on_disconnect(lambda session, was_clean: left.append(was_clean))
    tree, rec = supervised(comp)
    with tree:
        router.close_sessions()
        failed = rec.wait_for(EventKind.FAILED, "root/svc")
        assert "wamp.close.system_shutdown" in str(failed.reason)
        rec.wait_for(EventKind.RESTARTED, "root/svc")
        other = router.join("realm1", _Peer()).result(TIMEOUT)
        assert call(other, "com.example.p") == "back"
        assert left == ["wamp.close.system_shutdown", False]


def test_a_component_that_cannot_join_fails_to_start_and_reports_connectfailure():
    router = InProcessRouter(realms=["only.this"])
    comp = Component(transports=router, name="svc", realm="another.realm")
    failures = []
    comp.on_connectfailure(lambda component, exc: failures.append((component, exc.error)))
    with pytest.raises(hr.StartError) as info:
        supervised(comp)
    assert "svc" in str(info.value)
    assert failures == [(comp, ApplicationError.NO_SUCH_REALM)]


# -- no deadlocks -------------------------------------------------------------------------


def test_a_component_can_call_its_own_procedure_from_a_handler(router, link):
    comp = Component(transports=router, name="svc")

    @comp.register("com.example.double")
    def double(n):
        return 2 * n

    @comp.register("com.example.quadruple")
    def quadruple(n):
        session = tree.get_child("svc").incarnation.session
        return session.call("com.example.double", session.call("com.example.double", n).get()).get()

    tree, _ = supervised(comp)
    with tree:
        assert call(link, "com.example.quadruple", 3) == 12


def test_two_components_calling_each_other_do_not_deadlock(router, link):
    ping = Component(transports=router, name="ping")
    pong = Component(transports=router, name="pong")
    sessions = {}
    ping.on_join(lambda s, d: sessions.__setitem__("ping", s))
    pong.on_join(lambda s, d: sessions.__setitem__("pong", s))

    @ping.register("com.example.ping")
    def do_ping(n):
        return (
            n if n == 0 else sessions["ping"].call("com.example.pong", n - 1).get(timeout=TIMEOUT)
        )

    @pong.register("com.example.pong")
    def do_pong(n):
        return (
            n if n == 0 else sessions["pong"].call("com.example.ping", n - 1).get(timeout=TIMEOUT)
        )

    tree, _ = supervised(ping, pong)
    with tree:
        assert call(link, "com.example.ping", 9) == 0


def test_other_messages_wait_for_the_handler_that_waits_on_a_call(router, link):
    """While a handler waits on a call, pykka asks to the component wait their turn."""
    comp = Component(transports=router, name="svc")
    gate = threading.Event()
    order = []

    @comp.register("com.example.slow")
    def slow():
        gate.wait(TIMEOUT)
        return "slow"

    @comp.register("com.example.outer")
    def outer():
        session = tree.get_child("svc").incarnation.session
        future = session.call("com.example.slow")
        order.append("outer waits")
        gate.set()
        order.append(future.get(timeout=TIMEOUT))
        return "outer"

    tree, _ = supervised(comp)
    with tree:
        pending = link.handle(Call("com.example.outer"))
        assert pending.result(TIMEOUT).args == ["outer"]
        assert order == ["outer waits", "slow"]


def test_progressive_results_reach_the_callers_on_progress_on_its_thread(router):
    comp = Component(transports=router, name="svc")
    seen = []

    @comp.register("com.example.count", options=RegisterOptions(details=True))
    def count(n, details):
        for i in range(n):
            details.progress(i)
        return "done"

    @comp.on_ready
    def ready(session):
        def on_progress(i):
            seen.append((i, threading.get_ident()))

        result = session.call("com.example.count", 3, options=CallOptions(on_progress=on_progress))
        seen.append(result.get(timeout=TIMEOUT))

    tree, _ = supervised(comp)
    with tree:
        actor = tree.get_child("svc").incarnation
        assert seen == [
            (0, actor._hr_thread_id),
            (1, actor._hr_thread_id),
            (2, actor._hr_thread_id),
            "done",
        ]


def test_event_details_and_exclude_me_in_a_component(router, link):
    comp = Component(transports=router, name="svc")
    got = []

    @comp.subscribe("com.example", options=SubscribeOptions(match="prefix", details=True))
    def on_event(value, details):
        got.append((value, details.topic))

    @comp.on_ready
    def ready(session):
        session.publish("com.example.mine", "not to me")
        session.publish(
            "com.example.mine",
            "to me too",
            options=PublishOptions(exclude_me=False, acknowledge=True),
        )

    tree, _ = supervised(comp)
    with tree:
        link.handle(Publish("com.example.theirs", ["from outside"]))
        tree.get_child("svc").ask("sync")
        assert got == [("to me too", "com.example.mine"), ("from outside", "com.example.theirs")]


def test_unregister_and_unsubscribe_through_autobahn_objects(router, link):
    comp = Component(transports=router, name="svc")

    @comp.on_ready
    def ready(session):
        registration = session.register(lambda: 1, "com.example.p")
        subscription = session.subscribe(lambda: None, "com.example.t")
        registration.unregister()
        subscription.unsubscribe()
        assert not registration.active

    tree, _ = supervised(comp)
    with tree:
        assert router.statistics().registrations == {"realm1": {}}
        assert router.statistics().subscriptions == {"realm1": {}}


# -- configuration -------------------------------------------------------------------


def test_component_arguments_are_validated_as_autobahn_does():
    with pytest.raises(ValueError, match='"main" must be a callable'):
        Component(main=42)
    with pytest.raises(ValueError, match='"is_fatal" must be a callable'):
        Component(is_fatal=True)
    assert Component(transports="ws://127.0.0.1:8080/ws").transports[0].serializers == (
        "msgpack",
        "cbor",
        "json",
    )
    with pytest.raises(ValueError, match=r"transports\[0\]: 'port' is not a valid configuration"):
        Component(transports={"url": "ws://127.0.0.1:8080/ws", "port": 8080})
    with pytest.raises(ValueError, match="invalid serializer 'xml'"):
        Component(transports={"type": "inprocess", "serializers": ["xml"]})
    with pytest.raises(ValueError, match="invalid transport type 'carrier-pigeon'"):
        Component(transports={"type": "carrier-pigeon"})
    comp = Component(transports={"type": "inprocess", "serializers": ["json"]})
    assert comp.transports[0].serializers == ("json",)


def test_a_component_is_a_factory_of_fresh_actors(router):
    comp = Component(transports=router)
    one, two = comp(), comp()
    assert isinstance(one, ComponentActor)
    assert one is not two
    spec = comp.child_spec("svc", restart="failed")
    assert (spec.id, spec.start, spec.restart) == ("svc", comp, hr.Restart.FAILED)


# -- run ----------------------------------------------------------------------------


def test_run_returns_when_main_is_done(router):
    callee = Component(transports=router, name="callee")
    callee.register("com.example.add")(lambda a, b: a + b)
    results, events = [], []

    def main(actor, session):
        results.append(session.call("com.example.add", 2, 3).get(timeout=TIMEOUT))

    caller = Component(main=main, transports=router, name="caller")
    caller.on_leave(lambda s, d: events.append("leave"))
    caller.on_disconnect(lambda s, clean: events.append(("disconnect", clean)))

    @callee.on_ready
    def stop_when_caller_done(session):
        pass

    # The callee serves for ever: only the caller is done, so run the caller
    # alone, with the callee under its own tree.
    tree, _ = supervised(callee)
    with tree:
        reason = run([caller], log_level=None)
    assert isinstance(reason, hr.Shutdown)
    assert results == [5]
    assert events == ["leave", ("disconnect", True)]


def test_run_stops_the_components_on_ctrl_c(router):
    comp = Component(transports=router, name="svc")
    stopped = []
    comp.on_leave(lambda s, d: stopped.append(d.reason))

    @comp.on_ready
    def interrupt(session):
        os.kill(os.getpid(), signal.SIGINT)

    reason = run(comp, log_level=None)
    assert reason == hr.SHUTDOWN
    assert stopped == ["wamp.close.normal"]


@pytest.mark.timeout(20)
def test_ctrl_c_while_run_waits_for_a_late_router_stops_at_once():
    late = LateRouter(10**9, initial_retry_delay=0.05, max_retry_delay=0.05)
    comp = Component(transports=late, name="svc")

    @comp.on_connectfailure
    def interrupt(component, exc):
        if late.attempts == 3:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        run(comp, log_level=None)
    assert late.attempts >= 3


def test_run_checks_its_arguments():
    with pytest.raises(ValueError, match="must be a list of Component"):
        run("nope")
    with pytest.raises(ValueError, match="log_level='loud'"):
        run([Component()], log_level="loud")


# -- the first join follows the transport's retry settings (autobahn's Component) ----


class LateRouter(hr.transports.Transport):
    """An in-process router that refuses the first `down_for` joins, with a retry policy
    (as the WAMP transport has): a router that starts after the component."""

    def __init__(self, down_for: int, error: str = "hedgerow.error.not_connected", **retry):
        self.router = InProcessRouter()
        self.down_for = down_for
        self.error = error
        self.attempts = 0
        self.retry = hr.transports.RetryPolicy(**retry)

    def join(self, realm, peer, **options):
        self.attempts += 1
        if self.attempts <= self.down_for:
            refused: concurrent.futures.Future = concurrent.futures.Future()
            refused.set_exception(ApplicationError(self.error, "the router is not up yet"))
            return refused
        return self.router.join(realm, peer, **options)


def start_in_thread(spec, clock):
    """Start a tree on `clock` in a thread; the test moves the clock meanwhile."""
    outcome: dict[str, object] = {}

    def starting():
        try:
            outcome["tree"] = start(spec, clock=clock)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=starting)
    thread.start()
    return thread, outcome


def run_clock_until_done(clock, thread, delays):
    """Move the virtual clock to each timer the start sets, until the start is done."""
    while thread.is_alive():
        try:
            due = clock.wait_for_timer(timeout=0.05)
        except TimeoutError:
            continue
        delays.append(due - clock.now())
        clock.advance(due - clock.now())
    thread.join()


def test_a_component_whose_router_comes_up_late_still_starts(clock):
    late = LateRouter(2, initial_retry_delay=1.0, retry_delay_growth=2.0, retry_delay_jitter=0.0)
    comp = Component(transports=late, name="svc")
    comp.register("com.example.late")(lambda: "served")
    failures = []
    comp.on_connectfailure(lambda component, exc: failures.append(exc.error))
    thread, outcome = start_in_thread(hr.SupervisorSpec([comp.child_spec()]), clock)
    delays: list[float] = []
    run_clock_until_done(clock, thread, delays)
    assert "error" not in outcome, outcome
    tree, rec = outcome["tree"]
    with tree:
        link = late.router.join("realm1", _Peer()).result(TIMEOUT)
        assert call(link, "com.example.late") == "served"
        # autobahn's arithmetic: the first attempt at once, then 1.0 x 2, then x 2 again.
        assert delays == [2.0, 4.0]
        assert failures == ["hedgerow.error.not_connected"] * 2
        assert rec.matching(EventKind.START_FAILED) == []


def test_the_first_join_gives_up_after_max_retries_and_the_start_fails(clock):
    late = LateRouter(100, max_retries=2, initial_retry_delay=0.5, retry_delay_jitter=0.0)
    comp = Component(transports=late, name="svc")
    thread, outcome = start_in_thread(hr.SupervisorSpec([comp.child_spec()]), clock)
    run_clock_until_done(clock, thread, [])
    assert isinstance(outcome["error"], hr.StartError)
    assert late.attempts == 3  # the first attempt and max_retries=2 retries, as autobahn


def test_is_fatal_ends_the_first_join_at_once():
    late = LateRouter(100)
    comp = Component(transports=late, name="svc", is_fatal=lambda exc: True)
    with pytest.raises(hr.StartError):
        supervised(comp)
    assert late.attempts == 1


@pytest.mark.parametrize(
    "error", [ApplicationError.NOT_AUTHORIZED, ApplicationError.AUTHENTICATION_FAILED]
)
def test_a_refusal_that_waiting_cannot_mend_is_fatal_by_default(error):
    late = LateRouter(100, error=error)
    comp = Component(transports=late, name="svc")
    with pytest.raises(hr.StartError):
        supervised(comp)
    assert late.attempts == 1
