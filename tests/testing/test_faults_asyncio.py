"""The test kit from asyncio code: `Faults` and the recorder take the `AsyncioTree`
that `hedgerow.open_tree` gives, as they take a `Tree`."""

from __future__ import annotations

import asyncio

import pytest
from helpers import Log, worker

import hedgerow as hr
from hedgerow import EventKind
from hedgerow.testing import FaultError, FaultKind, Faults, capture_events

pytestmark = pytest.mark.timeout(30)


def roomy(*children: hr.ChildSpec) -> hr.SupervisorSpec:
    return hr.SupervisorSpec(list(children), max_restarts=100, period=1000)


@pytest.mark.parametrize("own_loop", [False, True], ids=["hedgerows-loop", "running-loop"])
def test_faults_and_the_recorder_take_an_asyncio_tree(runtime, own_loop):
    log = Log()
    error = KeyError("boom")

    async def main() -> list[tuple[FaultKind, str, int]]:
        opening = hr.open_tree(roomy(worker("a", log)), use_running_loop=own_loop)
        async with opening as tree:
            with capture_events(tree) as events, Faults(tree) as faults:
                assert faults.tree is tree.sync
                fault = faults.crash("root/a", error)
                # (waited for in a thread: the children may run on this very loop)
                failed = await asyncio.to_thread(events.wait_for, EventKind.FAILED, "root/a")
                assert failed.reason is error
                await asyncio.to_thread(events.wait_restarted, "root/a")
                assert await hr.ask(tree.lookup("root/a"), "after") == ("a", 2, "after")
                assert fault.fired == 1
                faults.crash("root/a", ValueError, at_message=2)
                ref = tree.lookup("root/a")
                ref.tell(1)
                ref.tell(2)
                await asyncio.to_thread(events.wait_restarted, "root/a", 2)
                assert await hr.ask(tree.lookup("root/a"), "again") == ("a", 3, "again")
                return [(r.kind, r.path, r.incarnation) for r in faults.log]

    assert asyncio.run(main()) == [(FaultKind.CRASH, "root/a", 1), (FaultKind.CRASH, "root/a", 2)]


def test_one_faults_per_tree_whichever_face_of_it_is_given(runtime):
    async def main() -> str:
        async with hr.open_tree(roomy(worker("a"))) as tree:
            with Faults(tree), pytest.raises(FaultError) as caught:
                Faults(tree.sync)
            return str(caught.value)

    assert "already has a Faults plugged in" in asyncio.run(main())


@pytest.mark.parametrize("given", [None, "root", hr.SupervisorSpec([])])
def test_faults_given_no_tree_says_what_it_takes(given):
    with pytest.raises(TypeError) as caught:
        Faults(given)  # type: ignore[arg-type]
    message = str(caught.value)
    assert "Faults needs a running tree" in message
    assert "hedgerow.Tree" in message
    assert "AsyncioTree" in message
    assert repr(given) in message


@pytest.mark.parametrize("given", [None, "root", hr.SupervisorSpec([])])
def test_the_recorder_given_no_stream_says_what_it_takes(given):
    with pytest.raises(TypeError) as caught:
        capture_events(given).__enter__()
    message = str(caught.value)
    assert "EventRecorder needs an EventStream or a tree" in message
    assert repr(given) in message
