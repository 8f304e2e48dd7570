"""EventRecorder's waiting assertions and data, and capture_events."""

from __future__ import annotations

import pytest
from helpers import worker

import hedgerow as hr
from hedgerow import EventKind
from hedgerow.testing import EventRecorder, capture_events

# These tests compare recorded events: a busy machine's ``blocked`` reports are not theirs.
pytestmark = pytest.mark.usefixtures("no_block_reports")


def spec() -> hr.SupervisorSpec:
    inner = hr.SupervisorSpec([worker("leaf")])
    return hr.SupervisorSpec(
        [hr.ChildSpec("sub", inner), worker("a")],
        max_restarts=2,
        period=60,
    )


def test_waits_by_kind_name_glob_and_sequence(hedgerow_tree_factory, hedgerow_recorder, runtime):
    tree = hedgerow_tree_factory(spec())
    tree.lookup("root/sub/leaf").tell("crash")
    event = hedgerow_recorder.wait_for("restarted", "root/sub/*")
    assert event.path == "root/sub/leaf"
    steps = hedgerow_recorder.wait_for_sequence(
        ("started", "root/sub/leaf"), ("failed", "root/sub/leaf"), ("restarted", "root/sub/leaf")
    )
    assert [e.incarnation for e in steps] == [1, 1, 2]
    assert hedgerow_recorder.restarts("root/sub/leaf") == 1
    assert hedgerow_recorder.dead_letters() == ["crash"]


def test_restarted_gave_up_and_dead_letters(hedgerow_tree_factory, hedgerow_recorder, runtime):
    tree = hedgerow_tree_factory(spec())
    a = tree.lookup("root/a")
    for n in range(2):
        a.tell("crash")
        hedgerow_recorder.wait_restarted("root/a", n + 1)
    a.tell("crash")
    gave_up = hedgerow_recorder.wait_gave_up()
    assert gave_up.path == "root"
    assert isinstance(gave_up.reason, hr.IntensityExceeded)
    assert hedgerow_recorder.wait_dead_letters("root/a", 3) == ["crash"] * 3
    assert len(hedgerow_recorder.wait_restarted("root/a", 2)) == 2


def test_the_whole_sequence_as_data(hedgerow_tree_factory, hedgerow_recorder, runtime):
    tree = hedgerow_tree_factory(hr.SupervisorSpec([worker("a")]))
    tree.lookup("root/a").tell("crash")
    hedgerow_recorder.wait_restarted("root/a")
    assert hedgerow_recorder.as_data() == [
        {
            "kind": "started",
            "path": "root/a",
            "time": 0.0,
            "incarnation": 1,
            "reason": None,
            "delay": None,
            "message": None,
        },
        {
            "kind": "started",
            "path": "root",
            "time": 0.0,
            "incarnation": 0,
            "reason": None,
            "delay": None,
            "message": None,
        },
        {
            "kind": "failed",
            "path": "root/a",
            "time": 0.0,
            "incarnation": 1,
            "reason": "RuntimeError: a crashed",
            "delay": None,
            "message": None,
        },
        {
            "kind": "dead_letter",
            "path": "root/a",
            "time": 0.0,
            "incarnation": 0,
            "reason": "RuntimeError: a crashed",
            "delay": None,
            "message": "'crash'",
        },
        {
            "kind": "restarted",
            "path": "root/a",
            "time": 0.0,
            "incarnation": 2,
            "reason": None,
            "delay": None,
            "message": None,
        },
    ]


def test_a_wait_that_times_out_shows_the_last_events(
    hedgerow_tree_factory, hedgerow_recorder, runtime
):
    hedgerow_tree_factory(hr.SupervisorSpec([worker("a")]))
    with pytest.raises(AssertionError, match=r"kind=restarted path=root/a(.|\n)*started root/a"):
        hedgerow_recorder.wait_for(EventKind.RESTARTED, "root/a", timeout=0.01)


def test_capture_events_records_only_inside_the_block(hedgerow_tree_factory, runtime):
    tree = hedgerow_tree_factory(hr.SupervisorSpec([worker("a")]))
    with capture_events(tree) as events:
        tree.lookup("root/a").tell("crash")
        events.wait_restarted("root/a")
    tree.lookup("root/a").tell("crash")
    tree.lookup("root/a").ask("sync")
    assert events.trail() == [
        ("failed", "root/a"),
        ("dead_letter", "root/a"),
        ("restarted", "root/a"),
    ]


def test_format_shows_times_and_elides_old_events():
    stream = hr.EventStream()
    with EventRecorder(stream) as recorder:
        for n in range(3):
            stream.publish(EventKind.STARTED, f"root/c{n}", float(n))
        assert recorder.format(last=2).splitlines() == [
            "... 1 earlier events not shown",
            "t=     1.000  started root/c1",
            "t=     2.000  started root/c2",
        ]
