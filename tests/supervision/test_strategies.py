"""Strategies: who is restarted with whom, and in what order (OTP's rules), on
thread, event-loop and mixed children (the `runtime` fixture)."""

from __future__ import annotations

from helpers import Log, start, worker

import hedgerow as hr
from hedgerow import EventKind


def test_children_start_in_order_and_stop_in_reverse(runtime):
    log = Log()
    spec = hr.SupervisorSpec([worker("a", log), worker("b", log), worker("c", log)])
    tree, _ = start(spec)
    assert log.of("start") == ["a", "b", "c"]
    tree.stop()
    assert log.of("stop") == ["c", "b", "a"]


def test_one_for_one_restarts_only_the_failed_child(runtime):
    log = Log()
    spec = hr.SupervisorSpec([worker("a", log), worker("b", log), worker("c", log)])
    tree, rec = start(spec)
    with tree:
        tree.get_child("b").tell("crash")
        rec.wait_for(EventKind.RESTARTED, "root/b")
        assert log.of("start") == ["a", "b", "c", "b"]
        assert log.of("stop") == []
        states = {c.id: c.incarnation for c in tree.which_children()}
        assert states == {"a": 1, "b": 2, "c": 1}


def test_one_for_all_stops_others_in_reverse_then_restarts_all_in_order(runtime):
    log = Log()
    spec = hr.SupervisorSpec(
        [worker("a", log), worker("b", log), worker("c", log)], strategy="one_for_all"
    )
    tree, rec = start(spec)
    with tree:
        tree.get_child("b").tell("crash")
        rec.wait_for(EventKind.RESTARTED, "root/c")
        # b crashed (no on_stop); the others stop in reverse start order.
        assert log.of("stop") == ["c", "a"]
        assert log.of("start") == ["a", "b", "c", "a", "b", "c"]


def test_rest_for_one_stops_later_siblings_in_reverse_then_restarts_in_order(runtime):
    log = Log()
    children = [worker(x, log) for x in "abcd"]
    tree, rec = start(hr.SupervisorSpec(children, strategy="rest_for_one"))
    with tree:
        tree.get_child("b").tell("crash")
        rec.wait_for(EventKind.RESTARTED, "root/d")
        assert log.of("stop") == ["d", "c"]
        assert log.of("start")[4:] == ["b", "c", "d"]
        assert {c.id: c.incarnation for c in tree.which_children()} == {
            "a": 1,
            "b": 2,
            "c": 2,
            "d": 2,
        }
    assert rec.trail()[-6:] == [
        ("stopped", "root/d"),
        ("stopped", "root/c"),
        ("stopped", "root/b"),
        ("stopped", "root/a"),
        ("shutdown", "root"),
        ("stopped", "root"),
    ]


def test_never_child_stopped_by_a_sibling_restart_is_dropped(runtime):
    log = Log()
    children = [
        worker("a", log),
        worker("temp", log, restart="temporary"),
        worker("c", log),
    ]
    tree, rec = start(hr.SupervisorSpec(children, strategy="one_for_all"))
    with tree:
        temp = tree.get_child("temp")
        tree.get_child("a").tell("crash")
        rec.wait_for(EventKind.RESTARTED, "root/c")
        assert [c.id for c in tree.which_children()] == ["a", "c"]
        assert not temp.is_alive()
        assert log.of("start").count("temp") == 1


def test_transient_child_exiting_normally_is_not_restarted(runtime):
    tree, rec = start(hr.SupervisorSpec([worker("t", restart="transient"), worker("p")]))
    with tree:
        tree.get_child("t").tell("stop")
        rec.wait_for(EventKind.STOPPED, "root/t")
        (info,) = [c for c in tree.which_children() if c.id == "t"]
        assert info.state is hr.ChildState.STOPPED
        assert rec.matching(EventKind.RESTARTED) == []


def test_failed_child_with_user_shutdown_reason_is_not_restarted(runtime):
    tree, rec = start(hr.SupervisorSpec([worker("t", restart="restart-on-failed")]))
    with tree:
        tree.get_child("t").tell(("shutdown", "drained"))
        event = rec.wait_for(EventKind.STOPPED, "root/t")
        assert isinstance(event.reason, hr.Shutdown)
        assert event.reason.term == "drained"
        assert rec.matching(EventKind.FAILED) == []
        assert rec.matching(EventKind.RESTARTED) == []


def test_failed_child_crashing_is_restarted(runtime):
    tree, rec = start(hr.SupervisorSpec([worker("t", restart="failed")]))
    with tree:
        tree.get_child("t").tell("crash")
        rec.wait_for(EventKind.RESTARTED, "root/t")


def test_permanent_child_exiting_normally_is_restarted(runtime):
    tree, rec = start(hr.SupervisorSpec([worker("p", restart="permanent")]))
    with tree:
        tree.get_child("p").tell("stop")
        rec.wait_for(EventKind.RESTARTED, "root/p")


def test_temporary_child_is_never_restarted_and_its_spec_is_dropped(runtime):
    tree, rec = start(hr.SupervisorSpec([worker("t", restart="restart-never"), worker("p")]))
    with tree:
        tree.get_child("t").tell("crash")
        rec.wait_for(EventKind.FAILED, "root/t")
        rec.wait_for(EventKind.DEAD_LETTER, "root/t")
        assert [c.id for c in tree.which_children()] == ["p"]


def test_simple_one_for_one_starts_children_from_the_template(runtime):
    log = Log()
    template = hr.ChildSpec("job", runtime.of(WorkerFromArgs), args=(log,))
    tree, rec = start(hr.SupervisorSpec([template], strategy="simple_one_for_one"))
    with tree:
        assert tree.which_children() == []
        first = tree.start_child("x")
        second = tree.start_child("y")
        assert first.ask("hello")[0] == "x"
        assert second.ask("hello")[0] == "y"
        assert tree.count_children() == hr.ChildCounts(specs=1, active=2, supervisors=0, workers=2)
        first.tell("crash")
        rec.wait_for(EventKind.RESTARTED, first.path)
        assert first.ask("again") == ("x", 2, "again")
        tree.stop_child(first)
        assert [c.ref for c in tree.which_children()] == [second]


class WorkerFromArgs:
    def __init__(self, log: Log, name: str) -> None:
        super().__init__()
        self.name = name
        self.log = log

    def on_receive(self, message):
        if message == "crash":
            raise RuntimeError("crash")
        return (self.name, self.actor_incarnation, message)
