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
from inspect import CORO_CREATED, getcoroutinestate
from types import CoroutineType
from typing import TYPE_CHECKING, Any, ClassVar

import pykka
from pykka import ActorDeadError, ActorRegistry, messages

from hedgerow._exceptions import Shutdown
from hedgerow.actors import _registry
from hedgerow.actors._actor_core import take_spawning_inbox
from hedgerow.actors._async_future import AsyncioFuture
from hedgerow.actors._attrs import actor_attr
from hedgerow.actors._inbox import Inbox
from hedgerow.actors._loop import DEFERRED, _actor_codes, hedgerow_loop, runtime_for
from hedgerow.actors._loop_child import BUDGET, DEAD, LEFT, NEW, RUNNING, LoopChild, current_task
from hedgerow.actors._loop_inbox import LoopActorRef, LoopInbox
from hedgerow.actors._messages import _Control
from hedgerow.actors._registry import RefTable, index_registry

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine
    from types import TracebackType

    from pykka._actor import ActorInbox
    from pykka._envelope import Envelope

    from hedgerow.actors._flag import StopFlag

__all__ = ["AsyncioActor"]

logger = logging.getLogger("hedgerow.actors")
pykka_logger = logging.getLogger("pykka")

_get_running_loop = events._get_running_loop  # asyncio's C fast path
_BUDGET = BUDGET
_NEW, _RUNNING, _DEAD = NEW, RUNNING, DEAD
_PYKKA_MESSAGES = (
    messages._ActorStop,
    messages.ProxyCall,
    messages.ProxyGetAttr,
    messages.ProxySetAttr,
)


