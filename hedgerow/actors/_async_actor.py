"""`AsyncioActor`: pykka's Actor interface on an asyncio event loop.

As pykka's gevent and eventlet runtimes did, it implements the three hooks a
runtime provides (`_create_actor_inbox`, `_create_future`,
`_start_actor_loop`) and its own actor loop, so `pykka.ActorRef`, `tell`,
`ask`, proxies and futures work unchanged. Many actors share one loop.

An actor is not a task while it is idle: a message put into an idle actor's
inbox schedules one callback that handles the queued messages, in order. A
handler that returns a coroutine (an ``async def`` hook or proxied method) is
awaited in a task, and the actor's next message waits until it is done; other
actors of the loop run meanwhile. So an idle actor costs its objects only, and
a message between two actors of one loop costs no thread hop and no task.

From another thread, a put hands the actor to its loop's `LoopRuntime`, which
wakes the loop once for a burst of puts.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from asyncio import CancelledError, events
from collections import deque
from types import CoroutineType
from typing import TYPE_CHECKING, Any, ClassVar

import pykka
from pykka import ActorDeadError, ActorRegistry, messages

from hedgerow.actors._async_future import AsyncioFuture
from hedgerow.actors._loop import _actor_codes, hedgerow_loop, runtime_for

if TYPE_CHECKING:
    from collections.abc import Awaitable, Coroutine
    from types import TracebackType

    from pykka._actor import ActorInbox
    from pykka._envelope import Envelope

    from hedgerow.actors._loop import LoopRuntime

__all__ = ["AsyncioActor"]

logger = logging.getLogger("hedgerow.actors")
pykka_logger = logging.getLogger("pykka")

_get_running_loop = events._get_running_loop  # asyncio's C fast path
_BUDGET = 256
"""Messages one actor handles in one callback before it lets the loop's other work run."""

_NEW, _RUNNING, _DEAD = 0, 1, 2


class _LoopInbox:
    """An event-loop actor's inbox: a deque, and a wake-up of the actor on its loop.

    `put` may be called from any thread; `get` and `empty` only on the loop
    (``get`` never blocks: it raises IndexError when the inbox is empty).
    """

    __slots__ = ("_actor", "_loop", "_queue", "_runtime")

    def __init__(self) -> None:
        self._queue: deque[Envelope[Any]] = deque()
        self._actor: AsyncioActor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runtime: LoopRuntime | None = None

    def put(self, envelope: Envelope[Any], /) -> None:
        self._queue.append(envelope)
        actor = self._actor
        if actor is None:
            return  # not started yet: its start handles what is queued
        loop = self._loop
        if _get_running_loop() is loop:
            reply_to = envelope.reply_to
            if reply_to is not None and reply_to.__class__ is AsyncioFuture:
                reply_to._hr_owner = loop
            if not actor._hr_busy:
                actor._hr_busy = True
                actor._hr_runtime.busy += 1
                loop.call_soon(actor._hr_drain)  # type: ignore[union-attr]
        else:
            self._runtime.notify(actor)  # type: ignore[union-attr]

    def get(self) -> Envelope[Any]:
        return self._queue.popleft()

    def empty(self) -> bool:
        return not self._queue

    def qsize(self) -> int:
        return len(self._queue)


