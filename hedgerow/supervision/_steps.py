"""What a supervisor waits for, as requests its runtime performs (sans-IO).

A supervisor's decisions (start in order, stop in reverse within each
shutdown, restart a group, take over an abandoned supervisor's stop) are
written once, as generators: where a decision must wait, for a child's
``on_start`` or for an incarnation's end, it yields a request and goes on
with the answer. The caller composes them with ``yield from``. A thread
supervisor performs each request by blocking (`run`); a supervisor on an
event loop awaits it (`hedgerow.supervision._loop_supervisor`). So the two
runtimes share one decision core, and a supervisor of either kind can take
over the stop of one of the other (its children's waits are performed by the
taker's runtime).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from hedgerow._clock import Clock
    from hedgerow.actors._actor_core import ActorCore

__all__ = ["Steps", "WaitEnded", "WaitStarted", "run"]

T = TypeVar("T")


class WaitStarted:
    """Wait until `actor`'s ``on_start`` is over (its ``_hr_started`` is set); answer None."""

    __slots__ = ("actor",)

    def __init__(self, actor: ActorCore) -> None:
        self.actor = actor


class WaitEnded:
    """Wait until `actor` exits or its stop deadline (on `clock`) passes, as
    `ActorCore._hr_await_end` does; answer its exit reason, or ``killed``."""

    __slots__ = ("actor", "clock")

    def __init__(self, actor: ActorCore, clock: Clock) -> None:
        self.actor = actor
        self.clock = clock


Steps = Generator[WaitStarted | WaitEnded, Any, T]
"""A decision that may wait: yields requests, returns its outcome."""


def run(steps: Steps[T]) -> T:
    """Perform `steps` in this thread, blocking for each request (a thread supervisor's way)."""
    try:
        request = next(steps)
        while True:
            actor = request.actor
            if request.__class__ is WaitStarted:
                actor._hr_started.wait()
                request = steps.send(None)
            else:
                request = steps.send(actor._hr_await_end(request.clock))  # type: ignore[union-attr]
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
