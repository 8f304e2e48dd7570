"""`tell`: a message sent from asyncio code, waiting for room without blocking the loop.

A bounded inbox whose overflow policy is ``block`` makes a sender wait for
room. A thread can wait; a loop's thread must not (its wait would hold every
task and actor of the loop), so a plain ``ref.tell`` from a loop into a full
such inbox does not wait: the message is a dead letter at once. ``await
hedgerow.tell(ref, message)`` waits instead, suspending only the awaiting
task: the message waits in the inbox's queue of deferred sends (no thread),
and whoever makes room puts it into the inbox, in order, and wakes the task.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

import pykka
from pykka._envelope import Envelope

from hedgerow.actors._async_future import AsyncioFuture
from hedgerow.actors._attrs import actor_attr
from hedgerow.actors._inbox import Inbox, Overflow
from hedgerow.actors._ref import ChildRef

if TYPE_CHECKING:
    from collections.abc import Generator

    from hedgerow.actors._inbox import Deferred

__all__ = ["Telling", "defer", "not_a_ref", "runs_the_handler_of", "tell"]


class Telling:
    """What `hedgerow.tell` returns: awaited, it returns None once the message is in
    the inbox (or a dead letter); the message is sent whether it is awaited or not."""

    __slots__ = ("_deferred", "_done", "_error", "_inbox", "_withdrawn")

    def __init__(self) -> None:
        self._inbox: Inbox | None = None
        self._deferred: Deferred | None = None
        self._done: AsyncioFuture[None] | None = None
        self._error: BaseException | None = None
        self._withdrawn = False

    def __repr__(self) -> str:
        if self._withdrawn:
            return "<hedgerow.tell taken back>"
        return f"<hedgerow.tell {'done' if self.done() else 'waiting for room'}>"

    def done(self) -> bool:
        """Whether the message is in the inbox, a dead letter, refused, or taken back."""
        return self._done is None or self._done.done()

    def cancelled(self) -> bool:
        """Whether a cancelled await took the message back (then every await raises
        `asyncio.CancelledError`, as a cancelled future's does)."""
        return self._withdrawn

    def __await__(self) -> Generator[Any, None, None]:
        done = self._done
        if done is not None and not done.done():
            try:
                yield from done.__await__()
            except BaseException:  # cancelled (or a timeout): take it back if it still waits
                assert self._inbox is not None
                assert self._deferred is not None
                if self._inbox.withdraw(self._deferred):
                    self._withdrawn = True
                    done.set()  # (its sender's callback is gone): wake any other await
                raise
        if self._withdrawn:
            msg = "hedgerow.tell: the message was taken back"
            raise asyncio.CancelledError(msg)
        if self._error is not None:
            raise self._error

    __iter__ = __await__


def tell(ref: pykka.ActorRef[Any], message: Any) -> Telling:
    """Send `message` to the actor of `ref` from asyncio code; await it to wait for room.

    As ``ref.tell(message)``, except that a bounded inbox whose overflow
    policy is ``block`` and which is full makes the *awaiting task* wait for
    room, not the loop: ``await hedgerow.tell(ref, message)`` returns once the
    message is in the inbox. Messages sent so from any task wait in order, and
    go before any later send. After the inbox's ``inbox_timeout`` without room
    the message is a dead letter, as a blocked thread's is, and the await
    returns (a tell is not told). A child gone for good makes it a dead letter
    too; an actor that is not running makes the await raise
    `pykka.ActorDeadError`, and the ``fail`` policy `InboxFull`, as ``tell``
    raises them. Into any other inbox it is sent at once.

    The message is sent (or starts waiting for room) when `tell` is called,
    awaited or not. Cancelling the awaiting task (or a timeout around it)
    while the message waits takes it back: it is never sent, and it is not a
    dead letter. If room came first, it is in the inbox, whole; it is never
    sent twice nor half. An actor awaiting a tell into its own full inbox
    would wait for itself: its message is a dead letter at once, as a
    thread actor's tell to itself is.

    Call it with a loop running (RuntimeError otherwise: from a thread, call
    ``ref.tell``, which waits for room there).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        msg = "hedgerow.tell is for asyncio code (no event loop is running here): call ref.tell"
        raise RuntimeError(msg) from None
    if not isinstance(ref, pykka.ActorRef):
        error = not_a_ref("hedgerow.tell", ref)
        raise error
    telling = Telling()
    inbox = ref.actor_inbox
    try:
        if isinstance(inbox, Inbox) and inbox.overflow is Overflow.BLOCK and inbox.max_inbox:
            done: AsyncioFuture[None] = AsyncioFuture()
            deferred = defer(ref, Envelope(message), lambda _: done.set())
            if deferred is not None:
                telling._inbox = inbox
                telling._deferred = deferred
                telling._done = done
        else:
            ref.tell(message)
    except Exception as error:  # noqa: BLE001 - raised by the await, as ref.tell would
        telling._error = error
    return telling


def not_a_ref(who: str, given: object) -> TypeError:
    """The TypeError of `who` (``hedgerow.tell``) given `given` for an actor's ref,
    saying how to get a ref from it when it can."""
    hint = ""
    if isinstance(actor_attr(given, "actor_ref"), pykka.ActorRef):
        hint = ", an actor's proxy: give its .actor_ref"
    elif isinstance(given, str):
        hint = ", a path: look the child up first (tree.lookup(path))"
    msg = f"{who} needs an actor's ref (a pykka.ActorRef or a ChildRef), not {given!r}{hint}"
    return TypeError(msg)


def defer(
    ref: pykka.ActorRef[Any], envelope: Envelope[Any], on_done: Any = None
) -> Deferred | None:
    """Put `envelope` into `ref`'s `Inbox` without blocking this (loop) thread: queued
    now, or a `Deferred` waiting for room (see `Inbox.put_deferred`). A ref that is
    not a `ChildRef` must be alive (`pykka.ActorDeadError`, as its tell)."""
    if not isinstance(ref, ChildRef) and not ref.is_alive():
        msg = f"{ref} not found"
        raise pykka.ActorDeadError(msg)
    inbox: Inbox = ref.actor_inbox  # type: ignore[assignment]
    return inbox.put_deferred(envelope, on_done, wait=not _sent_by_reader(ref))


def _sent_by_reader(ref: pykka.ActorRef[Any]) -> bool:
    """Whether the running task is the handler of `ref`'s own actor (on its loop), or
    runs on the thread of the thread actor reading `ref`'s inbox (a loop its handler
    runs): it would wait for itself, as a thread actor telling itself would."""
    task = asyncio.current_task() if asyncio._get_running_loop() is not None else None
    return runs_the_handler_of(ref._actor_weakref(), threading.get_ident(), task)


def runs_the_handler_of(actor: Any, thread: int, task: object) -> bool:
    """Whether a caller on `thread` (in `task`, or None) runs `actor`'s handler: it
    is the thread of a running thread actor (not one whose id is reused once its
    thread has ended), or an event-loop actor's handler task."""
    if actor is None:
        return False
    own = actor_attr(actor, "_hr_thread_id", 0)
    if own and own == thread and not actor.actor_stopped.is_set():
        return True
    handler = actor_attr(actor, "_hr_task")
    return handler is not None and handler is task
