"""The event stream: subscribers, isolation of a failing one, and logging."""

from __future__ import annotations

import logging
import pickle
import traceback
from typing import Any

import pytest
from helpers import worker

import hedgerow as hr
from hedgerow import EventKind
from hedgerow._events import FailureTrace, quiet_event_log
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


def test_a_failures_traceback_is_formatted_only_when_read(runtime, monkeypatch):
    # Formatting a traceback costs ~100 us of every restart: the event carries
    # the exception and formats its text on first read, the same text as before.
    calls: list[BaseException] = []
    format_exception = traceback.format_exception

    def counting(exc_type: Any, value: Any = None, tb: Any = None, **kw: Any) -> list[str]:
        calls.append(value)
        return format_exception(exc_type, value, tb, **kw)

    monkeypatch.setattr(traceback, "format_exception", counting)
    events = hr.EventStream()
    recorder = EventRecorder(events)
    with quiet_event_log(), hr.start_tree(hr.SupervisorSpec([worker("a")]), events=events) as tree:
        tree.get_child("a").tell("crash")
        recorder.wait_for(EventKind.RESTARTED, "root/a")
        assert calls == []  # nobody read it: the log line was dropped unformatted
        failed = recorder.wait_for(EventKind.FAILED, "root/a")
        text = failed.traceback
    assert len(calls) == 1
    assert text == "".join(format_exception(failed.reason))
    assert "a crashed" in text
    assert "Traceback" in text
    assert failed.traceback is text  # formatted once: every reader gets the same string
    assert len(calls) == 1
    assert pickle.loads(pickle.dumps(failed)).traceback == text  # noqa: S301 - our own bytes


def test_an_events_log_line_formats_its_traceback_when_emitted(caplog):
    caplog.set_level(logging.ERROR, logger="hedgerow")
    try:
        raise ValueError("boom")
    except ValueError as caught:
        error = caught
        trace = FailureTrace(error, error.__traceback__)
    event = hr.EventStream().publish(EventKind.FAILED, "root/a", 0.0, reason=error, traceback=trace)
    expected = "".join(traceback.format_exception(error))
    assert event.traceback == expected
    assert caplog.records[0].getMessage() == f"{event.describe()}\n{expected.rstrip()}"
    assert event == hr.Event(EventKind.FAILED, "root/a", 0.0, reason=error, traceback=expected)
    with pytest.raises(AttributeError, match="immutable"):
        event.path = "root/b"  # type: ignore[misc]


class _Quiet(logging.Handler):
    """A handler that takes records and shows none (not a NullHandler)."""

    def emit(self, record: logging.LogRecord) -> None:
        pass


def test_an_event_makes_no_log_record_that_no_handler_would_emit(monkeypatch):
    # A record costs 10-20 us, twice per restart: with logging not configured
    # (hedgerow's NullHandler only) none is made; a handler that takes the
    # level gets every one, as before.
    hedgerow_logger = logging.getLogger("hedgerow")
    monkeypatch.setattr(hedgerow_logger, "propagate", False)
    made: list[logging.LogRecord] = []
    factory = logging.getLogRecordFactory()

    def counting(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        made.append(record)
        return record

    logging.setLogRecordFactory(counting)
    try:
        stream = hr.EventStream()
        stream.publish(EventKind.FAILED, "root/a", 0.0, reason=RuntimeError("x"), traceback="tb")
        assert made == []
        handler = _Quiet(logging.CRITICAL)
        hedgerow_logger.addHandler(handler)
        try:
            stream.publish(EventKind.FAILED, "root/a", 0.0, reason=RuntimeError("x"))
            assert made == []  # the handler's level is above the event's
            handler.setLevel(logging.ERROR)
            stream.publish(EventKind.FAILED, "root/a", 0.0, reason=RuntimeError("x"))
            assert [r.levelno for r in made] == [logging.ERROR]
        finally:
            hedgerow_logger.removeHandler(handler)
    finally:
        logging.setLogRecordFactory(factory)


def test_an_event_nobody_would_see_is_not_built(monkeypatch):
    # A child's start and stop publish with `publish_if_seen`: with no
    # subscriber and no handler that takes the level, no Event is made (its
    # sequence number is used all the same); a subscriber or a handler sees it.
    hedgerow_logger = logging.getLogger("hedgerow")
    monkeypatch.setattr(hedgerow_logger, "propagate", False)
    stream = hr.EventStream()
    assert stream.publish_if_seen(EventKind.STARTED, "root/a", 0.0, incarnation=1) is None
    seen: list[hr.Event] = []
    unsubscribe = stream.subscribe(seen.append)
    event = stream.publish_if_seen(EventKind.STARTED, "root/b", 0.0, incarnation=1)
    assert seen == [event]
    assert event is not None
    assert event.seq == 2
    unsubscribe()
    handler = _Quiet(logging.DEBUG)
    hedgerow_logger.addHandler(handler)
    try:
        logged = stream.publish_if_seen(EventKind.FAILED, "root/c", 0.0, reason=RuntimeError("x"))
        assert logged is not None
        assert logged.seq == 3
    finally:
        hedgerow_logger.removeHandler(handler)


def test_a_subscriber_that_names_its_kinds_sees_only_those(monkeypatch):
    # Events of other kinds go to the other subscribers, in subscription order;
    # one of a kind no subscriber takes is not built (publish_if_seen).
    monkeypatch.setattr(logging.getLogger("hedgerow"), "propagate", False)
    stream = hr.EventStream()
    order: list[tuple[str, str]] = []
    stream.subscribe(lambda e: order.append(("all", e.path)))
    unsubscribe = stream.subscribe(
        lambda e: order.append(("restarts", e.path)), kinds=[EventKind.RESTARTED]
    )
    stream.subscribe(lambda e: order.append(("all2", e.path)))
    stream.publish(EventKind.STARTED, "root/a", 0.0)
    stream.publish(EventKind.RESTARTED, "root/b", 0.0)
    assert order == [
        ("all", "root/a"),
        ("all2", "root/a"),
        ("all", "root/b"),
        ("restarts", "root/b"),
        ("all2", "root/b"),
    ]
    unsubscribe()
    order.clear()
    stream.publish(EventKind.RESTARTED, "root/c", 0.0)
    assert order == [("all", "root/c"), ("all2", "root/c")]

    only = hr.EventStream()
    restarts: list[hr.Event] = []
    only.subscribe(restarts.append, kinds={EventKind.RESTARTED})
    assert only.publish_if_seen(EventKind.STARTED, "root/a", 0.0) is None
    event = only.publish_if_seen(EventKind.RESTARTED, "root/a", 0.0)
    assert event is not None
    assert event.seq == 2
    assert restarts == [event]


def test_kinds_must_be_event_kinds():
    with pytest.raises(TypeError, match="EventKind"):
        hr.EventStream().subscribe(print, kinds=["started"])  # type: ignore[list-item]


class _Idle(hr.AsyncioActor):
    """An event-loop child that does nothing."""


def test_a_supervisor_publishes_its_childs_start_and_stop_to_a_subscriber():
    spec = hr.SupervisorSpec(
        [hr.ChildSpec("child", _Idle, restart="temporary")],
        strategy="simple_one_for_one",
        runtime="loop",
    )
    tree = hr.start_tree(spec, name="t")
    try:
        with EventRecorder(tree.events) as recorder:
            ref = tree.start_child()
            tree.stop_child(ref)
            kinds = [(e.kind, e.path) for e in recorder.events]
        assert (EventKind.STARTED, ref.path) in kinds
        assert (EventKind.STOPPED, ref.path) in kinds
    finally:
        tree.stop()
