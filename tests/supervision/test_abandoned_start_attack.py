"""A child that a loop supervisor starts while its (thread) parent abandons it must
not outlive the tree (it did, on main too, until startfast's d2b782e).

`Starting._start` launched the child, and after its ``on_start`` raised
`Shutdown` if the supervisor had been abandoned meanwhile; `_start_child` then
removed the child's record. But the incarnation was running, and whoever takes
the abandoned supervisor's stop over (its parent, once the kill has landed on
the loop, after this very run) stops only the children it still finds: this one
was never stopped, and stayed registered. Now its record stays for the take-over."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pykka
import pytest

import hedgerow as hr
from hedgerow.supervision import _async_tree

pytestmark = pytest.mark.timeout(60)


class Gate:
    def __init__(self) -> None:
        self.entered = threading.Event()
        self.hold = True


class Slow(hr.AsyncioActor):
    """Its first incarnation's plain on_start (run within its supervisor's
    start) holds until the supervisor has been abandoned by its parent."""

    def __init__(self, gate: Gate, tree: Any) -> None:
        super().__init__()
        self.gate = gate
        self.tree = tree

    def on_start(self) -> None:
        if self.gate.hold:
            self.gate.hold = False
            self.gate.entered.set()
            supervisor = self.tree["tree"].lookup("root/sub").incarnation
            assert supervisor.actor_stopped.wait(10)  # abandoned, from the root's thread


@pytest.mark.parametrize("direct", [False, True], ids=["message", "direct"])
def test_a_child_started_as_its_supervisor_is_abandoned_does_not_outlive_the_tree(
    monkeypatch, direct
):
    if not direct:
        monkeypatch.setattr(_async_tree, "call_at_once", lambda *_args: None)
    gate = Gate()
    left: list[Any] = []

    async def main() -> None:
        holder: dict[str, Any] = {}
        sub = hr.SupervisorSpec(
            [hr.ChildSpec("w", Slow, args=(gate, holder), restart="temporary")],
            strategy="simple_one_for_one",
            runtime="loop",
        )
        spec = hr.SupervisorSpec([hr.ChildSpec("sub", sub, shutdown="brutal_kill")])
        async with hr.open_tree(spec, use_running_loop=True) as tree:
            holder["tree"] = tree
            handle = hr.AsyncioSupervisorHandle(tree.lookup("root/sub"))

            def stop_sub() -> None:
                assert gate.entered.wait(10)
                tree.sync.stop_child("sub")  # brutal: abandoned from the root's thread

            stopping = asyncio.get_running_loop().run_in_executor(None, stop_sub)
            try:  # started just before, or refused: the supervisor is abandoned
                await handle.start_child()
            except hr.StartError as error:
                assert "abandoned" in str(error)  # noqa: PT017
            await stopping
        left.extend(pykka.ActorRegistry.get_all())

    try:
        asyncio.run(main())
    finally:
        for ref in pykka.ActorRegistry.get_all():  # what leaked: its loop is closed, end it
            ref._actor_weakref()._hr_kill()
    assert left == []
