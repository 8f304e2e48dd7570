"""Fault injection: each kind has its effect, and is undone by clear() / close()."""

from __future__ import annotations

import pytest
from helpers import Log, Worker, ran_out, worker

import hedgerow as hr
from hedgerow import EventKind
from hedgerow.actors._inbox import Inbox
from hedgerow.testing import FaultError, FaultKind, Faults, InjectedFault


def steady(child_id: str, log: Log | None = None, **options) -> hr.ChildSpec:
    """A worker restarted at once, with room for many restarts."""
    return worker(child_id, log, **options)


def roomy(*children: hr.ChildSpec, **options) -> hr.SupervisorSpec:
    return hr.SupervisorSpec(list(children), max_restarts=100, period=1000, **options)


@pytest.fixture
def start(hedgerow_tree_factory, runtime):
    """Start a spec; returns the tree and its Faults. Every test runs on each
    runtime (thread, event-loop and mixed children: the `runtime` fixture)."""

    def start(spec: hr.SupervisorSpec) -> tuple[hr.Tree, Faults]:
        tree = hedgerow_tree_factory(spec)
        return tree, hedgerow_tree_factory.faults(tree)

    return start


def test_crash_now_fails_the_child_with_the_given_exception(start, hedgerow_recorder):
    log = Log()
    tree, faults = start(roomy(steady("a", log)))
    error = KeyError("boom")
    fault = faults.crash("root/a", error)
    failed = hedgerow_recorder.wait_for(EventKind.FAILED, "root/a")
    assert failed.reason is error
    hedgerow_recorder.wait_restarted("root/a")
    assert tree.lookup("root/a").ask("after") == ("a", 2, "after")
    assert fault.fired == 1
    assert not fault.active
    assert [(r.kind, r.path, r.incarnation) for r in faults.log] == [(FaultKind.CRASH, "root/a", 1)]


def test_crash_at_the_nth_message_dead_letters_it_and_keeps_the_rest(start, hedgerow_recorder):
    log = Log()
    tree, faults = start(roomy(steady("a", log)))
    fault = faults.crash("root/a", ValueError, at_message=3)
    ref = tree.lookup("root/a")
    for n in range(1, 6):
        ref.tell(n)
    assert ref.ask("sync") == ("a", 2, "sync")
    assert [m for _, m in log.of("got")] == [1, 2, 4, 5, "sync"]
    assert hedgerow_recorder.dead_letters("root/a") == [3]
    failed = hedgerow_recorder.matching("failed", "root/a")[0]
    assert isinstance(failed.reason, ValueError)
    assert "injected crash of root/a" in str(failed.reason)
    assert fault.fired == 1
    assert faults.active == []


def test_an_ask_that_hits_a_crash_gets_the_error_and_the_child_still_fails(
    start, hedgerow_recorder
):
    tree, faults = start(roomy(steady("a")))
    faults.crash("root/a", at_message=1)
    with pytest.raises(InjectedFault):
        tree.lookup("root/a").ask("question", timeout=5)
    hedgerow_recorder.wait_restarted("root/a")


def crashed_messages(start, seed: int) -> list[int]:
    """Which of 40 messages a 25 % crash fault hits, with this seed."""
    log = Log()
    tree, faults = start(roomy(steady("a", log)))
    faults.seed = seed
    faults.crash("root/a", probability=0.25)
    ref = tree.lookup("root/a")
    for n in range(40):
        ref.tell(n)
    while True:  # the sync message itself may be hit (the same way for a seed)
        try:
            ref.ask("sync", timeout=10)
            break
        except InjectedFault:
            pass
    handled = {m for _, m in log.of("got")}
    tree.stop(timeout=10)
    return [n for n in range(40) if n not in handled]


def test_crash_with_a_probability_is_seeded(start):
    first = crashed_messages(start, seed=7)
    again = crashed_messages(start, seed=7)
    other = crashed_messages(start, seed=8)
    assert first == again
    assert 3 <= len(first) <= 20
    assert other != first


@pytest.mark.usefixtures("no_block_reports")  # it compares the child's events
def test_fail_starts_fails_the_next_n_starts_then_lets_it_start(start, hedgerow_recorder):
    _tree, faults = start(roomy(worker("a", initial_retry_delay=1, retry_delay_jitter=0)))
    fault = faults.fail_starts("root/a", 2, OSError("disk full"))
    faults.crash("root/a")
    hedgerow_recorder.wait_restarted("root/a")
    assert [e.kind.value for e in hedgerow_recorder.matching(path="root/a")] == [
        "started",
        "failed",
        "start_failed",
        "restart_scheduled",
        "start_failed",
        "restart_scheduled",
        "restarted",
    ]
    first, second = hedgerow_recorder.matching("start_failed")
    assert isinstance(first.reason, OSError)
    assert second.reason is not first.reason  # a fresh copy each time
    assert fault.fired == 2
    assert not fault.active


