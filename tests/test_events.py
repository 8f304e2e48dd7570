"""The event stream: subscribers, isolation of a failing one, and logging."""

from __future__ import annotations

import logging

from helpers import worker

import hedgerow as hr
from hedgerow import EventKind
from hedgerow.testing import EventRecorder


def test_a_failing_subscriber_does_not_stop_the_others(caplog):
    stream = hr.EventStream()
    seen: list[hr.Event] = []

    def broken(event: hr.Event) -> None:
        raise RuntimeError("subscriber bug")

    stream.subscribe(broken)
    stream.subscribe(seen.append)
    stream.publish(EventKind.STARTED, "root/a", 0.0)
    assert [e.path for e in seen] == ["root/a"]
    assert "subscriber bug" in caplog.text


def test_unsubscribe():
    stream = hr.EventStream()
    seen: list[hr.Event] = []
    unsubscribe = stream.subscribe(seen.append)
    unsubscribe()
    stream.publish(EventKind.STARTED, "root/a", 0.0)
    assert seen == []


def test_failures_are_logged_at_error_with_their_traceback(caplog):
    caplog.set_level(logging.DEBUG, logger="hedgerow")
    events = hr.EventStream()
    recorder = EventRecorder(events)
    with hr.start_tree(hr.SupervisorSpec([worker("a")]), events=events) as tree:
        tree.get_child("a").tell("crash")
        recorder.wait_for(EventKind.RESTARTED, "root/a")
    failed = [r for r in caplog.records if "failed root/a" in r.getMessage()]
    assert failed
    assert failed[0].levelno == logging.ERROR
    assert "Traceback" in failed[0].getMessage()
    assert "a crashed" in failed[0].getMessage()
    restarted = [r for r in caplog.records if "restarted root/a" in r.getMessage()]
    assert restarted[0].levelno == logging.INFO


def test_event_sequence_of_a_deterministic_tree_is_stable():
    def run() -> list[tuple[str, ...]]:
        events = hr.EventStream()
        recorder = EventRecorder(events)
        spec = hr.SupervisorSpec([worker("a"), worker("b")], strategy="one_for_all")
        with hr.start_tree(spec, events=events) as tree:
            tree.get_child("a").tell("crash")
            recorder.wait_for(EventKind.RESTARTED, "root/b")
        return recorder.trail()

    assert run() == run()