class AsyncioActor(LoopChild, pykka.Actor):
    """An actor on an asyncio event loop, shared with other actors.

    Hooks and handlers (``on_start``, ``on_receive``, ``on_stop``,
    ``on_failure``, and methods called through a proxy) may be ``async def``
    or plain functions. They run on the actor's loop thread, one message at a
    time, in order; an ``await`` inside one holds back this actor's next
    message, not the loop's other actors. What they raise is handled as in
    pykka: an ask's error goes back to the asker and the actor goes on; a told
    message's error fails the actor (``on_failure`` runs, then it stops); an
    error from ``on_start`` or ``on_stop`` is logged and the actor stops.

    The loop: when `start` is called inside a running asyncio loop (and
    `use_running_loop` is True, the default), the actor runs on that loop; any
    other caller gets the loop hedgerow runs on its own daemon thread. From
    that loop, ``await ref.ask(msg, block=False)``: a blocking ``get()`` of an
    answer that an actor of the same loop must give raises RuntimeError
    instead of hanging. Blocking calls and long CPU work in a handler hold
    every actor of the loop; hedgerow logs a handler that holds the loop for
    longer than `hedgerow.set_block_threshold` allows.

    Supervised (a `ChildSpec` may name an `AsyncioActor` class, as any
    `hedgerow.Actor`), it follows the thread runtime's rules (see
    `hedgerow.actors._loop_child`), and a ``brutal_kill`` or a shutdown that
    runs out cancels its task: it is killed, never abandoned.
    """

    use_running_loop: ClassVar[bool] = True
    """Run on the caller's running loop when started inside one; if False, always
    on hedgerow's loop thread. Read when `start` is called."""

    actor_inbox: LoopInbox
    actor_stopped: StopFlag
    _hr_start_loop: asyncio.AbstractEventLoop | None = None
    """The loop to start on, if set before `start` (a component's, on its transport's loop)."""
    _hr_notified = False
    """True while the actor waits in its loop's hand-over queue (LoopRuntime.notify)."""
    # Class-level defaults, as ActorCore's: an idle actor holds only what differs.
    _hr_phase = _NEW
    _hr_busy = False
    _hr_killed = False
    _hr_current: Envelope[Any] | None = None
    _hr_task: asyncio.Task[None] | None = None

    @staticmethod
    def _create_actor_inbox() -> ActorInbox:
        inbox = take_spawning_inbox()  # a supervised child's: its ChildRef's Inbox
        if inbox is not None:
            return inbox  # type: ignore[no-any-return]
        return LoopInbox()

    @staticmethod
    def _create_future() -> pykka.Future[Any]:
        return AsyncioFuture()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self._hr_child_ref is None:
            # pykka's ActorRef, with a tell and an ask that skip its generic steps.
            self._actor_ref = LoopActorRef(self, _future_maker(self.__class__))

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
        loop: asyncio.AbstractEventLoop | None = actor_attr(self, "_hr_loop")
        if loop is None:
            msg = f"{self} has not been started"
            raise RuntimeError(msg)
        return loop

    def _start_actor_loop(self) -> None:
        if ActorRegistry._actor_refs.__class__ is not RefTable:  # type: ignore[comparison-overlap]
            index_registry()  # many actors: O(1) unregisters (see hedgerow.actors._registry)
        running = _get_running_loop()
        loop = self._hr_start_loop
        if loop is None:
            loop = running if running is not None and self.use_running_loop else hedgerow_loop()
        runtime = runtime_for(loop)
        self._hr_runtime = runtime
        self._hr_loop = loop
        if running is loop and runtime.thread_id is None:
            runtime.thread_id = threading.get_ident()
        inbox = self.actor_inbox
        if isinstance(inbox, Inbox):  # supervised: its ChildRef's
            self._hr_attach_inbox(inbox)
        else:
            inbox._loop = loop
            inbox._runtime = runtime
            inbox._actor = self
        if running is loop:
            self._hr_busy = True
            runtime.busy += 1
            if runtime.deferred is self:
                runtime.deferred = DEFERRED  # its starter runs _hr_drain itself
                return
            loop.call_soon(self._hr_drain)
        else:
            runtime.notify(self)

    # -- the actor loop: a callback while handlers are plain, a task while one awaits ------

    def _hr_drain(self) -> None:
        """The callback that handles queued messages; a coroutine continues in a task."""
        pending = self._hr_next()
        if pending is not None:
            self._hr_task = self._hr_loop.create_task(self._hr_body(*pending))

    def _hr_next(  # noqa: C901, PLR0911, PLR0912 - every message's path, kept in one frame
        self,
    ) -> tuple[Envelope[Any] | None, Coroutine[Any, Any, Any]] | None:
        """Handle queued messages in order while their handlers are plain functions.

        Returns the first coroutine to await (with the message it answers, or
        None for a hook's coroutine), or None once the inbox is empty (the actor
        is idle), the actor has stopped (it is torn down), or its budget is spent
        (a callback goes on later).
        """
        if self._hr_child_ref is not None:
            return self._hr_next_child()
        if self._hr_phase != _RUNNING:
            if self._hr_phase != _NEW:
                self._hr_teardown()
                self._hr_idle()
                return None
            self._hr_phase = _RUNNING
            # Spawned by a tree (its root): the start is waited for and reported.
            hook = self._hr_start_child() if self._hr_reported else self._hr_start()
            if hook is not None:
                return None, hook
        queue = self.actor_inbox._queue
        stopped = self.actor_stopped
        budget = _BUDGET
        while queue and not stopped._flag:
            if not budget:
                self._hr_loop.call_soon(self._hr_drain)
                return None
            budget -= 1
            try:
                envelope = queue.popleft()
            except IndexError:  # taken back meanwhile by a cancelled asker's thread
                break
            self._hr_current = envelope
            try:
                response = self._handle_receive(envelope.message)
            except BaseException:  # noqa: BLE001 - handled as pykka does (_hr_failed)
                hook = self._hr_failed(envelope)
            else:
                if response.__class__ is CoroutineType:
                    return envelope, response
                reply_to = envelope.reply_to
                if reply_to is not None and not self._hr_killed:
                    reply_to.set(response)
                hook = None
            self._hr_current = None
            if hook is not None:
                return None, hook
        if stopped._flag:
            self._hr_teardown()
        self._hr_busy = False  # _hr_idle, inlined
        self._hr_runtime.busy -= 1
        return None

    async def _hr_body(self, envelope: Envelope[Any] | None, coroutine: Any) -> None:  # noqa: C901, PLR0912 - the hot path in one frame
        """The task of an actor whose handler awaits: await it, answer its message,
        then go on with the inbox in this task until the actor is idle again."""
        if self._hr_killed and self._hr_child_ref is not None:
            # Killed before this task ran (its kill does not cancel a task that
            # has not started): the handler never runs.
            coroutine.close()
            self._hr_task = None
            self._hr_idle()
            return
        try:
            while True:
                if envelope is None:
                    await coroutine  # a hook's, guarded by _hr_guard
                else:
                    try:
                        response = await coroutine
                    except BaseException as error:  # handled as pykka does (_hr_failed)
                        if isinstance(error, CancelledError) and (self._hr_killed or _cancelling()):
                            raise  # this task is cancelled: a kill
                        if error.__class__ is GeneratorExit:
                            raise  # this task, abandoned, is being collected: no handler's error
                        # (A CancelledError of something it awaited is the handler's error.)
                        hook = self._hr_failed(envelope)
                        if hook is not None:
                            await hook
                    else:
                        reply_to = envelope.reply_to
                        if reply_to is not None and not self._hr_killed and response is not LEFT:
                            reply_to.set(response)
                self._hr_current = None
                if (
                    self._hr_child_ref is None
                    and not self.actor_inbox._queue
                    and self._hr_phase == _RUNNING
                    and not self.actor_stopped._flag
                ):
                    self._hr_busy = False  # idle: what _hr_next ends with then, inlined
                    self._hr_runtime.busy -= 1
                    break
                pending = self._hr_next()
                if pending is None:
                    break
                envelope, coroutine = pending
        except CancelledError:
            self._hr_cancelled()
        self._hr_task = None

    def _hr_cancelled(self) -> None:
        if self._hr_child_ref is not None:
            self._hr_child_cancelled()  # nothing more if it was its supervisor's kill
        elif not self._hr_killed:
            # Cancelled from outside (its loop is shutting down): as a kill.
            self._hr_do_kill()
        self._hr_current = None
        self._hr_idle()

    def _hr_idle(self) -> None:
        self._hr_busy = False
        self._hr_runtime.busy -= 1

    def _handle_receive(self, message: Any) -> Any:
        # pykka's messages are NamedTuples: the first check spares most messages
        # the second, four times as long.
        if isinstance(message, tuple) and isinstance(message, _PYKKA_MESSAGES):
            return super()._handle_receive(message)
        if message.__class__ is _Control:  # a link's exit signal (unsupervised)
            return self._hr_control(message)
        return self.on_receive(message)

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

    def _hr_failed(self, envelope: Envelope[Any]) -> Coroutine[Any, Any, None] | None:
        """The handler of `envelope` raised (the exception being handled): as pykka,
        an Exception goes back to the asker or fails the actor; any other stops
        every actor. Returns a hook's coroutine to await, if any."""
        if self._hr_child_ref is not None or self._hr_reported:
            return self._hr_child_failed(envelope)  # (a tree's root: as a thread's, it fails alone)
        exc_info = sys.exc_info()
        if isinstance(exc_info[1], Shutdown):  # a stop with a reason that counts as normal
            self._hr_set_reason(exc_info[1])
            if envelope.reply_to is not None and not self._hr_killed:
                envelope.reply_to.set_exception(exc_info)
            return self._stop()  # type: ignore[no-any-return]
        # A CancelledError that is not this actor's kill is the handler's error.
        if isinstance(exc_info[1], (Exception, CancelledError)):
            return self._hr_on_error(envelope, exc_info)
        return self._hr_on_base_exception()

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
        # pykka's rule: a failing on_failure is logged. Not only an Exception: a
        # SystemExit let out here would stop the loop, and every actor on it.
        try:
            result = self.on_failure(*exc_info)
        except BaseException:  # noqa: BLE001
            self._handle_failure(*sys.exc_info())
            return None
        if result.__class__ is CoroutineType:
            return self._hr_guard(result)
        return None

    def _hr_on_base_exception(self) -> Coroutine[Any, Any, None] | None:
        exception_value = sys.exc_info()[1]
        if exception_value is not None:
            self._hr_set_reason(exception_value)
        pykka_logger.debug("%r in %s. Stopping all actors.", exception_value, self)
        pending: Coroutine[Any, Any, None] | None = self._stop()
        # Not block=True: the other actors of this loop could not stop while it waits.
        ActorRegistry.stop_all(block=False)
        return pending

    def _stop(self) -> Any:
        """Stop now; ``on_stop`` runs (its coroutine is returned, to be awaited)."""
        _registry.unregister(self.actor_ref)
        self.actor_stopped.set()
        if self._hr_abandoned:
            return None  # killed by its supervisor: no graceful stop
        pykka_logger.debug("Stopped %s", self)
        try:
            stopped = self.on_stop()
        except BaseException:  # noqa: BLE001 - logged, the actor stops (as on_failure's)
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
        if exception_value is not None:
            self._hr_set_reason(exception_value, traceback)
        if self._hr_child_ref is not None or self._hr_reported:
            # Its supervisor (or the tree, for its root) reports it as an event.
            _registry.unregister(self.actor_ref)
            self.actor_stopped.set()
            return
        pykka_logger.error(
            "Unhandled exception in %s:",
            self,
            exc_info=(exception_type, exception_value, traceback),  # type: ignore[arg-type]
        )
        _registry.unregister(self.actor_ref)
        self.actor_stopped.set()

    def _hr_teardown(self) -> None:
        """Answer what is left in the inbox, as pykka's teardown does; then its
        exit callbacks run (links and monitors)."""
        self._hr_phase = _DEAD
        if not self._hr_has_exited:
            self._hr_finish()
        inbox = self.actor_inbox
        if inbox.__class__ is not LoopInbox:
            return  # a supervised child's: what it holds waits for its next incarnation
        queue = inbox._queue
        while queue:
            try:
                envelope = queue.popleft()
            except IndexError:  # taken back meanwhile by a cancelled asker's thread
                break
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
        loop: asyncio.AbstractEventLoop | None = actor_attr(self, "_hr_loop")
        if loop is None:  # never started: nothing runs it
            self._hr_loop_closed()
            return
        if _get_running_loop() is loop:
            self._hr_do_kill()
            return
        try:
            loop.call_soon_threadsafe(self._hr_do_kill)
        except RuntimeError:  # the loop is closed
            self._hr_loop_closed()

    def _hr_do_kill(self) -> None:
        if self._hr_child_ref is not None:
            self._hr_child_cancelled()  # a supervised child is killed by its own rule
            return
        if self._hr_phase == _DEAD and self._hr_task is None:
            return
        self._hr_killed = True
        _registry.unregister(self.actor_ref)
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
        if task is not None and task is not current_task(self._hr_loop):
            if _close_given(task.get_coro()):
                # Its first step never comes (it ends cancelled at once): the
                # handler's coroutine is closed, not left to warn un-awaited.
                self._hr_task = None
                self._hr_idle()
            task.cancel()
        self._hr_teardown()

    def _hr_loop_closed(self) -> None:
        """The loop is closed: nothing runs this actor again; fail what it holds."""
        if self._hr_child_ref is not None:
            self._hr_child_cancelled()  # its supervisor learns it ended, killed
            return
        self._hr_killed = True
        _registry.unregister(self.actor_ref)
        self.actor_stopped.set()
        self._hr_teardown()