class AsyncioActor(pykka.Actor):
    """An actor on an asyncio event loop, shared with other actors.

    Hooks and handlers (``on_start``, ``on_receive``, ``on_stop``,
    ``on_failure``, and methods called through a proxy) may be ``async def``
    or plain functions. They run on the actor's loop thread, one message at a
    time, in order; an ``await`` inside one holds back this actor's next
    message, not the loop's other actors. What they raise is handled as in
    pykka: an ask's error goes back to the asker, a told message's error (or
    one from ``on_start`` or ``on_stop``) fails the actor, which calls
    ``on_failure`` and stops.

    The loop: when `start` is called inside a running asyncio loop (and
    `use_running_loop` is True, the default), the actor runs on that loop; any
    other caller gets the loop hedgerow runs on its own daemon thread. From
    that loop, ``await ref.ask(msg, block=False)``: a blocking ``get()`` of an
    answer that an actor of the same loop must give raises RuntimeError
    instead of hanging. Blocking calls and long CPU work in a handler hold
    every actor of the loop; hedgerow logs a handler that holds the loop for
    longer than `hedgerow.set_block_threshold` allows.
    """

    use_running_loop: ClassVar[bool] = True
    """Run on the caller's running loop when started inside one; if False, always
    on hedgerow's loop thread. Read when `start` is called."""

    actor_inbox: _LoopInbox

    @staticmethod
    def _create_actor_inbox() -> ActorInbox:
        return _LoopInbox()

    @staticmethod
    def _create_future() -> pykka.Future[Any]:
        return AsyncioFuture()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._hr_phase = _NEW
        self._hr_busy = False
        self._hr_killed = False
        self._hr_current: Envelope[Any] | None = None
        self._hr_task: asyncio.Task[None] | None = None

    # -- hooks: plain or async def (typed so, for subclasses' overrides) ------------

    def on_start(self) -> Awaitable[None] | None:  # type: ignore[override]
        """Run before the first message, on the actor's loop; may be ``async def``.

        What it raises is logged and the actor stops (pykka's rule).
        """
        return None

    def on_stop(self) -> Awaitable[None] | None:  # type: ignore[override]
        """Run when the actor stops normally, on its loop; may be ``async def``.

        Not run when the actor fails (``on_failure`` is) or is killed. What it
        raises is logged and the actor stops.
        """
        return None

    def on_failure(  # type: ignore[override]
        self,
        exception_type: type[BaseException] | None,  # noqa: ARG002 - pykka's signature
        exception_value: BaseException | None,  # noqa: ARG002
        traceback: TracebackType | None,  # noqa: ARG002
    ) -> Awaitable[None] | None:
        """Run after a failure, before the actor stops, on its loop; may be ``async def``.

        What it raises is logged and the actor stops.
        """
        return None

    @property
    def actor_loop(self) -> asyncio.AbstractEventLoop:
        """The event loop this actor runs on (set by `start`)."""
        loop = self.actor_inbox._loop
        if loop is None:
            msg = f"{self} has not been started"
            raise RuntimeError(msg)
        return loop

    def _start_actor_loop(self) -> None:
        running = _get_running_loop()
        loop = running if running is not None and self.use_running_loop else hedgerow_loop()
        runtime = runtime_for(loop)
        self._hr_runtime = runtime
        self._hr_loop = loop
        inbox = self.actor_inbox
        inbox._loop = loop
        inbox._runtime = runtime
        inbox._actor = self
        if running is loop:
            if runtime.thread_id is None:
                runtime.thread_id = threading.get_ident()
            self._hr_busy = True
            runtime.busy += 1
            loop.call_soon(self._hr_drain)
        else:
            runtime.notify(self)

    # -- the actor loop, as callbacks on the event loop ----------------------------

    def _hr_drain(self) -> None:
        """Handle queued messages in order; a coroutine continues in a task."""
        if self._hr_phase != _RUNNING:
            if self._hr_phase == _NEW:
                self._hr_phase = _RUNNING
                pending = self._hr_start()
                if pending is not None:
                    self._hr_await(pending)
                    return
            else:
                self._hr_teardown()
                self._hr_idle()
                return
        queue = self.actor_inbox._queue
        stopped = self.actor_stopped
        budget = _BUDGET
        while queue and not stopped.is_set():
            if not budget:
                self._hr_loop.call_soon(self._hr_drain)
                return
            budget -= 1
            envelope = queue.popleft()
            self._hr_current = envelope
            pending = self._hr_handle(envelope)
            if pending is not None:
                self._hr_await(pending)
                return
            self._hr_current = None
        if stopped.is_set():
            self._hr_teardown()
        self._hr_idle()

    def _hr_idle(self) -> None:
        self._hr_busy = False
        self._hr_runtime.busy -= 1

    def _hr_handle(self, envelope: Envelope[Any]) -> Coroutine[Any, Any, None] | None:
        """Handle one message; a coroutine to await if the handler returned one."""
        try:
            response = self._handle_receive(envelope.message)
        except Exception:  # noqa: BLE001 - pykka's rule: the asker gets it, or the actor fails
            return self._hr_on_error(envelope, sys.exc_info())
        except BaseException:  # noqa: BLE001 - pykka stops every actor on these
            return self._hr_on_base_exception()
        if response.__class__ is CoroutineType:
            return self._hr_finish(envelope, response)
        reply_to = envelope.reply_to
        if reply_to is not None and not self._hr_killed:
            reply_to.set(response)
        return None

    async def _hr_finish(self, envelope: Envelope[Any], coroutine: Any) -> None:
        """Await a handler's coroutine and answer its message."""
        try:
            response = await coroutine
        except CancelledError:
            raise
        except Exception:  # noqa: BLE001 - as in _hr_handle
            pending = self._hr_on_error(envelope, sys.exc_info())
            if pending is not None:
                await pending
            return
        except BaseException:  # noqa: BLE001 - as in _hr_handle
            pending = self._hr_on_base_exception()
            if pending is not None:
                await pending
            return
        reply_to = envelope.reply_to
        if reply_to is not None and not self._hr_killed:
            reply_to.set(response)

    def _hr_await(self, pending: Coroutine[Any, Any, None]) -> None:
        self._hr_task = self._hr_loop.create_task(self._hr_continue(pending))

    async def _hr_continue(self, pending: Coroutine[Any, Any, None]) -> None:
        """The task of a coroutine handler: await it, then go on with the inbox."""
        try:
            await pending
        except CancelledError:
            if not self._hr_killed:
                # Cancelled from outside (the loop is shutting down): as a kill.
                self._hr_do_kill()
            self._hr_task = None
            self._hr_current = None
            self._hr_idle()
            return
        self._hr_task = None
        self._hr_current = None
        self._hr_drain()  # also when killed meanwhile: it tears down and goes idle

    def _hr_start(self) -> Coroutine[Any, Any, None] | None:
        try:
            started = self.on_start()
        except BaseException:  # noqa: BLE001 - any start error fails the actor
            self._handle_failure(*sys.exc_info())
            return None
        if started.__class__ is CoroutineType:
            return self._hr_guard(started)
        return None

    async def _hr_guard(self, hook: Any) -> None:
        """Await a hook's coroutine; what it raises fails the actor."""
        try:
            await hook
        except CancelledError:
            raise
        except BaseException:  # noqa: BLE001 - any hook error fails the actor
            self._handle_failure(*sys.exc_info())

    def _hr_on_error(
        self, envelope: Envelope[Any], exc_info: Any
    ) -> Coroutine[Any, Any, None] | None:
        reply_to = envelope.reply_to
        if reply_to is not None:
            pykka_logger.info("Exception returned from %s to caller:", self, exc_info=exc_info)
            if not self._hr_killed:
                reply_to.set_exception(exc_info)
            return None
        self._handle_failure(*exc_info)
        try:
            result = self.on_failure(*exc_info)
        except Exception:  # noqa: BLE001 - pykka's rule: a failing on_failure is logged
            self._handle_failure(*sys.exc_info())
            return None
        if result.__class__ is CoroutineType:
            return self._hr_guard(result)
        return None

    def _hr_on_base_exception(self) -> Coroutine[Any, Any, None] | None:
        exception_value = sys.exc_info()[1]
        pykka_logger.debug("%r in %s. Stopping all actors.", exception_value, self)
        pending: Coroutine[Any, Any, None] | None = self._stop()
        # Not block=True: the other actors of this loop could not stop while it waits.
        ActorRegistry.stop_all(block=False)
        return pending

    def _stop(self) -> Any:
        """Stop now; ``on_stop`` runs (its coroutine is returned, to be awaited)."""
        ActorRegistry.unregister(self.actor_ref)
        self.actor_stopped.set()
        pykka_logger.debug("Stopped %s", self)
        try:
            stopped = self.on_stop()
        except Exception:  # noqa: BLE001 - pykka's rule: logged, and the actor stops
            self._handle_failure(*sys.exc_info())
            return None
        if stopped.__class__ is CoroutineType:
            return self._hr_guard(stopped)
        return None

    def _handle_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        pykka_logger.error(
            "Unhandled exception in %s:",
            self,
            exc_info=(exception_type, exception_value, traceback),  # type: ignore[arg-type]
        )
        ActorRegistry.unregister(self.actor_ref)
        self.actor_stopped.set()

    def _hr_teardown(self) -> None:
        """Answer what is left in the inbox, as pykka's teardown does."""
        self._hr_phase = _DEAD
        queue = self.actor_inbox._queue
        while queue:
            envelope = queue.popleft()
            reply_to = envelope.reply_to
            if reply_to is None:
                continue
            if isinstance(envelope.message, messages._ActorStop):
                reply_to.set(None)
            else:
                error = ActorDeadError(f"{self.actor_ref} stopped before handling the message")
                reply_to.set_exception((ActorDeadError, error, None))

    # -- killing -------------------------------------------------------------------

    def _hr_kill(self) -> None:
        """Kill the actor now, from any thread: its running handler's task is
        cancelled, ``on_stop`` does not run, and the ask in hand and those
        queued fail with ActorDeadError.

        A handler that is a plain function (or a coroutine between two awaits)
        cannot be interrupted: the kill happens when it gives the loop back.
        """
        loop = self._hr_loop
        if _get_running_loop() is loop:
            self._hr_do_kill()
            return
        try:
            loop.call_soon_threadsafe(self._hr_do_kill)
        except RuntimeError:  # the loop is closed
            self._hr_loop_closed()

    def _hr_do_kill(self) -> None:
        if self._hr_phase == _DEAD and self._hr_task is None:
            return
        self._hr_killed = True
        ActorRegistry.unregister(self.actor_ref)
        self.actor_stopped.set()
        pykka_logger.debug("Killed %s", self)
        current = self._hr_current
        self._hr_current = None
        if current is not None and current.reply_to is not None:
            error = ActorDeadError(f"{self.actor_ref} was killed while handling the message")
            try:
                current.reply_to.set_exception((ActorDeadError, error, None))
            except Exception:  # noqa: BLE001 - already answered
                logger.debug("The killed %s had answered already", self)
        task = self._hr_task
        if task is not None and task is not _current_task(self._hr_loop):
            task.cancel()
        self._hr_teardown()

    def _hr_loop_closed(self) -> None:
        """The loop is closed: nothing runs this actor again; fail what it holds."""
        self._hr_killed = True
        ActorRegistry.unregister(self.actor_ref)
        self.actor_stopped.set()
        self._hr_teardown()


def _current_task(loop: asyncio.AbstractEventLoop) -> asyncio.Task[Any] | None:
    return asyncio.current_task(loop) if _get_running_loop() is loop else None


_actor_codes.update(
    {
        AsyncioActor._hr_drain.__code__,
        AsyncioActor._hr_finish.__code__,
        AsyncioActor._hr_guard.__code__,
    }
)
