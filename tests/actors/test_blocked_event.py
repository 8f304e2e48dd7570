"""A supervised event-loop child that blocks its loop is a ``blocked`` event
(issue 13 point 2): its path, how long, where it is stuck, and a log line."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import pytest
from helpers import start

import hedgerow as hr
from hedgerow import EventKind
from hedgerow._events import event_of
from hedgerow.cli._event_view import JsonView, LineView

WAIT = 10.0
THRESHOLD = 0.05


class Blocker(hr.AsyncioActor):
    def on_receive(self, message: Any) -> Any:
        if isinstance(message, threading.Event):
            return stuck_in_here(message)
        return message


def stuck_in_here(release: threading.Event) -> bool:
    return release.wait(WAIT)  # blocks the loop thread until the test lets go


def _in_here(event: hr.Event) -> bool:
    return "stuck_in_here" in (event.traceback or "")


@pytest.fixture
def threshold() -> Any:
    previous = hr.set_block_threshold(THRESHOLD)
    yield THRESHOLD
    hr.set_block_threshold(previous)


def test_a_supervised_child_that_blocks_its_loop_is_a_blocked_event(threshold, caplog):
    caplog.set_level(logging.WARNING, logger="hedgerow")
    release = threading.Event()
    tree, recorder = start(hr.SupervisorSpec([hr.ChildSpec("blocker", Blocker)]))
    try:
        ref = tree.get_child("blocker")
        answer = ref.ask(release, block=False)
        try:
            # (A loaded machine may hold the loop elsewhere first: this block's event.)
            event = recorder.wait_for(EventKind.BLOCKED, "root/blocker", _in_here, timeout=WAIT)
        finally:
            release.set()
        assert answer.get(timeout=WAIT) is True
        assert ref.ask("still there", timeout=WAIT) == "still there"
    finally:
        tree.stop()
    assert event.incarnation == 1
    assert event.delay is not None
    assert event.delay >= threshold
    assert event.info == {"threshold": threshold}
    stack = event.traceback
    assert stack is not None
    assert "in on_receive" in stack.splitlines()[0]  # it starts at the handler
    assert "in stuck_in_here" in stack
    assert "release.wait(WAIT)" in stack
    assert event.describe() == f"blocked root/blocker #1 for {event.delay:.3f}s"
    # The blocked child is neither failed nor restarted: it went on.
    assert recorder.matching(EventKind.FAILED) == []
    assert recorder.matching(EventKind.RESTARTED) == []
    # One log line: the event's, on the hedgerow logger, with where it was stuck.
    lines = [r for r in caplog.records if "stuck_in_here" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].name == "hedgerow"
    assert lines[0].levelno == logging.WARNING
    assert lines[0].getMessage() == f"{event.describe()}\n{stack.rstrip()}"
    # As `hedgerow run` shows it: a line with its stack, and a JSON record.
    line = LineView(None, 0.0).line(event, 1.0)  # type: ignore[arg-type]
    first = line.splitlines()[0]
    assert first.endswith(f"blocked root/blocker #1 for {event.delay:.3f}s threshold={threshold}")
    assert "in stuck_in_here" in line
    record = json.loads(json.dumps(JsonView.record(event, 1.0)))
    assert record["kind"] == "blocked"
    assert record["path"] == "root/blocker"
    assert record["delay"] == event.delay
    assert record["info"] == {"threshold": threshold}
    assert record["traceback"] == stack


def test_an_unsupervised_actor_that_blocks_its_loop_is_only_logged(threshold, caplog):
    caplog.set_level(logging.WARNING, logger="hedgerow")
    release = threading.Event()
    logged = threading.Event()

    class Flag(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            message = record.getMessage()  # this actor's report, not another loop's
            if "has blocked its event loop" in message and "stuck_in_here" in message:
                logged.set()

    handler = Flag()
    logging.getLogger("hedgerow.actors").addHandler(handler)
    ref = Blocker.start()
    try:
        answer = ref.ask(release, block=False)
        try:
            assert logged.wait(WAIT)
        finally:
            release.set()
        assert answer.get(timeout=WAIT) is True
    finally:
        logging.getLogger("hedgerow.actors").removeHandler(handler)
        ref.stop()
    message = next(r.getMessage() for r in caplog.records if "stuck_in_here" in r.getMessage())
    assert message.startswith(f"Blocker ({ref.actor_urn}) has blocked its event loop")
    assert all(event_of(r) is None for r in caplog.records)  # no tree: no event