def test_hang_ignores_stop_until_the_shutdown_timeout_abandons_it(start, hedgerow_recorder):
    """A hung thread is abandoned; a hung event-loop actor (an await that never
    completes: its loop runs on) is killed, its task cancelled."""
    tree, faults = start(roomy(steady("a", shutdown=3.0), steady("b")))
    kind = ran_out(type(tree.lookup("root/a").incarnation))
    fault = faults.hang("root/a")
    fault.wait_fired()  # else the stop below could overtake it in the inbox
    tree.lookup("root/a").tell("queued")
    assert tree.lookup("root/b").ask("the others go on") == ("b", 1, "the others go on")
    assert tree.stop(timeout=10) == hr.SHUTDOWN
    ended = hedgerow_recorder.wait_for(kind, "root/a")
    assert (ended.time, ended.reason) == (3.0, hr.KILLED)
    assert fault.active
    faults.clear()  # releases the abandoned thread, which then ends
    assert not fault.active
    assert hedgerow_recorder.dead_letters("root/a") == ["queued"]


def test_a_cleared_hang_lets_the_child_go_on(start):
    log = Log()
    tree, faults = start(roomy(steady("a", log)))
    faults.hang("root/a", at_message=1)
    ref = tree.lookup("root/a")
    future = ref.ask("first", block=False)
    ref.tell("second")
    faults.clear()
    assert future.get(timeout=5) == ("a", 1, "first")
    assert ref.ask("third") == ("a", 1, "third")
    assert [m for _, m in log.of("got")] == ["first", "second", "third"]


def test_slow_delays_each_message_on_the_trees_clock(start, hedgerow_clock):
    tree, faults = start(roomy(steady("a")))
    fault = faults.slow("root/a", 2.5, messages=2)
    ref = tree.lookup("root/a")
    assert ref.ask(1) == ("a", 1, 1)
    assert hedgerow_clock.now() == 2.5
    assert ref.ask(2) == ("a", 1, 2)
    assert hedgerow_clock.now() == 5.0
    assert ref.ask(3) == ("a", 1, 3)
    assert hedgerow_clock.now() == 5.0
    assert fault.fired == 2
    assert not fault.active


@pytest.mark.parametrize(("restart", "restarted"), [("always", True), ("failed", False)])
def test_exit_stops_the_child_normally(start, hedgerow_recorder, restart, restarted):
    tree, faults = start(roomy(steady("a", restart=restart), steady("b")))
    faults.exit("root/a")
    stopped = hedgerow_recorder.wait_for(EventKind.STOPPED, "root/a")
    assert stopped.reason == hr.NORMAL
    tree.lookup("root/b").ask("sync")
    if restarted:
        hedgerow_recorder.wait_restarted("root/a")
    else:
        assert not tree.lookup("root/a").is_alive()
        assert hedgerow_recorder.restarts("root/a") == 0
    assert hedgerow_recorder.matching("failed") == []


def test_shutdown_stops_the_child_with_a_shutdown_reason(start, hedgerow_recorder):
    tree, faults = start(roomy(steady("a", restart="failed"), steady("b")))
    faults.shutdown("root/a", "maintenance")
    stopped = hedgerow_recorder.wait_for(EventKind.STOPPED, "root/a")
    assert isinstance(stopped.reason, hr.Shutdown)
    assert stopped.reason.term == "maintenance"
    assert not tree.lookup("root/a").is_alive()


def test_exit_at_a_message_leaves_that_message_to_the_next_incarnation(start, hedgerow_recorder):
    log = Log()
    tree, faults = start(roomy(steady("a", log)))
    faults.exit("root/a", at_message=2)
    ref = tree.lookup("root/a")
    for n in range(1, 4):
        ref.tell(n)
    assert ref.ask("sync") == ("a", 2, "sync")
    assert [m for _, m in log.of("got")] == [1, 2, 3, "sync"]
    assert hedgerow_recorder.dead_letters() == []


def test_faults_scheduled_on_the_clock_fire_at_their_time(start, hedgerow_recorder):
    _tree, faults = start(roomy(steady("a"), steady("b")))
    faults.after(5, faults.crash, "root/a")
    faults.at(12.5, faults.exit, "root/b")
    failed = hedgerow_recorder.wait_for(EventKind.FAILED, "root/a")
    stopped = hedgerow_recorder.wait_for(EventKind.STOPPED, "root/b")
    assert (failed.time, stopped.time) == (5.0, 12.5)
    assert [(r.time, r.kind) for r in faults.log] == [
        (5.0, FaultKind.CRASH),
        (12.5, FaultKind.EXIT),
    ]


