"""The supervised side of an event-loop actor: `LoopChild`, a base of `AsyncioActor`.

A supervised event-loop actor reads its `ChildRef`'s inbox (the `Inbox` that
outlives each incarnation, as a thread child's does) instead of a `LoopInbox`:
the inbox wakes its `loop_reader`, which schedules itself on its loop when a
message arrives, and the actor takes messages with `Inbox.take_nowait`.
Everything else is the thread runtime's rule, on the loop: the supervisor's stops and links' exit
signals arrive in front of the inbox, a told message's error fails the
incarnation (the message is a dead letter), an ask's error goes back to the
asker unless the spec sets ``ask_errors_fail``, `hedgerow.Shutdown` stops it
with a reason that counts as normal, and other `BaseException`s fail the child
alone.

An event-loop incarnation can be killed: `_hr_abandon` (a ``brutal_kill``, a
shutdown that runs out) cancels its task on the loop, so no late handler
outcome follows. The message it held is a dead letter with reason ``killed``;
one it had crashed on as the kill was decided is reported with its failure
(`_hr_account_late`, as for a thread).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import sys
from asyncio import CancelledError, events
from types import CoroutineType
from typing import TYPE_CHECKING, Any, ClassVar

from hedgerow._exceptions import DeadLetterError, LinkedExit, Shutdown
from hedgerow.actors import _registry
from hedgerow.actors._actor_core import ActorCore
from hedgerow.actors._inbox import Inbox
from hedgerow.actors._messages import Exit, _Control, _Internal
from hedgerow.actors._reason import KILLED, SHUTDOWN, describe, is_normal

if TYPE_CHECKING:
    from collections.abc import Coroutine
    from types import TracebackType

    from pykka._envelope import Envelope

    from hedgerow.actors._flag import StopFlag
    from hedgerow.actors._loop import LoopRuntime
    from hedgerow.actors._ref import Interceptor

__all__ = ["LoopChild", "current_task"]

logger = logging.getLogger("hedgerow.actors")
pykka_logger = logging.getLogger("pykka")

_get_running_loop = events._get_running_loop  # asyncio's C fast path

NEW, RUNNING, DEAD = 0, 1, 2
"""An event-loop incarnation's phases: before ``on_start``, running, ended."""
BUDGET = 256
"""Messages one actor handles in one callback before it lets the loop's other work run."""

LEFT = object()
"""A handler's stand-in answer: the message went back to the inbox, unanswered."""
Pending = tuple["Envelope[Any] | None", "Coroutine[Any, Any, Any]"]
"""A coroutine to await in the actor's task, with the message it answers (None: a hook's)."""


