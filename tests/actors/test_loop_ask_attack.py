"""Attacks on the faster loop-to-loop ask (ffce93d): AsyncioFuture without __init__,
its waiters' lock, the inline set/await paths, LoopActorRef.ask's inline put."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest

import hedgerow as hr

pytestmark = pytest.mark.timeout(60)

WAIT = 10.0


@pytest.fixture
def tiny_switch() -> Iterator[None]:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)


class AsksItself(hr.AsyncioActor):
    """Its handler of "outer" awaits an ask of its own ref."""

    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how

    async def on_receive(self, message: Any) -> Any:
        if message == "outer":
            if self.how == "hedgerow.ask":
                return await hr.ask(self.actor_ref, "inner")
            return await self.actor_ref.ask("inner", block=False)
        return message


@pytest.mark.xfail(
    strict=True,
    reason=(
        "finding 3: an event-loop actor's handler awaiting an ask of its own ref waits "
        "forever, silently (its blocking get() says so at once)"
    ),
)
@pytest.mark.parametrize("how", ["hedgerow.ask", "ref.ask"])
def test_a_handler_awaiting_an_ask_of_its_own_ref_is_told_not_left_waiting(how):
    ref = AsksItself.start(how)
    try:
        future = ref.ask("outer", block=False)
        # Not an answer "inner" (it cannot come: the actor is in this very handler):
        # an error saying so. With the bug: no answer at all (a pykka.Timeout here).
        with pytest.raises(RuntimeError, match="own"):
            future.get(timeout=2.0)
        # The inner ask was not left queued: the next message is the next handled.
        assert ref.ask("next", timeout=WAIT) == "next"
    finally:
        # With the bug the handler waits for ever (a stop would queue behind it): kill it.
        ref.actor_inbox._actor._hr_kill()
        assert ref.actor_stopped.wait(WAIT)