def _future_maker(actor_class: type[AsyncioActor]) -> Callable[[], pykka.Future[Any]]:
    """What makes the future of an ask to an actor of `actor_class`: its
    `_create_future`, or `AsyncioFuture` itself if the class keeps the default
    (one call fewer per ask)."""
    make = actor_class._create_future
    return AsyncioFuture if make is AsyncioActor._create_future else make


def _close_given(body: Any) -> bool:
    """If the task body `body` has not started (its cancel ends it before it runs),
    close the coroutines it was given (the handler's that `_hr_body` awaits, a
    hook's in `_hr_guard`, and theirs): True if it had not."""
    if body.__class__ is not CoroutineType or getcoroutinestate(body) != CORO_CREATED:
        return False
    frame = body.cr_frame
    assert frame is not None  # (created: it has one)
    for value in list(frame.f_locals.values()):
        if value.__class__ is CoroutineType and getcoroutinestate(value) == CORO_CREATED:
            _close_given(value)
            value.close()
    return True


def _cancelling() -> int:
    """How many cancellations of the running task are pending (0: none)."""
    task = asyncio.current_task()
    return task.cancelling() if task is not None else 0


_actor_codes.update(
    # The innermost of these frames on a blocked loop's stack names the actor
    # (its ``self``); the frame it called is where the report's stack starts.
    method.__code__
    for method in (
        AsyncioActor._hr_next,
        AsyncioActor._hr_body,
        AsyncioActor._hr_guard,
        AsyncioActor._hr_start,
        AsyncioActor._hr_on_error,
        AsyncioActor._handle_receive,
        AsyncioActor._stop,
    )
)