class LoopChild(ActorCore):
    """The supervised-child half of `AsyncioActor` (see the module docstring)."""

    _hr_can_kill: ClassVar[bool] = True

    actor_stopped: StopFlag
    _hr_loop: asyncio.AbstractEventLoop
    _hr_runtime: LoopRuntime
    _hr_busy: bool
    _hr_phase: int
    _hr_killed: bool
    _hr_current: Envelope[Any] | None
    _hr_task: asyncio.Task[None] | None

    # -- what AsyncioActor provides -------------------------------------------------

    if TYPE_CHECKING:  # its hooks may return a coroutine

        def on_start(self) -> Any: ...

        def on_failure(
            self,
            exception_type: type[BaseException] | None,
            exception_value: BaseException | None,
            traceback: TracebackType | None,
        ) -> Any: ...

        def _stop(self) -> Any: ...
        def _hr_idle(self) -> None: ...
        def _hr_drain(self) -> None: ...
        def _hr_guard(self, hook: Any) -> Coroutine[Any, Any, None]: ...

    # -- waking ---------------------------------------------------------------------

    def _hr_wake(self) -> None:
        """The inbox wakes its `loop_reader` (any thread, under the inbox's mutex):
        run the actor on its loop if it is idle."""
        loop = self._hr_loop
        if _get_running_loop() is loop:
            if not self._hr_busy:
                self._hr_busy = True
                self._hr_runtime.busy += 1
                loop.call_soon(self._hr_drain)
        else:
            self._hr_runtime.notify(self)

    def _hr_attach_inbox(self, inbox: Inbox) -> None:
        """Read `inbox` from now on (at start, before the first wake-up)."""
        inbox.reader = self._hr_runtime.thread_id  # senders on the loop never wait for room
        inbox.loop_reader = self

    # -- the supervised actor loop ---------------------------------------------------

    def _hr_next_child(self) -> Pending | None:  # noqa: C901, PLR0912 - every message's path, in one frame
        """`AsyncioActor._hr_next` for a supervised incarnation (same contract)."""
        if self._hr_phase != RUNNING:
            if self._hr_phase != NEW:
                self._hr_idle()
                return None
            self._hr_phase = RUNNING
            hook = self._hr_start_child()
            if hook is not None:
                return None, hook
        inbox: Inbox = self.actor_inbox  # type: ignore[assignment]
        stopped = self.actor_stopped
        child_ref = self._hr_child_ref
        hooks = child_ref.hooks if child_ref is not None else None
        budget = BUDGET
        while not stopped._flag:
            if not budget:
                self._hr_loop.call_soon(self._hr_drain)
                return None
            budget -= 1
            # (An empty inbox is not taken from: no call, no mutex. A put from
            # another thread meanwhile wakes the actor once it is idle, as
            # after take_nowait's None.)
            if not inbox.queue:
                break
            envelope = inbox.take_nowait()
            if envelope is None:
                break
            if stopped._flag:  # abandoned meanwhile: it stays for the next incarnation
                inbox.put_front(envelope)
                break
            self._hr_current = envelope
            message = envelope.message
            hook = None
            try:
                if message.__class__ is _Control:
                    response = self._hr_control(message)
                elif hooks is not None and hooks.interceptor is not None:
                    response = self._hr_intercepted(hooks.interceptor, envelope)
                else:
                    response = self._handle_receive(message)
            except BaseException:  # noqa: BLE001 - every error has its rule (_hr_child_failed)
                hook = self._hr_child_failed(envelope)
            else:
                if response.__class__ is CoroutineType:
                    return envelope, response
                reply_to = envelope.reply_to
                if reply_to is not None and response is not LEFT:
                    reply_to.set(response)
            self._hr_current = None
            if hook is not None:
                return None, hook
        if stopped._flag:
            self._hr_end()
        self._hr_idle()
        return None

    def _hr_start_child(self) -> Coroutine[Any, Any, None] | None:
        """Run the interceptor's ``before_start`` and ``on_start``; its coroutine, if any."""
        try:
            child_ref = self._hr_child_ref
            hooks = child_ref.hooks if child_ref is not None else None
            if hooks is not None and hooks.interceptor is not None:
                hooks.interceptor.before_start(self)
            started = self.on_start()
        except BaseException:  # noqa: BLE001 - any start error fails the actor
            self._handle_failure(*sys.exc_info())
            self._hr_after_start()
            return None
        if started.__class__ is CoroutineType:
            return self._hr_starting(started)
        self._hr_after_start()
        return None

    async def _hr_starting(self, started: Any) -> None:
        try:
            await self._hr_guard(started)
        finally:
            self._hr_after_start()

    def _hr_after_start(self) -> None:
        """``on_start`` is over: note a start error, or report the start, then let
        the supervisor (waiting on ``_hr_started``) go on."""
        try:
            reason = self._hr_reason
            if self.actor_stopped._flag and reason is not None and not is_normal(reason):
                self._hr_start_error = reason  # type: ignore[assignment]
            elif self._hr_on_started is not None and not self._hr_abandoned:
                # Before the first message, so "started" always precedes its effects.
                try:
                    self._hr_on_started(self)
                    self._hr_on_started = None  # not kept while the actor lives
                except Exception:
                    logger.exception("Start callback of %s failed", self)
        finally:
            self._hr_started.set()

    def _hr_control(self, control: _Control) -> Any:
        """A runtime instruction: stop, run a call, or a linked actor's exit."""
        if control.token != self._hr_incarnation:
            return None  # meant for an earlier incarnation of this child
        if control.kind == _Control.STOP:
            self._hr_set_reason(control.reason or SHUTDOWN)
            return self._stop()
        if control.kind == _Control.CALL:
            return control.reason(self)  # on the loop; what it raises fails the actor
        if self.actor_trap_exits:
            return self.on_receive(Exit(control.sender, control.reason))
        if not is_normal(control.reason):
            raise LinkedExit(str(control.sender), control.reason)
        return None

    def _hr_intercepted(self, interceptor: Interceptor, envelope: Envelope[Any]) -> Any:
        """Handle one message with the tree's interceptor around it (the test
        harness's faults). An injected failure fails the actor, ask or tell."""
        message = envelope.message
        if isinstance(message, _Internal):
            return self._handle_receive(message)
        try:
            pending = interceptor.before_receive(self, envelope)
        except Shutdown:
            raise
        except Exception:
            exc_info = sys.exc_info()
            if envelope.reply_to is not None:
                envelope.reply_to.set_exception(exc_info)
            envelope.reply_to = None  # answered: the failure below is a tell's
            raise
        if pending is not None:  # a fault that waits (a hang, a slow message): await it first
            return self._hr_intercepted_later(interceptor, envelope, pending)
        return self._hr_intercepted_rest(interceptor, envelope)

    async def _hr_intercepted_later(
        self, interceptor: Interceptor, envelope: Envelope[Any], pending: Any
    ) -> Any:
        try:
            await pending
        except Exception:
            if envelope.reply_to is not None:
                envelope.reply_to.set_exception(sys.exc_info())
            envelope.reply_to = None  # answered: the failure below is a tell's
            raise
        response = self._hr_intercepted_rest(interceptor, envelope)
        return (await response) if response.__class__ is CoroutineType else response

    def _hr_intercepted_rest(self, interceptor: Interceptor, envelope: Envelope[Any]) -> Any:
        message = envelope.message
        if self.actor_stopped.is_set():  # stopped by the interceptor: left for the next one
            self.actor_inbox.put_front(envelope)  # type: ignore[attr-defined]
            return LEFT
        try:
            response = self._handle_receive(message)
        except BaseException as exc:
            interceptor.after_receive(self, envelope, exc)
            raise
        if response.__class__ is CoroutineType:
            return self._hr_after_receive(interceptor, envelope, response)
        interceptor.after_receive(self, envelope, None)
        return response

    async def _hr_after_receive(
        self, interceptor: Interceptor, envelope: Envelope[Any], handler: Any
    ) -> Any:
        try:
            response = await handler
        except BaseException as exc:
            interceptor.after_receive(self, envelope, exc)
            raise
        interceptor.after_receive(self, envelope, None)
        return response

    def _hr_child_failed(self, envelope: Envelope[Any]) -> Coroutine[Any, Any, None] | None:
        """The handler of `envelope` raised (the exception being handled): the
        thread runtime's rules. Returns a hook's coroutine to await, if any."""
        exc_info = sys.exc_info()
        error = exc_info[1]
        reply_to = envelope.reply_to
        if isinstance(error, Shutdown):
            self._hr_set_reason(error)
            if reply_to is not None:
                reply_to.set_exception(exc_info)
            return self._stop()  # type: ignore[no-any-return]
        if isinstance(error, (Exception, CancelledError)):
            if reply_to is None:
                return self._hr_fail_child(exc_info, envelope)
            pykka_logger.info("Exception returned from %s to caller:", self, exc_info=exc_info)
            reply_to.set_exception(exc_info)
            if self._hr_ask_errors_fail:
                return self._hr_fail_child(exc_info, None)
            return None
        # SystemExit, KeyboardInterrupt, ...: a supervised child fails alone.
        if reply_to is not None:
            dead = DeadLetterError(str(self), describe(error))  # type: ignore[arg-type]
            reply_to.set_exception((DeadLetterError, dead, None))
        return self._hr_fail_child(exc_info, envelope)

    def _hr_fail_child(
        self, exc_info: Any, envelope: Envelope[Any] | None
    ) -> Coroutine[Any, Any, None] | None:
        if envelope is not None and not isinstance(envelope.message, _Internal):
            self._hr_crashed = envelope
        self._handle_failure(*exc_info)
        try:
            result = self.on_failure(*exc_info)
        except BaseException:  # noqa: BLE001 - pykka's rule: a failing on_failure is logged
            self._handle_failure(*sys.exc_info())
            return None
        if result.__class__ is CoroutineType:
            return self._hr_guard(result)
        return None

    def _hr_end(self) -> None:
        """The incarnation has ended (on its loop): it reads its inbox no more, and
        its exit callbacks run (its supervisor is told)."""
        if self._hr_phase == DEAD:
            return
        self._hr_phase = DEAD
        inbox = self.actor_inbox
        if isinstance(inbox, Inbox) and inbox.loop_reader is self:
            inbox.loop_reader = None
        self._hr_finish()

    # -- killing ---------------------------------------------------------------------

    def _hr_after_abandon(self) -> None:
        """Killed by its supervisor (any thread): cancel its task on its loop."""
        loop = self._hr_loop
        if _get_running_loop() is loop:
            self._hr_kill_child()
            return
        try:
            loop.call_soon_threadsafe(self._hr_kill_child)
        except RuntimeError:  # the loop is closed: nothing runs the actor again
            self._hr_kill_child()

    def _hr_kill_child(self) -> None:
        """On the loop (or once it is closed): end the incarnation now. The
        message it held is a dead letter (reason ``killed``)."""
        if self._hr_phase == DEAD:
            return
        self._hr_killed = True
        current = self._hr_current
        self._hr_current = None
        if current is not None and current is not self._hr_crashed:
            # (One it crashed on is reported as the thread runtime's late end is.)
            self._hr_dead_letter(current)
        task = self._hr_task
        if (
            task is not None
            and task is not current_task(self._hr_loop)
            and inspect.getcoroutinestate(task.get_coro()) != inspect.CORO_CREATED  # type: ignore[arg-type]
        ):
            task.cancel()  # its CancelledError handler does not end it again
        self._hr_end()

    def _hr_dead_letter(self, envelope: Envelope[Any]) -> None:
        child_ref = self._hr_child_ref
        if child_ref is not None:
            child_ref._dead_letter(envelope, KILLED)

    def _hr_child_cancelled(self) -> None:
        """Its task was cancelled from outside, or its loop is closed: as a kill."""
        if self._hr_phase == DEAD:
            return
        _registry.unregister(self.actor_ref)
        self.actor_stopped.set()
        if self._hr_phase == NEW:  # it never ran: its start failed
            error = RuntimeError(f"the event loop of {self} is closed: it cannot start")
            self._hr_set_reason(error)
            self._hr_start_error = error
        else:
            self._hr_set_reason(KILLED)
        self._hr_kill_child()
        self._hr_started.set()  # a supervisor waiting for its on_start goes on


def current_task(loop: asyncio.AbstractEventLoop) -> asyncio.Task[Any] | None:
    """The task running on `loop`, if called on it (else None)."""
    return asyncio.current_task(loop) if _get_running_loop() is loop else None
