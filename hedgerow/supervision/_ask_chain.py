"""Which actor a handler waits for through its asks: the chain `update_tree` follows.

An update run by actor B's handler would stop child A; A's handler waits for
the answer of an ask of B's (B handles it, or it waits in B's inbox behind the
message whose handler updates). A's stop waits for A's handler, which waits
for B, which waits for the update: `update_tree` refuses it, as it refuses an
update that stops its own caller. The chain may be longer (A asks C, C asks
B): each hop is followed.

What a handler waits for is read where it waits, never from a record kept
on the hot path: a thread actor blocked in ``get()`` from its thread's frames
(``sys._current_frames``: the future whose ``get`` it is in); an event-loop
actor from its handler task's coroutine chain (the future whose ``await`` it
is in, through the tasks it awaits). Who answers that future: the actor whose
inbox held its ask (`AsyncioFuture._hr_inbox`, kept until it is answered), or,
for a future that does not know its inbox (pykka's own), the caller's actor if
the message it handles is that ask. asyncio is not imported for it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import pykka

from hedgerow.actors._attrs import actor_attr

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import CodeType

__all__ = ["AskChains"]

_HOPS = 64
"""Asks followed from one actor, at most (a chain longer than this is not followed)."""
_DEPTH = 1_000
"""Frames, or awaits of a coroutine chain, looked at for one actor, at most."""


class AskChains:
    """Follows each actor's wait, ask by ask, to the actor whose handler `runs_caller`."""

    def __init__(self, runs_caller: Callable[[Any], bool]) -> None:
        self._runs_caller = runs_caller
        self._actors: list[Any] | None = None
        self._by_inbox: dict[int, Any] = {}
        self._frames: dict[int, Any] | None = None

    def to_caller(self, actor: Any) -> list[Any] | None:
        """The actors whose answers `actor`'s handler waits for, one after the other,
        ending with the caller's; None if its wait does not lead to the caller."""
        chain: list[Any] = []
        seen = {id(actor)}
        current = actor
        while len(chain) < _HOPS:
            future = self._awaited(current)
            if future is None:
                return None
            answerer = self._answerer(future)
            if answerer is None or id(answerer) in seen:
                return None
            seen.add(id(answerer))
            chain.append(answerer)
            if self._runs_caller(answerer):
                return chain
            current = answerer
        return None

    # -- who answers a future -----------------------------------------------------

    def _registered(self) -> list[Any]:
        if self._actors is None:
            actors = [ref._actor_weakref() for ref in pykka.ActorRegistry.get_all()]
            self._actors = [a for a in actors if a is not None]
            self._by_inbox = {id(actor_attr(a, "actor_inbox")): a for a in self._actors}
        return self._actors

    def _answerer(self, future: Any) -> Any:
        self._registered()
        inbox = getattr(future, "_hr_inbox", None)
        if inbox is not None:
            return self._by_inbox.get(id(inbox))
        for actor in self._registered():  # (a future that does not know its inbox)
            if self._runs_caller(actor):
                envelope = self._current_envelope(actor)
                if envelope is not None and getattr(envelope, "reply_to", None) is future:
                    return actor
        return None

    def _current_envelope(self, actor: Any) -> Any:
        """The message `actor` handles: an event-loop actor keeps it; a thread actor's
        is a local of its loop's frame."""
        envelope = actor_attr(actor, "_hr_current")
        if envelope is not None:
            return envelope
        frame = self._frame_of(actor)
        for _ in range(_DEPTH):
            if frame is None:
                break
            code = frame.f_code
            if code.co_name in _LOOP_NAMES and frame.f_locals.get("self") is actor:
                return frame.f_locals.get("envelope")
            frame = frame.f_back
        return None

    # -- what a handler waits for -------------------------------------------------

    def _frame_of(self, actor: Any) -> Any:
        thread = actor_attr(actor, "_hr_thread_id")
        if not thread:
            return None
        if self._frames is None:
            self._frames = sys._current_frames()  # (the only way to see where another thread waits)
        return self._frames.get(thread)

    def _awaited(self, actor: Any) -> Any:
        """The future `actor`'s handler waits for (the innermost), or None."""
        future = _in_get(self._frame_of(actor))
        if future is not None:
            return future
        task = actor_attr(actor, "_hr_task")
        return _in_await(task) if task is not None else None


_LOOP_NAMES = frozenset({"_actor_loop_running", "_actor_loop"})


def _get_codes() -> frozenset[CodeType]:
    codes = {pykka.ThreadingFuture.get.__code__}
    module = sys.modules.get("hedgerow.actors._async_future")
    if module is not None:
        codes.add(module.AsyncioFuture._hr_block.__code__)
    return frozenset(codes)


def _await_codes() -> frozenset[CodeType]:
    module = sys.modules.get("hedgerow.actors._async_future")
    if module is None:
        return frozenset()
    future = module.AsyncioFuture
    return frozenset({future.__await__.__code__, future._hr_until_set.__code__})


def _in_get(frame: Any) -> Any:
    """The future whose ``get`` the thread of `frame` (its innermost) blocks in."""
    codes = _get_codes()
    for _ in range(_DEPTH):
        if frame is None:
            return None
        if frame.f_code in codes:
            return frame.f_locals.get("self")
        frame = frame.f_back
    return None


def _in_await(task: Any) -> Any:
    """The future whose ``await`` `task` is in (the innermost), following the tasks it
    awaits; None if it awaits none (or something else)."""
    aio = sys.modules.get("asyncio")
    codes = _await_codes()
    if aio is None or not codes:
        return None
    for _ in range(_HOPS):
        if not isinstance(task, aio.Task) or task.done():
            return None
        found = None
        awaiting: Any = task.get_coro()
        for _ in range(_DEPTH):
            if awaiting is None:
                break
            code = getattr(awaiting, "cr_code", None) or getattr(awaiting, "gi_code", None)
            frame = getattr(awaiting, "cr_frame", None) or getattr(awaiting, "gi_frame", None)
            if code in codes and frame is not None:
                found = frame.f_locals.get("self")
            inner = getattr(awaiting, "cr_await", None)
            awaiting = inner if inner is not None else getattr(awaiting, "gi_yieldfrom", None)
        if found is not None:
            return found
        task = getattr(task, "_fut_waiter", None)  # a task it awaits: what that one awaits
    return None
