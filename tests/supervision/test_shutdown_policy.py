"""Shutdown policies with significant children (Crossbar's modes, OTP's rules)."""

from __future__ import annotations

import pytest
from helpers import Log, start, worker

import hedgerow as hr
from hedgerow import EventKind


def sig(child_id: str, log: Log | None = None, restart: str = "transient") -> hr.ChildSpec:
    return worker(child_id, log, restart=restart, significant=True)


def test_last_component_stopped_ends_the_tree_when_the_last_significant_child_stops(runtime):
    log = Log()
    spec = hr.SupervisorSpec(
        [worker("helper", log), sig("a", log), sig("b", log)],
        shutdown_policy="shutdown-on-last-component-stopped",
    )
    tree, rec = start(spec)
    tree.get_child("a").tell("stop")
    rec.wait_for(EventKind.STOPPED, "root/a")
    assert not tree.done
    tree.get_child("b").tell(("shutdown", "done"))
    reason = tree.wait(timeout=10)
    assert isinstance(reason, hr.Shutdown)
    assert not tree.gave_up
    assert log.of("stop") == ["a", "b", "helper"]


def test_any_component_stopped_ends_the_tree_on_the_first_significant_stop(runtime):
    spec = hr.SupervisorSpec(
        [sig("a"), sig("b")], shutdown_policy="shutdown-on-any-component-stopped"
    )
    tree, _ = start(spec)
    tree.get_child("b").tell("stop")
    assert isinstance(tree.wait(timeout=10), hr.Shutdown)


def test_any_component_stopped_restarts_a_failed_transient_child(runtime):
    spec = hr.SupervisorSpec([sig("a")], shutdown_policy="any_significant")
    tree, rec = start(spec)
    with tree:
        tree.get_child("a").tell("crash")
        rec.wait_for(EventKind.RESTARTED, "root/a")
        assert not tree.done


def test_any_component_failed_ends_the_tree_on_a_failure_not_on_a_normal_stop(runtime):
    spec = hr.SupervisorSpec(
        [sig("a"), sig("b")], shutdown_policy="shutdown-on-any-component-failed"
    )
    tree, rec = start(spec)
    tree.get_child("a").tell("stop")
    rec.wait_for(EventKind.STOPPED, "root/a")
    assert not tree.done
    tree.get_child("b").tell("crash")
    reason = tree.wait(timeout=10)
    assert isinstance(reason, hr.Shutdown)
    assert rec.matching(EventKind.RESTARTED) == []


def test_stops_ordered_by_the_supervisor_never_trigger_a_policy(runtime):
    spec = hr.SupervisorSpec(
        [sig("a"), sig("b")], shutdown_policy="shutdown-on-last-component-stopped"
    )
    tree, _ = start(spec)
    with tree:
        tree.stop_child("a")
        tree.stop_child("b")
        assert not tree.done


def test_a_nested_supervisor_that_shuts_itself_down_is_a_normal_exit_for_its_parent(runtime):
    inner = hr.SupervisorSpec([sig("job")], shutdown_policy="all_significant")
    spec = hr.SupervisorSpec([hr.ChildSpec("batch", inner, restart="transient"), worker("server")])
    tree, rec = start(spec)
    with tree:
        tree.supervisor("batch").get_child("job").tell("stop")
        stopped = rec.wait_for(EventKind.STOPPED, "root/batch")
        assert isinstance(stopped.reason, hr.Shutdown)
        assert rec.matching(EventKind.RESTARTED) == []


@pytest.mark.parametrize("restart", ["always", "permanent", "restart-always"])
def test_significant_always_child_is_a_spec_error(restart):
    with pytest.raises(hr.SpecError) as info:
        hr.ChildSpec("x", hr.Actor, restart=restart, significant=True)
    assert info.value.child_id == "x"
    assert info.value.field == "significant"


def test_significant_under_shutdown_manual_is_a_spec_error():
    with pytest.raises(hr.SpecError, match="shutdown-manual"):
        hr.SupervisorSpec([sig("a")])
