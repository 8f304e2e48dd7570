"""`LoopSupervisor`: a supervisor that runs on an asyncio event loop.

It is `Supervisor`'s decision core (`SupervisorBase`) on an `AsyncioActor`:
the same steps, with each wait awaited on the loop instead of blocking a
thread (see `hedgerow.supervision._steps`). A child's start is awaited
through its ``_hr_started`` flag (a `LoopFlag`, which wakes the supervisor's
task when set, from any thread), and an incarnation's end through an exit
callback, within its shutdown on the tree's clock (so a virtual clock still
decides when a shutdown runs out). It handles one message at a time, as a
thread supervisor does: while it awaits a child's start, its next message
waits, and the loop's other actors run.

Choose it with ``SupervisorSpec(..., runtime="loop")``. It runs on the loop
of the tree's event-loop actors (`hedgerow.start_tree`'s ``loop``, or
hedgerow's own loop thread), so a tree of event-loop actors needs no thread
per supervisor, and starting or stopping a child of that loop costs no
thread hop. It supervises thread children too, and may be the child of a
thread supervisor (or the parent of one).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import math
from asyncio import events
from types import CoroutineType
from typing import TYPE_CHECKING, Any

from pykka._envelope import Envelope

from hedgerow._clock import MonotonicClock
from hedgerow.actors._actor_core import KILL_LANDS
from hedgerow.actors._ask import AskTimeout
from hedgerow.actors._async_actor import AsyncioActor
from hedgerow.actors._async_future import AsyncioFuture
from hedgerow.actors._flag import StopFlag
from hedgerow.actors._inbox import Inbox
from hedgerow.actors._loop import DEFERRED, _actor_codes
from hedgerow.actors._loop_child import LEFT, RUNNING
from hedgerow.actors._reason import KILLED, Reason
from hedgerow.actors._spawn import launch
from hedgerow.supervision._steps import Steps, WaitStarted
from hedgerow.supervision._supervisor import SupervisorBase

if TYPE_CHECKING:
    import threading
    from collections.abc import Awaitable
    from types import TracebackType

    import pykka

    from hedgerow._clock import Clock
    from hedgerow.actors._actor_core import ActorCore
    from hedgerow.actors._ref import ChildRef
    from hedgerow.supervision._children import _Child
    from hedgerow.supervision._spec import ChildSpec

__all__ = ["LoopFlag", "LoopSupervisor", "call_at_once"]

_get_running_loop = events._get_running_loop  # asyncio's C fast path
_enter_task = asyncio.tasks._enter_task
_leave_task = asyncio.tasks._leave_task


class LoopSupervisor(SupervisorBase, AsyncioActor):
    """`hedgerow.Supervisor` on an event loop (``SupervisorSpec(runtime="loop")``).

    Its semantics are `Supervisor`'s, to the event: every strategy, restart
    type, intensity, backoff, shutdown and shutdown policy, the
    dynamic-children API, and the stop of a supervisor its parent abandons.
    Call its dynamic-children API as a thread supervisor's: through a
    `SupervisorHandle` or `Tree` from a thread, an `AsyncioTree` or
    ``await ref.ask`` from asyncio code, or a proxy (the methods that wait
    return a coroutine the actor awaits; the proxy's future gives its result).
    """

    _hr_unstarted: tuple[Any, Steps[Any]] | None = None
    """The coroutine `_perform` last returned, and its steps, until it runs."""
    _hr_at_once = 0
    """Calls handled at once (`call_at_once`) since one last went by the loop."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.hooks.loop is not None and self._hr_start_loop is None:
            self._hr_start_loop = self.hooks.loop  # the root of a tree with a loop of its own

    # -- life cycle -----------------------------------------------------------

    def on_start(self) -> Any:
        """Start the children in order; if one fails, stop the others and fail."""
        return self._perform(self._start_children())

    def on_stop(self) -> Any:
        """Stop the children in reverse start order; restart nothing meanwhile."""
        return self._perform(self._stop_children())

    def on_failure(
        self,
        exception_type: type[BaseException] | None,  # noqa: ARG002
        exception_value: BaseException | None,  # noqa: ARG002
        traceback: TracebackType | None,  # noqa: ARG002
    ) -> Any:
        """Whatever failed the supervisor, leave no child running."""
        return self._perform(self._terminate_all())

    def on_receive(self, message: Any) -> Any:
        steps = self._receive(message)
        if steps is None:
            return super().on_receive(message)
        return self._perform(steps)

    # -- the dynamic-children API (see `Supervisor`) ----------------------------

    def start_child(self, spec_or_arg: Any = None, *extra_args: Any) -> Any:
        """`Supervisor.start_child`: its ref (or a coroutine the actor awaits for it)."""
        return self._perform(self._start_child(spec_or_arg, *extra_args))

    def stop_child(self, child: str | ChildRef[Any]) -> Any:
        """`Supervisor.stop_child`."""
        return self._perform(self._stop_child(child))

    def restart_child(self, child_id: str) -> Any:
        """`Supervisor.restart_child`."""
        return self._perform(self._restart_child(child_id))

    def replace_child(self, spec: ChildSpec) -> Any:
        """`Supervisor.replace_child`."""
        return self._perform(self._replace_child(spec))

    # -- a call handled at once (`call_at_once`) ---------------------------------

    def _hr_handle_now(self, envelope: Envelope[Any]) -> None:
        """Handle `envelope` (a proxy call, to answer) as the actor's run of its
        inbox handles the first message it takes (`AsyncioActor._hr_next`), then
        go on as that run does (what was put meanwhile, then idle)."""
        self._hr_current = envelope
        message = envelope.message
        try:
            response = getattr(self, message.attr_path[0])(*message.args, **message.kwargs)
        except BaseException:  # noqa: BLE001 - handled as the actor loop does (_hr_failed)
            hook = self._hr_failed(envelope)
        else:
            if response.__class__ is CoroutineType:
                self._hr_task = self._hr_loop.create_task(self._hr_body(envelope, response))
                return
            reply_to = envelope.reply_to
            assert reply_to is not None
            if self._hr_child_ref is None:
                if not self._hr_killed:
                    reply_to.set(response)
            elif response is not LEFT:
                reply_to.set(response)
            hook = None
        self._hr_current = None
        if hook is not None:
            self._hr_task = self._hr_loop.create_task(self._hr_body(None, hook))
            return
        self._hr_drain()

    # -- performing the steps on the loop ---------------------------------------

    def _start_flag(self) -> StopFlag:
        return LoopFlag(self._hr_loop)

    def _launch(self, actor: ActorCore) -> None:
        # A child of this loop, started from it: its first run (its on_start,
        # and what waits in its inbox) is done by `_launched`, not scheduled,
        # so a start costs no turn of the loop (and, with a plain on_start,
        # no wait at all).
        runtime = self._hr_runtime
        runtime.deferred = actor
        try:
            launch(actor)
        finally:
            if runtime.deferred is actor:  # another loop's, or not an event-loop actor
                runtime.deferred = None

    def _launched(self, actor: ActorCore) -> None:
        runtime = self._hr_runtime
        if runtime.deferred is DEFERRED:
            runtime.deferred = None
            actor._hr_drain()  # type: ignore[attr-defined]

    def _begin_stop(self, child: _Child, actor: ActorCore) -> None:
        # An idle event-loop child of this loop, asked from the loop: its stop
        # is handled here and now (its on_stop, its end), as its start is by
        # `_launched`, not in a later turn of the loop, so the wait for its end
        # that follows is over at once (see `_perform`). A child that is
        # running, scheduled, a supervisor, or to be killed, goes the usual way.
        loop = self._hr_loop
        if (
            getattr(actor, "_hr_loop", None) is loop
            and not actor._hr_busy  # type: ignore[attr-defined]
            and getattr(actor, "_hr_phase", None) == RUNNING
            and child.spec.shutdown_timeout != 0.0
            and not child.spec.is_supervisor
            and _get_running_loop() is loop
        ):
            actor._hr_busy = True  # type: ignore[attr-defined] # its stop's put schedules nothing
            actor._hr_runtime.busy += 1  # type: ignore[attr-defined]
            super()._begin_stop(child, actor)
            actor._hr_drain()  # type: ignore[attr-defined]
            return
        super()._begin_stop(child, actor)

    def _perform(self, steps: Steps[Any]) -> Any:
        """Run `steps` at once as far as they go without waiting: their outcome,
        or, at their first wait, a coroutine that awaits the rest (the actor
        awaits it before its next message). A wait for the end of an
        incarnation that has ended already is no wait."""
        try:
            request = next(steps)
            while request.__class__ is not WaitStarted:
                actor = request.actor
                if not actor._hr_has_exited or actor._hr_abandoned:
                    break
                request = steps.send(actor._hr_exit_reason)
        except StopIteration as stop:
            return stop.value
        except BaseException:
            steps.close()
            raise
        rest = self._perform_rest(steps, request)
        self._hr_unstarted = (rest, steps)
        return rest

    def _hr_kill_child(self) -> None:
        # Killed before the task that awaits the rest of its steps ran: that
        # task never runs the handler (`AsyncioActor._hr_body`), so close the
        # rest here (its steps' cleanups run now, and no coroutine is dropped).
        unstarted = self._hr_unstarted
        self._hr_unstarted = None
        super()._hr_kill_child()
        if (
            unstarted is not None
            and self._hr_child_ref is not None
            and inspect.getcoroutinestate(unstarted[0]) == inspect.CORO_CREATED
        ):
            unstarted[0].close()
            unstarted[1].close()

    async def _perform_rest(self, steps: Steps[Any], request: Any) -> Any:
        self._hr_unstarted = None
        loop = self._hr_loop
        try:
            while True:
                if request.__class__ is WaitStarted:
                    flag = request.actor._hr_started
                    waiter = flag.waiter() if isinstance(flag, LoopFlag) else None
                    if waiter is not None:
                        await waiter
                    elif not flag.is_set():  # (not ours: only a foreign flag)
                        await asyncio.to_thread(flag.wait)
                    request = steps.send(None)
                else:
                    actor = request.actor
                    if actor._hr_has_exited and not actor._hr_abandoned:
                        reason = actor._hr_exit_reason  # ended already (as await_end says)
                    else:
                        reason = await await_end(actor, request.clock, loop)
                    request = steps.send(reason)
        except StopIteration as stop:
            return stop.value
        except BaseException:
            steps.close()  # a cancelled wait: its steps' cleanups run now
            raise


AT_ONCE = 64
"""At most this many calls in a row are handled at once (`call_at_once`): then
one goes by the loop, so a caller that awaits call after call still lets the
loop's other work run."""


def call_at_once(  # noqa: PLR0911 - one return per way a call goes
    ref: pykka.ActorRef[Any], message: Any, seconds: float | None, what: str
) -> Awaitable[Any] | None:
    """An awaited ask of a `LoopSupervisor` from its own loop, handled at once when
    the supervisor is idle: what to await for its answer (its future, if it is
    answered already); None otherwise (the caller asks as usual).

    The supervisor's run of its inbox, which the loop's next callback would
    have been for the message, is made right here instead, and takes the
    message first (`LoopSupervisor._hr_handle_now`; with a test harness's
    interceptor, the message is put into the inbox and the run takes it from
    there): the same handling, in the same order (the supervisor is running,
    has nothing queued and handles nothing else meanwhile, and the loop has
    nothing else ready to run before it), outside the caller's task as a
    callback runs, without the two turns of the loop an ask costs. If that
    run kills the caller's own incarnation, the cancel lands at the caller's
    await, as by message. A call that the supervisor finishes
    without waiting (a start of a child of this loop whose ``on_start`` does
    not await) is answered before this returns; one that waits goes on in the
    supervisor's task, and the answer is awaited within `seconds`, as
    `ask_within`. One call in `AT_ONCE` goes by the loop, so the loop's other
    work runs between them.
    """
    actor = ref._actor_weakref()
    if (
        not isinstance(actor, LoopSupervisor)
        or actor._hr_busy
        or actor._hr_notified
        or actor._hr_phase != RUNNING
        or actor.actor_stopped._flag
        or _get_running_loop() is not actor._hr_loop
        # The loop runs what is ready first (a loop without asyncio's `_ready`,
        # such as uvloop's, cannot tell: by message).
        or getattr(actor._hr_loop, "_ready", True)
    ):
        return None
    inbox: Any = actor.actor_inbox  # a LoopInbox; a nested supervisor's: its ChildRef's Inbox
    child_ref = actor._hr_child_ref
    if isinstance(inbox, Inbox):
        if inbox.queue or inbox._deferred or inbox.max_inbox is not None:
            return None
    elif inbox._queue:
        return None
    if actor._hr_at_once >= AT_ONCE:
        actor._hr_at_once = 0
        return None
    actor._hr_at_once += 1
    # Busy from now: a put meanwhile (its own, or another's) schedules no run.
    actor._hr_busy = True
    actor._hr_runtime.busy += 1
    future: AsyncioFuture[Any] = AsyncioFuture()
    hooks = child_ref.hooks if child_ref is not None else None
    loop = actor._hr_loop
    task = asyncio.current_task(loop)
    cancels = task.cancelling() if task is not None else 0
    if (hooks is None or hooks.interceptor is None) and actor.__class__ is LoopSupervisor:
        _run_now(task, actor._hr_handle_now, Envelope(message, future))
    else:  # (a test harness's interceptor sees the message taken from the inbox)
        try:
            inbox.put(Envelope(message, reply_to=future))
        finally:
            _run_now(task, actor._hr_drain)
    if task is not None and task.cancelling() > cancels:
        # The run cancelled the caller (its own incarnation killed): by message,
        # the cancel lands at the caller's await; so it does here.
        return _after_a_turn(future)
    if future._hr_state:
        return future
    return _answer_within(future, seconds, ref, what)


def _run_now(task: asyncio.Task[Any] | None, run: Any, *args: Any) -> None:
    """`run(*args)` (a supervisor's run of its inbox) as the loop runs a
    callback: outside the caller's `task` (no current task), in a copy of the
    caller's context, what it raises reported to the loop's exception handler."""
    loop = run.__self__._hr_loop
    if task is not None:
        _leave_task(loop, task)
    try:
        contextvars.copy_context().run(run, *args)
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:  # noqa: BLE001 - as asyncio's Handle reports a callback's
        loop.call_exception_handler(
            {"message": f"Exception in the run of {run.__self__}", "exception": exc}
        )
    finally:
        if task is not None:
            _enter_task(loop, task)


async def _after_a_turn(future: Any) -> Any:
    await asyncio.sleep(0)
    return await future


async def _answer_within(
    future: Any, seconds: float | None, ref: pykka.ActorRef[Any], what: str
) -> Any:
    if seconds is None:
        return await future
    try:
        async with asyncio.timeout(seconds):
            return await future
    except TimeoutError:
        if future.done():  # the answer came with the timeout (or is a TimeoutError)
            return future.get(timeout=0)
        msg = f"{ref} ({what}) did not answer within {seconds} seconds"
        raise AskTimeout(msg) from None


# A supervisor blocking its loop in a call handled at once is named by the watchdog.
_actor_codes.add(LoopSupervisor._hr_handle_now.__code__)


class LoopFlag(StopFlag):
    """An incarnation's ``_hr_started`` that wakes a `LoopSupervisor` awaiting it
    (set from any thread: the child's own, or its loop)."""

    _cond: threading.Condition | None = None  # (class defaults: one start sets less)
    _waiter: asyncio.Future[None] | None = None

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # StopFlag's __init__, inlined: one is made per start.
        self._flag = False
        self._loop = loop

    def set(self) -> None:
        super().set()
        waiter = self._waiter
        if waiter is not None:
            wake(self._loop, waiter)

    def waiter(self) -> asyncio.Future[None] | None:
        """On the loop: a future done once the flag is set; None if it is already."""
        future = self._loop.create_future()
        self._waiter = future
        if self._flag:  # set before the waiter was seen: nothing to await
            return None
        return future


def wake(loop: asyncio.AbstractEventLoop, future: asyncio.Future[None]) -> None:
    """Complete `future` (of `loop`), from any thread; nothing if the loop is closed."""
    if _get_running_loop() is loop:
        if not future.done():
            future.set_result(None)
        return
    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody awaits it any more
        loop.call_soon_threadsafe(_resolve, future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def await_end(actor: ActorCore, clock: Clock, loop: asyncio.AbstractEventLoop) -> Reason:
    """`ActorCore._hr_await_end`, awaited on `loop`: until `actor` exits or its
    stop deadline passes on `clock` (then it is abandoned, or killed if its
    runtime can); its exit reason, or ``killed``."""
    deadline = actor._hr_stop_deadline
    if deadline is None:
        msg = f"{actor}: await_end before _hr_begin_stop"
        raise RuntimeError(msg)
    if not actor._hr_abandoned and not actor._hr_has_exited:
        remaining = None if math.isinf(deadline) else max(deadline - clock.now(), 0.0)
        if remaining != 0.0:
            await _exit_or_timer(actor, loop, remaining, clock)
    if actor._hr_abandon():
        if actor._hr_can_kill and not actor._hr_has_exited:
            # Its task is cancelled on its loop: once that has landed, the
            # message it held is a dead letter before its end is reported.
            await _exit_or_timer(actor, loop, KILL_LANDS, None)
        return KILLED
    return actor._hr_exit_reason


async def _exit_or_timer(
    actor: ActorCore,
    loop: asyncio.AbstractEventLoop,
    seconds: float | None,
    clock: Clock | None,
) -> None:
    """Until `actor` exits, or `seconds` pass (on `clock`; None: the loop's)."""
    future: asyncio.Future[None] = loop.create_future()
    key = actor._hr_add_exit_callback(lambda _actor, _reason: wake(loop, future))
    if key is None:
        return  # exited meanwhile
    timer: Any = None
    if seconds is not None:
        if clock is None or clock.__class__ is MonotonicClock:
            # Real time: the loop's own timer (no hop through the clock's thread).
            timer = loop.call_later(seconds, _resolve, future)
        else:
            timer = clock.call_later(seconds, wake, loop, future)
    try:
        await future
    finally:
        if timer is not None:
            timer.cancel()
        actor._hr_remove_exit_callback(key)
