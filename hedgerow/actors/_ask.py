"""`ask`: an actor's answer that a coroutine awaits without blocking the running loop.

pykka's futures await by blocking: ``await ref.ask(msg, block=False)`` on a
thread actor's ref stops the whole loop until the answer comes. `ask` puts
the message into the actor's inbox with an `AsyncioFuture` to answer, so
whichever thread answers (a thread actor's own, a loop's) hands the answer
to the awaiting task with ``call_soon_threadsafe``; meanwhile the loop runs
its other tasks. It works on any ref: a `ChildRef`, the ref of a
`hedgerow.Actor` or an `AsyncioActor`, or a plain pykka `ThreadingActor`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from asyncio import events
from typing import Any

import pykka
from pykka._envelope import Envelope

from hedgerow._exceptions import InboxFull
from hedgerow.actors._actor_core import fail_if_ended
from hedgerow.actors._async_future import _PENDING, AsyncioFuture
from hedgerow.actors._attrs import actor_attr
from hedgerow.actors._inbox import Inbox, Overflow
from hedgerow.actors._loop_inbox import LoopActorRef
from hedgerow.actors._ref import ChildRef
from hedgerow.actors._tell import defer, not_a_ref

__all__ = ["AskTimeout", "ask", "ask_within"]


_get_running_loop = events._get_running_loop  # asyncio's C fast path


class AskTimeout(pykka.Timeout, TimeoutError):
    """No answer within the timeout: pykka's `Timeout`, and asyncio's `TimeoutError`."""


def ask(ref: pykka.ActorRef[Any], message: Any) -> AsyncioFuture[Any]:
    """Send `message` to the actor of `ref`; the future of its answer, to await.

    ``await hedgerow.ask(ref, message)`` does not block the running loop while
    the actor answers, whichever runtime the actor has (a thread actor, an
    event-loop actor on this loop or another, a supervised child through its
    `ChildRef`). What the handler raises is raised by the await, as by
    ``ref.ask(message)``; so are `pykka.ActorDeadError` for an actor that is
    not running and `hedgerow.DeadLetterError` for a child gone for good.

    The message is sent at once, awaited or not (as ``ref.ask(message,
    block=False)``); the future is an `AsyncioFuture`, so a thread may also
    ``get()`` it. Bound the wait as any await, with ``asyncio.timeout``.
    Cancelling the awaiting task (or a timeout around it) takes the message
    back if the actor has not taken it yet (from its inbox, or from the
    sends waiting for room): it is never handled, nor a dead letter, and the
    future fails with `asyncio.CancelledError` for anyone else awaiting it.
    If the actor has it already, it runs to its end and its answer is
    dropped.

    A bounded inbox whose overflow policy is ``block`` makes a sender wait for
    room: the message waits for it in the inbox (in order with `hedgerow.tell`'s,
    see there), whether called from a loop or from a thread; the caller never
    waits. An answer of `InboxFull` says that no room came within the inbox's
    timeout.
    """
    if ref.__class__ is LoopActorRef and ref._hr_make_future is AsyncioFuture:
        # An event-loop actor's own ask does the same (its future an AsyncioFuture
        # that takes the message back), in fewer steps.
        return ref.ask(message, block=False)  # type: ignore[return-value]
    if not isinstance(ref, pykka.ActorRef):
        error = not_a_ref("hedgerow.ask", ref)
        raise error
    future: AsyncioFuture[Any] = AsyncioFuture()
    inbox = ref.actor_inbox
    future._hr_inbox = inbox  # a cancelled await takes the message back from it
    if ref.__class__ is ChildRef or isinstance(ref, ChildRef):
        # As ChildRef.ask: get() refuses to block the loop thread of an event-loop child.
        future._hr_owner = actor_attr(ref._incarnation, "_hr_loop")
    if isinstance(inbox, Inbox) and inbox.overflow is Overflow.BLOCK and inbox.max_inbox:
        # As hedgerow.tell's, from a loop or a thread alike: waits in the inbox, in
        # order with the tells and blocked puts, where a cancelled await withdraws it.
        try:
            defer(ref, Envelope(message, future))
        except BaseException:  # noqa: BLE001 - the asker gets it
            if not future.done():
                future.set_exception(sys.exc_info())
    else:
        _put(ref, message, future)
    return future


async def ask_within(
    ref: pykka.ActorRef[Any], message: Any, seconds: float | None, what: str | None = None
) -> Any:
    """`ask`, awaited, bounded by `seconds` (None: no bound): `AskTimeout` if no answer
    comes, its message naming `ref` and `what` was asked (a call's name; made only
    then, as a ref's text costs a microsecond). Cancelled, it takes the message
    back if the actor has not taken it (as `ask`'s await); timed out, it leaves
    it, as a blocking ask's ``get(timeout)`` does."""
    future = ask(ref, message)
    if seconds is None:
        return await future
    loop = _get_running_loop()
    if loop is None or future._get_hook is not None:
        try:
            async with asyncio.timeout(seconds):
                return await future
        except TimeoutError:
            if future.done():  # the answer came with the timeout
                return future.get(timeout=0)
            msg = f"{_asked(ref, what)} did not answer within {seconds} seconds"
            raise AskTimeout(msg) from None
    # Every awaited ask of the API (a tree's start_child...) takes this path:
    # a timer that wakes the awaiting task, rather than asyncio.timeout's
    # cancelling of it (a third of an ask's cost, and a start's is an ask).
    if future._hr_state == _PENDING:
        waiter = loop.create_future()
        future._hr_add_waiter(waiter)
        if not waiter.done():
            timer = loop.call_later(seconds, _expire, waiter)
            try:
                await waiter
            except BaseException:  # the task was cancelled: as an awaited ask's, the
                timer.cancel()  # call is taken back if the actor has not taken it
                future._hr_discard_waiter(waiter)
                future._hr_take_back()
                raise
            timer.cancel()
            if future._hr_state == _PENDING:  # timed out
                future._hr_discard_waiter(waiter)
        if future._get_hook is None and future._hr_state == _PENDING:
            msg = f"{_asked(ref, what)} did not answer within {seconds} seconds"
            raise AskTimeout(msg)
    return await future  # the outcome (or a get hook set meanwhile: as before)


def _asked(ref: pykka.ActorRef[Any], what: str | None) -> str:
    return f"{ref} ({what})" if what else str(ref)


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _put(ref: pykka.ActorRef[Any], message: Any, future: AsyncioFuture[Any]) -> None:
    if ref.__class__ is ChildRef or isinstance(ref, ChildRef):
        # A child's inbox outlives its incarnations: no liveness check, as
        # ChildRef.ask; a gone child's inbox answers with DeadLetterError.
        with contextlib.suppress(InboxFull):  # the future holds it (overflow "fail")
            ref.actor_inbox.put(Envelope(message, future))
        return
    if not ref.is_alive():
        error = pykka.ActorDeadError(f"{ref} not found")
        future.set_exception((pykka.ActorDeadError, error, None))
        return
    try:
        ref.actor_inbox.put(Envelope(message, future))
    except InboxFull:
        if not future.done():
            raise
        return
    fail_if_ended(ref, future)  # the actor may have drained its inbox meanwhile
