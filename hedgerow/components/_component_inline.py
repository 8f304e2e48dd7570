"""Deliveries handled at once: an idle component's invocation or event, on its own loop.

A component whose handlers are coroutines runs them in a `HandlerRunner` (an
event-loop actor) on the transport's loop. A delivery queued in the runner's
inbox costs the loop two turns before the handler runs (the runner's wake-up,
then the first step of the task that awaits the handler), where a plain
autobahn endpoint runs in the turn that read the message. When a delivery
arrives on the runner's own loop thread, outside any task, and the runner is
idle (running, nothing queued, nothing in hand), `RunnerPeer` has the runner
handle it at once (`HandlerRunner.run_now`): exactly what its wake-up would
do, with the task that awaits a coroutine handler started eagerly
(`start_eagerly`), as Python 3.12's eager tasks do. A handler that returns
without suspending has answered before the turn ends; one that suspends goes
on in that task, which holds the runner's next delivery back until it is
done, as before. So the handler runs in the task a queued one runs in
(``asyncio.current_task()``, a kill's cancellation, the blocked-loop report
naming the component), with the same error rules.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from pykka._envelope import Envelope

if TYPE_CHECKING:
    from collections.abc import Generator

__all__ = ["Answer", "RunnerPeer", "start_eagerly"]

_enter_task = getattr(asyncio.tasks, "_enter_task", None)
_leave_task = getattr(asyncio.tasks, "_leave_task", None)
CAN_START_EAGERLY = _enter_task is not None and _leave_task is not None
"""Whether this Python's asyncio lets a task be entered by hand (3.11 to 3.13 do);
without it, every delivery is queued."""

_FIRST, _RUNNING = 0, 1
_UNKNOWN = object()
_Task = asyncio.Task


class _StartedEagerly(Coroutine[Any, Any, Any]):
    """A task's coroutine whose first step its starter ran already (`step`), with
    the task entered: the task's own first step hands on what that step ended
    with; every later step goes to the coroutine."""

    __slots__ = ("_coroutine", "_error", "_finished", "_state", "_value", "_yielded")

    def __init__(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        self._coroutine = coroutine
        self._state = _FIRST
        self._yielded: Any = None
        self._finished = False
        self._value: Any = None
        self._error: BaseException | None = None

    def step(self) -> None:
        """The first step; what it raises is raised by the task's first step."""
        try:
            self._yielded = self._coroutine.send(None)
        except StopIteration as stop:
            self._finished = True
            self._value = stop.value
        except BaseException as error:  # noqa: BLE001 - the task's to raise, as its own step would
            self._finished = True
            self._error = error

    def send(self, value: Any) -> Any:
        if self._state == _FIRST:  # the task's first step: hand on how the starter's ended
            self._state = _RUNNING
            if self._error is not None:
                error, self._error = self._error, None
                raise error
            if self._finished:
                raise StopIteration(self._value)
            return self._yielded
        return self._coroutine.send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        if self._state == _FIRST:
            self._state = _RUNNING
            if self._finished:
                # Cancelled after the coroutine ended: as a task's cancel that came too late.
                raise typ if val is None else val
        if val is None and tb is None:
            return self._coroutine.throw(typ)
        return self._coroutine.throw(typ, val, tb)  # pragma: no cover - asyncio throws one

    def close(self) -> None:
        self._coroutine.close()

    def __await__(self) -> Generator[Any, Any, Any]:  # pragma: no cover - a task's only
        msg = "a coroutine started eagerly is its task's, not to be awaited"
        raise RuntimeError(msg)


def start_eagerly(
    loop: asyncio.AbstractEventLoop,
    coroutine: Coroutine[Any, Any, Any],
    owner: Any,
) -> None:
    """Make a task of `coroutine` on `loop` (the running one, with no task running),
    make it `owner`'s ``_hr_task`` (the task a kill cancels), then run its first step
    now, in the task (its current task, its context) rather than in a later turn
    of the loop. The task's scheduled first step then only hands on how that step
    ended."""
    started = _StartedEagerly(coroutine)
    context = contextvars.copy_context()
    # What create_task does without a task factory, in fewer steps (asyncio's base
    # loop keeps it in _task_factory; another loop's is asked).
    factory = getattr(loop, "_task_factory", _UNKNOWN)
    if factory is _UNKNOWN:
        factory = loop.get_task_factory()
    if factory is None:
        task: asyncio.Task[Any] = _Task(started, loop=loop, context=context)
    else:
        task = loop.create_task(started, context=context)
    owner._hr_task = task
    _enter_task(loop, task)  # type: ignore[misc]
    try:
        context.run(started.step)
    finally:
        _leave_task(loop, task)  # type: ignore[misc]


class Answer:
    """How a procedure run at once ends: at once (`finished`, with `value` or
    `error`, read by `HandlerRunner.invoke_now`), or later, through the asyncio
    future the runner set as `future` meanwhile."""

    # Class-level defaults, no __init__: made on every call answered at once.
    finished = False
    value: Any = None
    error: BaseException | None = None
    future: asyncio.Future[Any] | None = None

    async def run(self, pending: Any, session: Any, procedure: str) -> None:
        """Await the endpoint's awaitable `pending`; its value, or what it raises as
        the `session` answers it (``error_answer``), is the answer. (A cancellation
        is not: the task is killed.)"""
        error: BaseException | None = None
        value: Any = None
        try:
            value = await pending
        except Exception as exc:  # noqa: BLE001 - goes back to the caller
            error = session.error_answer(procedure, exc)
        future = self.future
        if future is None:
            self.finished, self.value, self.error = True, value, error
        elif not future.done():
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(value)


class RunnerPeer:
    """Where the transport delivers to a component whose handlers run on a loop: at
    once when its runner can take it now (idle, on this thread), else into its inbox."""

    __slots__ = ("inbox", "invoke_now", "runner")

    def __init__(self, runner: Any) -> None:
        self.runner = runner
        self.inbox = runner.actor_inbox
        self.invoke_now = runner.invoke_now

    def deliver(self, message: Any) -> None:
        if not self.runner.run_now(message):
            self.inbox.put(Envelope(message))
