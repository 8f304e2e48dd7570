"""Attacks on `update_tree`'s refusal through chains of asks (`AskChains` reads
other threads' frames with ``sys._current_frames`` and ``f_locals``): updates
racing busy thread and loop actors that ask each other (switch interval 1e-6),
from a plain thread and from a child's handler that no other child waits on.
Nothing waits for the updater, so no update may be refused, none may hang,
and the interpreter must not crash."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

import pytest

import hedgerow as hr
from hedgerow.supervision._ask_chain import AskChains
from hedgerow.supervision._update import update_tree

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("switch_often")]

UPDATES = 20
WAIT = 10.0
CHAIN = 4

_tree: dict[str, Any] = {}


@pytest.fixture(autouse=True)
def _no_tree_left() -> Iterator[None]:
    yield
    _tree.clear()


class Link(hr.Actor):
    """``t<i>``: asks the next link (never an earlier one: no cycle), blocking in get()."""

    def on_receive(self, message: Any) -> Any:
        rest = message
        if not rest:
            return sum(range(50))
        return rest[0].ask(rest[1:], block=False).get(timeout=WAIT)


class LoopLink(hr.AsyncioActor):
    """``l<i>``: as `Link`, awaiting."""

    async def on_receive(self, message: Any) -> Any:
        rest = message
        if not rest:
            await asyncio.sleep(0)
            return 0
        return await hr.ask(rest[0], rest[1:])


class Updater(hr.Actor):
    """``u``: updates the tree from its handler; nobody asks it but the test."""

    def on_receive(self, message: Any) -> Any:
        try:
            return update_tree(_tree["tree"], message).summary()
        except hr.UpdateFailed as failed:
            return failed


def _spec(extra: bool) -> hr.SupervisorSpec:
    children = [hr.ChildSpec(f"t{i}", Link) for i in range(CHAIN)]
    children += [hr.ChildSpec(f"l{i}", LoopLink) for i in range(2)]
    children.append(hr.ChildSpec("u", Updater))
    if extra:
        children.append(hr.ChildSpec("extra", Link))
    return hr.SupervisorSpec(children, name="svc")


def _busy(tree: Any, stop: threading.Event, who: int) -> None:
    links = [tree.lookup(f"svc/t{i}") for i in range(CHAIN)]
    loops = [tree.lookup(f"svc/l{i}") for i in range(2)]
    chain = [*links, *loops][who:]  # a suffix of one order: no cycle of waits
    while not stop.is_set():
        chain[0].ask(chain[1:], timeout=WAIT)


@pytest.mark.parametrize("by", ["thread", "handler"])
def test_updates_racing_busy_ask_chains_are_never_refused(by: str) -> None:
    with hr.start_tree(_spec(extra=False)) as tree:
        _tree["tree"] = tree
        stop = threading.Event()
        workers = [threading.Thread(target=_busy, args=(tree, stop, w)) for w in range(3)]
        for worker in workers:
            worker.start()
        try:
            updater = tree.lookup("svc/u")
            for n in range(UPDATES):
                spec = _spec(extra=n % 2 == 0)
                if by == "thread":
                    outcome = update_tree(tree, spec).summary()
                else:
                    outcome = updater.ask(spec, timeout=WAIT)
                assert not isinstance(outcome, Exception), outcome
        finally:
            stop.set()
            for worker in workers:
                worker.join(WAIT)
        assert not any(worker.is_alive() for worker in workers)


def test_chains_read_while_every_actor_runs_never_lead_to_an_unrelated_caller() -> None:
    """Threads read every actor's chain (as the refusal does) while the links ask
    each other: none leads to ``u``, which nobody asks."""
    with hr.start_tree(_spec(extra=False)) as tree:
        stop = threading.Event()
        workers = [threading.Thread(target=_busy, args=(tree, stop, w)) for w in range(3)]
        for worker in workers:
            worker.start()
        found: list[Any] = []
        try:
            u = tree.lookup("svc/u").incarnation
            refs = [tree.lookup(f"svc/t{i}") for i in range(CHAIN)]
            refs += [tree.lookup(f"svc/l{i}") for i in range(2)]

            def reader() -> None:
                for _ in range(300):
                    chains = AskChains(lambda actor: actor is u)
                    for ref in refs:
                        chain = chains.to_caller(ref.incarnation)
                        if chain is not None:
                            found.append(chain)

            readers = [threading.Thread(target=reader) for _ in range(2)]
            for thread in readers:
                thread.start()
            for thread in readers:
                thread.join(WAIT * 3)
            assert not any(thread.is_alive() for thread in readers)
        finally:
            stop.set()
            for worker in workers:
                worker.join(WAIT)
        assert found == []