def test_a_scheduled_fault_on_a_child_that_is_not_running_is_skipped(start, hedgerow_recorder):
    _tree, faults = start(roomy(steady("a", restart="never"), steady("b")))
    faults.exit("root/a")
    hedgerow_recorder.wait_for(EventKind.STOPPED, "root/a")
    faults.after(1, faults.crash, "root/a")  # runs first: same time, scheduled first
    faults.after(1, faults.crash, "root/b")
    hedgerow_recorder.wait_for(EventKind.FAILED, "root/b")
    assert faults.skipped == [(1.0, "crash", "root/a")]


def test_clear_disarms_triggers_and_cancels_scheduled_faults(
    start, hedgerow_recorder, hedgerow_clock
):
    log = Log()
    tree, faults = start(roomy(steady("a", log)))
    faults.crash("root/a", at_message=1)
    faults.crash("root/a", probability=1.0)
    faults.fail_starts("root/a", 3)
    faults.slow("root/a", 100)
    faults.after(10, faults.crash, "root/a")
    faults.clear()
    assert faults.active == []
    ref = tree.lookup("root/a")
    assert ref.ask("fine") == ("a", 1, "fine")
    assert hedgerow_clock.now() == 0
    hedgerow_clock.advance(20)
    assert ref.ask("still") == ("a", 1, "still")
    assert hedgerow_recorder.matching("failed") == []


def test_faults_on_a_path_survive_the_restart_of_its_supervisor(start, hedgerow_recorder):
    log = Log()
    inner = roomy(steady("leaf", log))
    tree, faults = start(roomy(hr.ChildSpec("sub", inner)))
    faults.crash("root/sub")
    hedgerow_recorder.wait_restarted("root/sub")
    faults.crash("root/sub/leaf", at_message=2)
    leaf = tree.lookup("root/sub/leaf")  # a new ref: the new supervisor made it
    leaf.tell("one")
    leaf.tell("two")
    assert leaf.ask("three") == ("leaf", 2, "three")
    assert hedgerow_recorder.dead_letters("root/sub/leaf") == ["two"]
    assert faults.messages.sent == faults.messages.handled + 1


def test_closing_unplugs_from_the_tree(hedgerow_tree_factory):
    tree = hedgerow_tree_factory(roomy(steady("a")))
    ref = tree.lookup("root/a")
    with Faults(tree) as faults:
        faults.crash("root/a", at_message=1)
        assert type(ref.actor_inbox) is not Inbox
        with pytest.raises(FaultError, match="already has a Faults"):
            Faults(tree)
    assert type(ref.actor_inbox) is Inbox
    assert tree._root.hooks.interceptor is None
    assert ref.ask("x") == ("a", 1, "x")


def test_messages_are_counted_sent_and_handled(start):
    tree, faults = start(roomy(steady("a"), steady("b")))
    for n in range(5):
        tree.lookup("root/a").tell(n)
    tree.lookup("root/b").ask("sync")
    tree.lookup("root/a").ask("sync")
    assert (faults.messages.sent, faults.messages.handled) == (7, 7)


def test_bad_requests_name_the_path_and_the_rule(start):
    _tree, faults = start(roomy(steady("a", restart="never"), steady("b")))
    with pytest.raises(hr.ChildNotFound, match="root/nope"):
        faults.crash("root/nope", at_message=1)
    with pytest.raises(hr.ChildNotFound, match="root/nope"):
        faults.crash("root/nope")
    with pytest.raises(FaultError, match="not both"):
        faults.crash("root/a", at_message=1, probability=0.5)
    with pytest.raises(FaultError, match="at_message=0"):
        faults.hang("root/a", at_message=0)
    with pytest.raises(FaultError, match="probability=2"):
        faults.crash("root/a", probability=2)
    with pytest.raises(FaultError, match="count=0"):
        faults.fail_starts("root/a", 0)


def test_an_immediate_fault_needs_a_running_child(start, hedgerow_recorder, hedgerow_clock):
    _tree, faults = start(roomy(worker("a", initial_retry_delay=1, retry_delay_jitter=0)))
    with hedgerow_clock.hold():  # no autojump: the restart stays scheduled
        faults.fail_starts("root/a", 1)
        faults.crash("root/a")
        hedgerow_recorder.wait_for(EventKind.RESTART_SCHEDULED, "root/a")
        with pytest.raises(FaultError, match="root/a is not running"):
            faults.crash("root/a")
    hedgerow_recorder.wait_restarted("root/a")


def test_a_child_class_is_untouched(start):
    tree, faults = start(roomy(steady("a")))
    faults.crash("root/a", at_message=1)
    assert Worker.on_receive.__qualname__ == "Worker.on_receive"
    assert "on_receive" not in vars(tree.lookup("root/a").incarnation)
