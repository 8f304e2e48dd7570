"""An update that would stop a child waiting, through a chain of asks, for the very
handler that runs the update is refused at once.

Child ``a`` asks child ``b`` and waits for the answer (a thread child blocked in
``get()``, an event-loop child awaiting it); ``b``'s handler updates the tree so
that ``a`` would stop. ``a``'s stop waits for ``a``'s handler, which waits for
``b``, which waits for the update: before, each wait lasted until ``a``'s
shutdown timeout had it killed. Whether ``b`` handles ``a``'s ask itself, or
``a``'s ask waits in ``b``'s inbox behind the message whose handler updates,
the update is refused, as an update that stops its own caller is
(tests/supervision/test_update_stopping.py).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

import hedgerow as hr
from hedgerow.supervision._ask_chain import AskChains
from hedgerow.supervision._update import update_tree

pytestmark = pytest.mark.timeout(30)

WAIT = 10.0
QUICK = 3.0
"""Seconds the refusal may take: the old code's deadlock lasted `SHUTDOWN`."""
SHUTDOWN = 8.0

_trees: dict[str, Any] = {}


@pytest.fixture(autouse=True)
def _no_tree_left():
    yield
    _trees.clear()


class Updater(hr.Actor):
    """``b``: updates the tree to the spec it is asked with (once `ready` is set:
    the message ``a`` asks it waits in the inbox meanwhile)."""

    def on_receive(self, message: Any) -> Any:
        if message == "ping":
            return "pong"
        spec, ready = message
        if ready is not None:
            assert ready.wait(WAIT)
        if _trees.get("refused"):
            _until_a_waits_for(self)
        try:
            return update_tree(_trees["tree"], spec).summary()
        except hr.UpdateFailed as failed:
            return failed


def _until_a_waits_for(updater: Any) -> None:
    """Hold the update until ``a``'s wait is seen to lead to `updater` (the
    refusal reads where ``a`` waits: between sending its ask and entering
    ``get()`` or ``await``, ``a`` waits for nothing yet, which a busy machine
    can stretch). No event marks that entry, so the chain itself is looked
    for, for at most `WAIT` seconds."""
    a = _trees["tree"].names.get("svc/a").incarnation
    pause = threading.Event()
    for _ in range(int(WAIT / 0.002)):
        if AskChains(lambda actor: actor is updater).to_caller(a) is not None:
            return
        pause.wait(0.002)
    raise AssertionError("svc/a never waited for the updater")


class Asker(hr.Actor):
    """``a``, a thread child: asks ``b`` and blocks in get() for the answer."""

    def on_receive(self, message: Any) -> Any:
        b, what, ready = message
        future = b.ask(what, block=False)
        if ready is not None:
            ready.set()
        return future.get(timeout=WAIT * 3)


class LoopAsker(hr.AsyncioActor):
    """``a``, an event-loop child: asks ``b`` and awaits the answer."""

    async def on_receive(self, message: Any) -> Any:
        b, what, ready = message
        future = hr.ask(b, what)
        if ready is not None:
            ready.set()
        return await future


def spec(asker: type | None, shutdown: float = SHUTDOWN) -> hr.SupervisorSpec:
    children = [hr.ChildSpec("b", Updater)]
    if asker is not None:
        children.insert(0, hr.ChildSpec("a", asker, shutdown=shutdown))
    return hr.SupervisorSpec(children, name="svc")


def _refused(outcome: Any) -> None:
    assert isinstance(outcome, hr.UpdateFailed), outcome
    message = str(outcome)
    assert message.startswith("svc/a: the update would stop the child whose handler waits"), message
    assert "through its ask" in message, message
    assert "nothing running was touched" in message


@pytest.mark.parametrize("asker", [Asker, LoopAsker], ids=["thread", "loop"])
def test_an_update_by_the_actor_a_child_waits_on_that_stops_that_child_is_refused(asker):
    """(``a``'s ask timed out: the update waited for ``a``'s stop until its shutdown
    timeout had it killed: seen failing.)"""
    with hr.start_tree(spec(asker)) as tree:
        _trees["tree"] = tree
        _trees["refused"] = True
        a, b = tree.lookup("svc/a"), tree.lookup("svc/b")
        outcome = a.ask((b, (spec(None), None), None), timeout=QUICK)
        _refused(outcome)
        assert [c.id for c in tree.which_children()] == ["a", "b"]
        assert a.ask((b, "ping", None), timeout=WAIT) == "pong"  # untouched
    _trees.clear()


@pytest.mark.parametrize("asker", [Asker, LoopAsker], ids=["thread", "loop"])
def test_an_update_that_stops_a_child_whose_ask_waits_behind_it_is_refused(asker):
    """``a``'s ask is queued in ``b``'s inbox while ``b``'s handler updates."""
    with hr.start_tree(spec(asker)) as tree:
        _trees["tree"] = tree
        _trees["refused"] = True
        a, b = tree.lookup("svc/a"), tree.lookup("svc/b")
        ready = threading.Event()
        updating = b.ask((spec(None), ready), block=False)
        asking = a.ask((b, "ping", ready), block=False)
        _refused(updating.get(timeout=QUICK))
        assert asking.get(timeout=WAIT) == "pong"
        assert [c.id for c in tree.which_children()] == ["a", "b"]
    _trees.clear()


class Other(hr.Actor):
    """An actor outside the tree: answers once `until` is set."""

    def on_receive(self, message: Any) -> Any:
        until, entered = message
        entered.set()
        assert until.wait(WAIT)
        return "late"


@pytest.mark.allow_abandoned
def test_an_update_that_stops_a_child_waiting_on_another_actor_goes_on():
    """A child waiting for an actor that is not the updater is stopped as before
    (its shutdown, short here, runs out: it is abandoned)."""
    other = Other.start()
    until = threading.Event()
    try:
        with hr.start_tree(spec(Asker, shutdown=0.1)) as tree:
            _trees["tree"] = tree
            a, b = tree.lookup("svc/a"), tree.lookup("svc/b")
            entered = threading.Event()
            a.ask((other, (until, entered), None), block=False)
            assert entered.wait(WAIT)
            assert b.ask((spec(None), None), timeout=WAIT) == "svc/a removed"
    finally:
        until.set()
        other.stop()
        _trees.clear()


class Relay(hr.AsyncioActor):
    """``c``: passes what it is asked on to ``b`` and answers with ``b``'s answer."""

    async def on_receive(self, message: Any) -> Any:
        b, what = message
        return await hr.ask(b, what)


@pytest.mark.parametrize("asker", [Asker, LoopAsker], ids=["thread", "loop"])
def test_an_update_reached_through_two_asks_is_refused(asker):
    """``a`` asks ``c``, ``c`` asks ``b``, ``b`` updates so that ``a`` would stop."""
    with hr.start_tree(spec(asker)) as tree:
        _trees["tree"] = tree
        _trees["refused"] = True
        a, b = tree.lookup("svc/a"), tree.lookup("svc/b")
        c = Relay.start()
        try:
            outcome = a.ask((c, (b, (spec(None), None)), None), timeout=QUICK)
            _refused(outcome)
            assert "through its ask of Relay" in str(outcome)
            assert "which waits for svc/b" in str(outcome)
        finally:
            c.stop()
    _trees.clear()
