"""How a message reaches an event-loop actor: its inbox, and its ref's tell and ask.

The inbox is a deque. A put on the actor's own loop thread appends and, if the
actor is idle, schedules it with ``call_soon``; a put from any other thread
appends and hands the actor to its loop's `LoopRuntime`, which wakes the loop
once for a burst of puts. The ref is pykka's `ActorRef` with `tell` and `ask`
written for this inbox and `AsyncioFuture`: the same behaviour, fewer steps.
"""

from __future__ import annotations

from asyncio import events
from collections import deque
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, overload

import pykka
from pykka import ActorDeadError
from pykka._envelope import Envelope

from hedgerow.actors._async_future import AsyncioFuture
from hedgerow.actors._flag import StopFlag

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable

    from hedgerow.actors._loop import LoopRuntime

__all__ = ["LoopActor", "LoopActorRef", "LoopInbox", "StopFlag"]

A = TypeVar("A", bound=pykka.Actor)

_get_running_loop = events._get_running_loop  # asyncio's C fast path


class LoopActor(Protocol):
    """What the inbox uses of its actor (a `hedgerow.AsyncioActor`, which sits above
    this module and builds the inbox): whether it is scheduled, its loop's runtime,
    and its drain of the inbox."""

    _hr_busy: bool
    _hr_runtime: LoopRuntime

    def _hr_drain(self) -> None: ...


class LoopInbox:
    """An event-loop actor's inbox: a deque, and a wake-up of the actor on its loop.

    `put` may be called from any thread; `get` and `empty` only on the loop
    (``get`` never blocks: it raises IndexError when the inbox is empty).
    """

    __slots__ = ("_actor", "_loop", "_queue", "_runtime")

    def __init__(self) -> None:
        self._queue: deque[Envelope[Any]] = deque()
        self._actor: LoopActor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runtime: LoopRuntime | None = None

    def put(self, envelope: Envelope[Any], /) -> None:
        self._queue.append(envelope)
        actor = self._actor
        if actor is None:
            return  # not started yet: its start handles what is queued
        loop = self._loop
        if _get_running_loop() is loop:
            if not actor._hr_busy:
                actor._hr_busy = True
                actor._hr_runtime.busy += 1
                loop.call_soon(actor._hr_drain)  # type: ignore[union-attr]
        else:
            self._runtime.notify(actor)  # type: ignore[union-attr]

    def get(self) -> Envelope[Any]:
        return self._queue.popleft()

    def take_back(self, reply_to: Any) -> bool:
        """Remove the queued ask that `reply_to` answers (its asker was cancelled):
        True if it was queued, False if the actor has taken it (from any thread:
        the copy and the removal are each one step of the deque, under the GIL)."""
        queue = self._queue
        for envelope in list(queue):
            if envelope.reply_to is reply_to:
                try:
                    queue.remove(envelope)
                except ValueError:
                    return False  # taken by the actor meanwhile
                return True
        return False

    def empty(self) -> bool:
        return not self._queue

    def qsize(self) -> int:
        return len(self._queue)


class LoopActorRef(pykka.ActorRef[A]):
    """pykka's `ActorRef` for an event-loop actor: `tell` and `ask` behave as
    pykka's, in fewer steps; an ask's future is the actor class's (an
    `AsyncioFuture` unless the class makes another): `make_future`, which
    the actor passes."""

    def __init__(self, actor: A, make_future: Callable[[], pykka.Future[Any]]) -> None:
        super().__init__(actor)
        self._hr_make_future = make_future

    actor_inbox: LoopInbox

    def tell(self, message: Any) -> None:
        if self.actor_stopped._flag:  # type: ignore[attr-defined] # a StopFlag's, or an Event's
            msg = f"{self} not found"
            raise ActorDeadError(msg)
        self.actor_inbox.put(Envelope(message))

    @overload
    def ask(
        self, message: Any, *, block: Literal[False], timeout: float | None = None
    ) -> pykka.Future[Any]: ...

    @overload
    def ask(self, message: Any, *, block: Literal[True], timeout: float | None = None) -> Any: ...

    @overload
    def ask(
        self, message: Any, *, block: bool = True, timeout: float | None = None
    ) -> Any | pykka.Future[Any]: ...

    def ask(
        self, message: Any, *, block: bool = True, timeout: float | None = None
    ) -> Any | pykka.Future[Any]:
        future = self._hr_make_future()
        if self.actor_stopped._flag:  # type: ignore[attr-defined] # a StopFlag's, or an Event's
            error = ActorDeadError(f"{self} not found")
            future.set_exception((ActorDeadError, error, None))
        else:
            inbox = self.actor_inbox
            if future.__class__ is AsyncioFuture:
                # A cancelled await takes the message back from the inbox; and
                # get() refuses to block the loop thread that must set it.
                future._hr_inbox = inbox
            # reply_to passed by position: a keyword makes Envelope() cost half
            # as much again.
            envelope = Envelope(message, future)
            if inbox.__class__ is not LoopInbox:  # a subclass's own _create_actor_inbox
                inbox.put(envelope)
            else:
                # put, inlined: an ask's every step counts.
                inbox._queue.append(envelope)
                actor = inbox._actor
                if actor is not None:
                    loop = inbox._loop
                    if _get_running_loop() is loop:
                        if not actor._hr_busy:
                            actor._hr_busy = True
                            actor._hr_runtime.busy += 1
                            loop.call_soon(actor._hr_drain)  # type: ignore[union-attr]
                    else:
                        inbox._runtime.notify(actor)  # type: ignore[union-attr]
        if block:
            return future.get(timeout=timeout)
        return future
