"""`ask`: await an actor's answer in a coroutine, without blocking the running loop.

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
import threading
from typing import TYPE_CHECKING, Any

import pykka
from pykka._envelope import Envelope

from hedgerow._exceptions import InboxFull
from hedgerow.actors._async_future import AsyncioFuture
from hedgerow.actors._inbox import Inbox, Overflow

if TYPE_CHECKING:
    from collections.abc import Awaitable

__all__ = ["AskTimeout", "ask", "ask_within"]


class AskTimeout(pykka.Timeout, TimeoutError):
    """No answer within the timeout: pykka's `Timeout`, and asyncio's `TimeoutError`."""


async def ask(ref: pykka.ActorRef[Any], message: Any) -> Any:
    """Send `message` to the actor of `ref` and await its answer.

    The running loop is not blocked while the actor answers, whichever
    runtime the actor has (a thread actor, an event-loop actor on this loop
    or another, a supervised child through its `ChildRef`). What the handler
    raises is raised here, as by ``ref.ask(message)``; so are
    `pykka.ActorDeadError` for an actor that is not running and
    `hedgerow.DeadLetterError` for a child gone for good.

    Bound the wait as any await, with ``asyncio.timeout(seconds)``.
    Cancelling the awaiting task (or a timeout) does not take the message
    back: the actor may still handle it, and its answer is then dropped.
    """
    return await (await _send(ref, message))


async def ask_within(
    ref: pykka.ActorRef[Any], message: Any, seconds: float | None, what: str | None = None
) -> Any:
    """`ask`, bounded by `seconds` (None: no bound): `AskTimeout` if no answer comes."""
    future = await _send(ref, message)
    if seconds is None:
        return await future
    try:
        async with asyncio.timeout(seconds):
            return await future
    except TimeoutError:
        if future.done():  # the answer came with the timeout
            return future.get(timeout=0)
        msg = f"{what or ref} did not answer within {seconds} seconds"
        raise AskTimeout(msg) from None


async def _send(ref: pykka.ActorRef[Any], message: Any) -> AsyncioFuture[Any]:
    if not isinstance(ref, pykka.ActorRef):
        msg = f"hedgerow.ask needs an actor's ref (a pykka.ActorRef or a ChildRef), not {ref!r}"
        raise TypeError(msg)
    future: AsyncioFuture[Any] = AsyncioFuture()
    inbox = getattr(ref, "actor_inbox", None)
    if isinstance(inbox, Inbox) and inbox.overflow is Overflow.BLOCK and inbox.max_inbox:
        # The sender of a full inbox waits for room: not on the loop's thread.
        await _in_thread(lambda: _put(ref, message, future))
    else:
        _put(ref, message, future)
    return future


def _put(ref: pykka.ActorRef[Any], message: Any, future: AsyncioFuture[Any]) -> None:
    from hedgerow.actors._ref import ChildRef  # noqa: PLC0415 - _ref imports this package's future

    if isinstance(ref, ChildRef):
        # A child's inbox outlives its incarnations: no liveness check, as
        # ChildRef.ask; a gone child's inbox answers with DeadLetterError.
        with contextlib.suppress(InboxFull):  # the future holds it (overflow "fail")
            ref.actor_inbox.put(Envelope(message, reply_to=future))
        return
    if not ref.is_alive():
        error = pykka.ActorDeadError(f"{ref} not found")
        future.set_exception((pykka.ActorDeadError, error, None))
        return
    try:
        ref.actor_inbox.put(Envelope(message, reply_to=future))
    except InboxFull:
        if not future.done():
            raise


def _in_thread(call: Any) -> Awaitable[None]:
    """Run `call` in a daemon thread; the awaitable of its end. Not the loop's
    default executor: a put waiting for room must not hold one of its few workers."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def run() -> None:
        try:
            call()
        except BaseException as error:  # noqa: BLE001 - handed to the awaiting task
            _hand_over(loop, done, error)
        else:
            _hand_over(loop, done, None)

    threading.Thread(target=run, name="hedgerow ask", daemon=True).start()
    return asyncio.shield(done)


def _hand_over(
    loop: asyncio.AbstractEventLoop, done: asyncio.Future[None], error: BaseException | None
) -> None:
    def settle() -> None:
        if done.done():
            return
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)

    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody awaits
        loop.call_soon_threadsafe(settle)
