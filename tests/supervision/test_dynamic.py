"""The dynamic-children API, with OTP's answers to the edge cases."""

from __future__ import annotations

import pytest
from helpers import FailingStart, Log, Worker, start, worker

import hedgerow as hr
from hedgerow import EventKind
from hedgerow.testing import EventRecorder

# These tests count and compare events: a busy machine's ``blocked`` reports are not theirs.
pytestmark = pytest.mark.usefixtures("no_block_reports")


def test_child_administration(runtime):
    log = Log()
    tree, rec = start(hr.SupervisorSpec([worker("a", log)]))
    with tree:
        b = tree.start_child(worker("b", log))
        assert b.ask("hi") == ("b", 1, "hi")
        with pytest.raises(hr.AlreadyStarted) as started:
            tree.start_child(worker("b", log))
        assert started.value.ref is b

        with pytest.raises(hr.ChildRunning):
            tree.delete_child("b")
        with pytest.raises(hr.ChildRunning):
            tree.restart_child("b")

        tree.stop_child("b")
        assert log.of("stop") == ["b"]
        assert rec.matching(EventKind.STOPPED, "root/b")[-1].reason == hr.SHUTDOWN
        (info,) = [c for c in tree.which_children() if c.id == "b"]
        assert info.state is hr.ChildState.STOPPED
        with pytest.raises(hr.AlreadyPresent):
            tree.start_child(worker("b", log))
        with pytest.raises(hr.DeadLetterError):
            b.ask("while stopped", timeout=5)

        assert tree.restart_child("b") is b
        assert b.ask("back") == ("b", 2, "back")

        tree.stop_child("b")
        tree.delete_child("b")
        assert [c.id for c in tree.which_children()] == ["a"]
        for call in (
            tree.stop_child,
            tree.restart_child,
            tree.delete_child,
            tree.get_child,
        ):
            with pytest.raises(hr.ChildNotFound):
                call("b")
        # Stops ordered by the supervisor are not failures: the only restart
        # is the one restart_child asked for.
        assert [e.incarnation for e in rec.matching(EventKind.RESTARTED)] == [2]
        assert rec.matching(EventKind.FAILED) == []


def test_stop_child_of_a_temporary_child_removes_its_spec(runtime):
    tree, _ = start(hr.SupervisorSpec([worker("t", restart="never")]))
    with tree:
        tree.stop_child("t")
        assert tree.which_children() == []


def test_start_child_that_fails_to_start_leaves_nothing(runtime):
    tree, rec = start(hr.SupervisorSpec([]))
    with tree:
        with pytest.raises(hr.StartError) as info:
            tree.start_child(hr.ChildSpec("bad", runtime.of(FailingStart)))
        assert isinstance(info.value.cause, ValueError)
        assert tree.which_children() == []
        assert rec.matching(EventKind.START_FAILED, "root/bad")
        with pytest.raises(hr.ChildNotFound):  # its name went with it
            tree.lookup("root/bad")


def test_a_nested_supervisor_that_fails_to_start_as_a_dynamic_child_leaves_no_names(runtime):
    tree, _ = start(hr.SupervisorSpec([]))
    with tree:
        nested = hr.SupervisorSpec(
            [worker("ok"), hr.ChildSpec("bad", runtime.of(FailingStart)), worker("x")]
        )
        with pytest.raises(hr.StartError):
            tree.start_child(hr.ChildSpec("inner", nested))
        assert tree.names.paths() == []


def test_start_child_validates_against_the_supervisor(runtime):
    tree, _ = start(hr.SupervisorSpec([]))
    with tree:
        with pytest.raises(hr.SpecError, match="significant"):
            tree.start_child(worker("s", restart="transient", significant=True))
        with pytest.raises(hr.SpecError, match="ChildSpec"):
            tree.start_child("not a spec")


def test_simple_one_for_one_refuses_id_based_calls(runtime):
    spec = hr.SupervisorSpec(
        [hr.ChildSpec("job", runtime.of(Worker))], strategy="simple_one_for_one"
    )
    tree, _ = start(spec)
    with tree:
        ref = tree.start_child("j1")
        for call in (tree.restart_child, tree.delete_child, tree.stop_child):
            with pytest.raises(hr.NotAllowedForSimpleOneForOne):
                call("job-1")
        tree.stop_child(ref)
        with pytest.raises(hr.ChildNotFound):
            tree.stop_child(ref)


def test_count_children_counts_specs_active_supervisors_and_workers(runtime):
    nested = hr.SupervisorSpec([worker("x")])
    tree, _ = start(hr.SupervisorSpec([worker("a"), worker("b"), hr.ChildSpec("n", nested)]))
    with tree:
        tree.stop_child("b")
        assert tree.count_children() == hr.ChildCounts(specs=3, active=2, supervisors=1, workers=2)
        assert tree.supervisor("n").count_children().active == 1
        with pytest.raises(hr.ChildNotFound):
            tree.supervisor("a")


def test_restarting_child_refuses_restart_and_delete(runtime, clock):
    events = hr.EventStream()
    rec = EventRecorder(events)
    spec = hr.SupervisorSpec([worker("a", initial_retry_delay=10)], max_restarts=10)
    with hr.start_tree(spec, events=events, clock=clock) as tree:
        a = tree.get_child("a")
        a.tell("crash")
        rec.wait_for(EventKind.RESTARTED)
        a.tell("crash")
        rec.wait_for(EventKind.RESTART_SCHEDULED)
        (info,) = tree.which_children()
        assert info.state is hr.ChildState.RESTARTING
        with pytest.raises(hr.ChildRestarting):
            tree.restart_child("a")
        with pytest.raises(hr.ChildRestarting):
            tree.delete_child("a")
        # stop_child cancels the pending restart (OTP: terminate_child is ok).
        tree.stop_child("a")
        clock.advance(60)
        assert tree.which_children()[0].state is hr.ChildState.STOPPED


def test_an_incarnation_that_failed_to_start_is_reported_once(runtime):
    """Its start_failed event says it all: stopping the tree later reports no 'failed'."""
    tree, rec = start(hr.SupervisorSpec([worker("a")]))
    with tree:
        tree.stop_child("a")
        with pytest.raises(hr.StartError):
            tree.replace_child(hr.ChildSpec("a", runtime.of(FailingStart)))
    assert [e.kind for e in rec.matching(path="root/a")] == [
        EventKind.STARTED,
        EventKind.STOPPED,
        EventKind.START_FAILED,
    ]
